"""One contender of bench/lora.py, trained in its own process (``python -m bench.lora --run NAME``).

``one_run`` trains full fine-tuning, our LoRA (packed or not) or TRL's ``SFTTrainer`` with the same ``LoraConfig``
on the shared split of ``dialogues``, counting useful tokens and training time with :class:`TokenCounter`, and
scores the held-out assistant perplexity with ``ChatTrainer.evaluate`` (the same code for every contender).
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from bench.common import CHATBOT_CSV
from bench.peak_memory import PeakRSS
from bench.train_contenders import TRL_TEMPLATE  # TRL's {% generation %} variant of our template


def dialogues(args) -> tuple[list, list, list]:
    """(pretraining half, fine-tuning half, held-out) message lists, fixed seed."""
    from chathuman_hf.data import load_dialogues

    ds = load_dialogues(str(CHATBOT_CSV)) if CHATBOT_CSV.exists() else load_dialogues()
    ds = ds.shuffle(seed=0)
    msgs = [row["messages"] for row in ds]
    held = msgs[: args.eval_dialogues]
    rest = msgs[args.eval_dialogues: args.eval_dialogues + 2 * args.train_dialogues]
    return rest[1::2], rest[0::2], held


class TokenCounter:
    """Useful (non-pad) tokens fed to the model in training steps, and the training time (first to last step)."""

    def __init__(self, model, pad_id: int, budget: int) -> None:
        self.pad_id, self.budget, self.tokens, self.train_s, self._t = pad_id, budget, 0, 0.0, None
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if module.training and ids is not None:
            self.tokens += int((ids != self.pad_id).sum())

    def callback(self):
        from transformers import TrainerCallback

        counter = self

        class _Budget(TrainerCallback):
            def on_step_begin(self, a, state, control, **kw):
                counter._t = time.perf_counter()

            def on_step_end(self, a, state, control, **kw):
                counter.train_s += time.perf_counter() - counter._t
                control.should_training_stop = counter.tokens >= counter.budget

        return _Budget()


def one_run(name: str, ns) -> dict[str, Any]:
    """Train one contender in this process and print its numbers (called through ``--run``)."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chathuman_hf.models.build import build_model
    from chathuman_hf.models.lora import LoraArguments, apply_lora, lora_config, parameter_counts
    from chathuman_hf.tokens.collators import ChatCollator
    from chathuman_hf.tokens.features import tokenize_dialogues
    from chathuman_hf.tokens.packing import pack_dataset
    from chathuman_hf.tokens.tokenizer import prepare_tokenizer
    from chathuman_hf.training.trainer import ChatTrainer
    from chathuman_hf.training.training_arguments import ChatTrainingArguments

    torch.set_num_threads(ns.threads)
    pre, tune, held = dialogues(ns)
    train_msgs = pre if name == "pretrain" else tune
    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(ns.base))
    lora_args = LoraArguments(use_peft=True, lora_r=ns.lora_r, lora_alpha=2 * ns.lora_r, lora_dropout=0.0)
    budget = ns.pretrain_tokens if name == "pretrain" else ns.tokens
    lr = ns.lora_lr if "lora" in name else ns.lr
    common = {"max_length": ns.max_length}
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as rss:
        train_args = dict(output_dir=tmp, per_device_train_batch_size=ns.batch_size, learning_rate=lr,
                          lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_steps=10**6,
                          logging_steps=10**6, save_strategy="no", eval_strategy="no", report_to="none",
                          seed=ns.seed,
                          disable_tqdm=True, use_cpu=True, load_best_model_at_end=False)
        torch.manual_seed(0)
        if name == "trl_lora":
            from trl import SFTConfig, SFTTrainer

            model = AutoModelForCausalLM.from_pretrained(ns.base)
            tok.chat_template = TRL_TEMPLATE
            counter = TokenCounter(model, tok.pad_token_id, budget)
            cfg = SFTConfig(**train_args, max_length=ns.max_length, assistant_only_loss=True, dataset_num_proc=None)
            trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_dict({"messages": train_msgs}),
                                 processing_class=tok, peft_config=lora_config(lora_args),
                                 callbacks=[counter.callback()])
            trainer.train()
            model = trainer.model
            tok = prepare_tokenizer(AutoTokenizer.from_pretrained(ns.base))
        else:
            model = build_model(ns.base, tokenizer=tok)
            counter = TokenCounter(model, tok.pad_token_id, budget)
            if name.startswith("lora"):
                model = apply_lora(model, lora_args, tok, base_vocab_size=len(tok))
            ds = tokenize_dialogues(Dataset.from_dict({"messages": train_msgs}), tok, label_mode="all_sys", **common)
            if name != "lora_unpacked":
                rows = len(ds)
                ds = pack_dataset(ds, max_length=ns.max_length, seed=ns.seed)
                # fewer, fuller rows: scale the batch so a step holds about as many tokens (and steps) as unpacked
                train_args["per_device_train_batch_size"] = max(1, round(ns.batch_size * len(ds) / rows))
            trainer = ChatTrainer(model=model, args=ChatTrainingArguments(**train_args), train_dataset=ds,
                                  data_collator=ChatCollator(tok.pad_token_id, "all_sys"), label_mode="all_sys",
                                  callbacks=[counter.callback()])
            trainer.train()
        optimizer_bytes = sum(t.numel() * t.element_size() for s in trainer.optimizer.state.values()
                              for t in s.values() if torch.is_tensor(t))
        counts = parameter_counts(model)
    if ns.save:
        model.save_pretrained(ns.save)
        AutoTokenizer.from_pretrained(ns.base).save_pretrained(ns.save)
        return {"status": "ok"}
    held_ds = tokenize_dialogues(Dataset.from_dict({"messages": held}), tok, label_mode=None, **common)
    with tempfile.TemporaryDirectory() as tmp:
        evaluator = ChatTrainer(model=model, args=ChatTrainingArguments(output_dir=tmp, report_to="none", use_cpu=True,
                                                                        disable_tqdm=True, eval_strategy="no",
                                                                        save_strategy="no",
                                                                        load_best_model_at_end=False),
                                eval_dataset=held_ds, data_collator=ChatCollator(tok.pad_token_id, "all_sys",
                                                                                 with_assistant_labels=True),
                                label_mode="all_sys")
        metrics = evaluator.evaluate()
    return {
        "status": "ok", "trainable_params": counts["trainable_params"], "total_params": counts["total_params"],
        "trainable_share": round(counts["trainable_share"], 3),
        "optimizer_state_mb": round(optimizer_bytes / 2**20, 3),
        "peak_rss_mb": round(rss.peak_mb, 1), "useful_tokens": counter.tokens, "train_s": round(counter.train_s, 2),
        "useful_tokens_per_s": round(counter.tokens / max(counter.train_s, 1e-9), 1),
        "heldout_assistant_perplexity": round(float(metrics["eval_assistant_perplexity"]), 3),
        "steps": trainer.state.global_step, "batch_size": trainer.args.per_device_train_batch_size,
    }
