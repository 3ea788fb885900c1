"""Fine-tune a causal LM into a Korean multi-turn chat assistant with the Hugging Face Trainer.

Quickstart (embedded sample, tokenizer trained on it, small GPT-2 from scratch; a few minutes on a laptop CPU):

    accelerate launch recipes/train.py --config recipes/configs/quickstart.yaml --label-mode input

The seed's real setting (KoGPT2 base, needs the Hub; one GPU or several):

    accelerate launch --config_file accelerate_configs/single_gpu.yaml recipes/train.py \
        --config recipes/configs/kogpt2.yaml --data /path/to/dialogues --output_dir outputs/kogpt2-chat

A LoRA adapter on a Hub base with its own chat template (``--load_in_4bit`` for QLoRA; see README "LoRA and QLoRA"):

    accelerate launch --config_file accelerate_configs/single_gpu.yaml recipes/train.py \
        --model_name_or_path LGAI-EXAONE/EXAONE-4.0-1.2B --chat_template model --use_peft --output_dir outputs/lora

Runs unchanged under ``python``, ``accelerate launch`` and ``torchrun``. Every option of ``TrainingArguments`` is
accepted; ``--config FILE.yaml`` sets defaults that command-line options override; ``--help`` lists everything.
``--resume_from_checkpoint auto`` resumes from the latest complete checkpoint in ``--output_dir``.

A preference stage after SFT (pairs or 👍/👎 ratings written by ``recipes/prepare.py``; see docs/preference.md):

    accelerate launch recipes/train.py --stage dpo --model_name_or_path outputs/sft --data prefs.jsonl \
        --output_dir outputs/dpo
"""

from __future__ import annotations

import logging
import sys

from accelerate.utils import set_seed  # transformers.set_seed imports bitsandbytes before chathuman_hf quiets it

from chathuman_hf.core.cli import run_cli
from chathuman_hf.models.lora import check_4bit_support
from chathuman_hf.publishing.gguf_export import check_gguf_type, export_run_gguf
from chathuman_hf.publishing.llama_cpp_source import find_converter
from chathuman_hf.publishing.preference_output import preference_card_writer, save_preference_output
from chathuman_hf.publishing.run_output import model_card_writer, save_final_output
from chathuman_hf.training.build import build_chat_model, build_trainer, chat_window, setup_logging
from chathuman_hf.training.checkpoints import resolve_resume
from chathuman_hf.training.data_steps import build_tokenizer, load_data, tokenize_data, write_report
from chathuman_hf.training.parsing import parse_stage_args
from chathuman_hf.training.preference_steps import prepare_preference_run
from chathuman_hf.training.preflight import next_steps, quiet_progress_when_piped, set_aside_previous_run
from chathuman_hf.training.scale_out import check_engine

logger = logging.getLogger("chathuman_hf.train")


def main(argv: list[str] | None = None) -> dict:
    # 1. arguments: ModelArguments, DataArguments, ChatArguments, ChatTrainingArguments (YAML + command line)
    model_args, data_args, chat_args, training_args, stage_args = parse_stage_args(argv)
    setup_logging(training_args)
    check_engine(training_args)  # e.g. FSDP asked for on a CPU-only machine: refuse rather than train DDP
    quiet_progress_when_piped(training_args)  # piped output: log lines instead of progress bars
    logger.info("Process %d/%d on %s", training_args.process_index, training_args.world_size, training_args.device)
    if model_args.load_in_4bit:
        check_4bit_support(training_args.device)  # QLoRA: one line before any data or weights load
    if training_args.gguf:  # before any training: a bad type or no llama.cpp converter fails in one line now
        check_gguf_type(training_args.gguf)
        find_converter()
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    if training_args.process_index == 0:
        set_aside_previous_run(training_args.output_dir, resume)  # a fresh run never mixes with an old one
    if stage_args.preference:  # --stage dpo|kto|orpo: the same options, TRL's trainers on our tokens
        return preference_stage(model_args, data_args, chat_args, training_args, stage_args, resume)

    # 2. data: load + clean + hold out (main process first, the others reuse the datasets cache)
    with training_args.main_process_first(desc="loading dialogues"):
        data = load_data(data_args, chat_args)

    # 3. tokenizer (trained on the training dialogues if asked), then tokenized / packed examples
    tokenizer = build_tokenizer(
        model_args, chat_args, data.train_dialogues, resume_from=resume, training_args=training_args
    )
    with training_args.main_process_first(desc="tokenizing dialogues"):
        data = tokenize_data(
            data, tokenizer, chat_args, num_proc=data_args.preprocessing_num_proc, seed=training_args.seed
        )
    if training_args.process_index == 0:
        write_report(data, training_args.output_dir)

    # 4. model (same seed → same init), resized to the tokenizer; every token id checked before the first step
    set_seed(training_args.seed)
    model = build_chat_model(model_args, tokenizer, chat_args, data,
                             gradient_checkpointing=training_args.activation_checkpointing)

    # 5. trainer: label-mode collator and loss, token-weighted eval metrics, generation health, early stopping
    trainer = build_trainer(model, tokenizer, data, chat_args, training_args)
    trainer.model_card = model_card_writer(trainer, model_args, data_args, chat_args, data)

    # 6. train (resuming when asked), then save the best model with everything a user needs
    train_result = trainer.train(resume_from_checkpoint=resume)
    results = save_final_output(trainer, train_result, data, run_args=(model_args, data_args, chat_args))
    announce(trainer, training_args)
    return results


def preference_stage(model_args, data_args, chat_args, training_args, stage_args, resume) -> dict:
    """DPO / KTO / ORPO: rows → tokens in inference form → starting model → TRL trainer → train → save."""
    trainer, data = prepare_preference_run(model_args, data_args, chat_args, training_args, stage_args, resume)
    trainer.model_card = preference_card_writer(trainer, model_args, stage_args, data.stats)
    train_result = trainer.train(resume_from_checkpoint=resume)
    run_args = (model_args, data_args, chat_args, stage_args)
    results = save_preference_output(trainer, train_result, data, chat_window(chat_args), run_args=run_args)
    announce(trainer, training_args)
    return results


def announce(trainer, training_args) -> None:
    """On the main process: the GGUF export when ``--gguf`` asks for one, then what to run next."""
    if trainer.is_world_process_zero():
        if training_args.gguf:
            print(f"Wrote {export_run_gguf(training_args.output_dir, training_args.gguf)}", flush=True)
        print(next_steps(training_args.output_dir), flush=True)


if __name__ == "__main__":
    sys.exit(run_cli(main))  # bad data: one line, exit 1; a configuration mistake: one line, exit 2
