"""Issue 22: one packed batch vs the same dialogues unpacked — loss and every parameter gradient (gpt2, llama).

    python -m bench.results.issue22.grad_check      (from the repository root)

Archived with its output (grad_check.txt); run as a module, it imports the bench and this checkout's package.
"""

from __future__ import annotations

import torch

from bench.bench_models import build_config
from bench.bench_tokenizer import bench_tokenizer
from bench.train_data import load_messages, split


def loss_and_grads(model, batch):
    model.zero_grad()
    labels = batch.pop("labels")
    logits = model(**batch, use_cache=False).logits[:, :-1].float()
    target = labels[:, 1:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                             ignore_index=-100, reduction="sum") / (target != -100).sum()
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    from chathuman_hf.tokens.collators import ChatCollator
    from chathuman_hf.tokens.features import tokenize_dialogues
    from chathuman_hf.tokens.packing import pack_dataset

    torch.set_num_threads(1)
    dialogues = load_messages()
    train, _ = split(dialogues, 0.05)
    tok = bench_tokenizer([m["content"] for d in dialogues for m in d], 8000)
    ds = tokenize_dialogues(Dataset.from_dict({"messages": train[:400]}), tok, max_length=256, label_mode="-100+sys")
    rows = [pack_dataset(ds, max_length=256, seed=0)[i] for i in range(2)]  # one bench step: 2 rows ≈ 35 dialogues
    members = []
    for row in rows:
        start = 0
        for n in row["seq_lengths"]:
            members.append({k: row[k][start : start + n] for k in ("input_ids", "roles", "last_turn")})
            start += n
    collate = ChatCollator(tok.pad_token_id, "-100+sys")
    for arch in ("gpt2", "llama"):
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(build_config(arch, "small", tok)).train()
        packed_loss, packed = loss_and_grads(model, collate(rows))
        plain_loss, plain = loss_and_grads(model, collate(members))
        worst = max((packed[k] - plain[k]).abs().max().item() / (plain[k].abs().max().item() + 1e-12) for k in plain)
        print(f"{arch} ({model.config._attn_implementation}), {len(members)} dialogues: loss packed {packed_loss:.7f} "
              f"unpacked {plain_loss:.7f}; largest gradient difference / largest gradient {worst:.1e}")


if __name__ == "__main__":
    main()
