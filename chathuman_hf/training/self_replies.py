"""``--rejected self``: the SFT model's own sampled replies as the rejected side of each pair (as in SPIN).

Prompts are rendered with the model's chat template (``fit_prompt``), left-padded in batches and sampled with the
chat defaults (``chat_generation_config``) from one seed, so a run is reproducible on the same machine.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import set_seed

from chathuman_hf.core.cli import UsageError
from chathuman_hf.core.window import fit_prompt

logger = logging.getLogger(__name__)
Messages = list[dict[str, str]]
PROGRESS_EVERY = 20  # batches between progress lines
BATCH_SIZE = 32
MAX_PROMPT_TOKENS = 224  # the recipe's 256-token window less the 32 new tokens


class ReplySampler:
    """``sampler(prompts) -> replies``: one sampled reply per prompt from the model in ``model_dir``."""

    def __init__(self, model_dir: str | Path, *, seed: int = 42, batch_size: int = BATCH_SIZE,
                 max_prompt_tokens: int = MAX_PROMPT_TOKENS) -> None:  # fmt: skip
        if not Path(model_dir).is_dir():
            raise UsageError(f"--rejected_model {model_dir}: no such folder (expected the SFT model's output_dir)")
        self.model_dir, self.seed, self.batch_size = str(model_dir), seed, batch_size
        self.max_prompt_tokens = max_prompt_tokens

    @torch.no_grad()
    def __call__(self, prompts: list[Messages]) -> list[str]:
        from chathuman_hf.models.loading import load_chat_model
        from chathuman_hf.tokens.tokenizer import chat_generation_config

        model, tokenizer = load_chat_model(self.model_dir)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
        config = chat_generation_config(tokenizer)
        stops = set(config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id])
        pad = config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stops)
        special = set(tokenizer.all_special_ids)
        set_seed(self.seed)
        replies: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = [fit_prompt(p, tokenizer, max_turns=None, max_prompt_tokens=self.max_prompt_tokens)[0]
                     for p in prompts[start : start + self.batch_size]]  # fmt: skip
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
            out = model.generate(input_ids.to(device), attention_mask=mask.to(device), generation_config=config)
            for row in out[:, width:].tolist():
                end = next((i for i, token in enumerate(row) if token in stops), len(row))
                text = tokenizer.decode([t for t in row[:end] if t not in special], skip_special_tokens=True)
                replies.append(text.strip())
            if (start // self.batch_size) % PROGRESS_EVERY == PROGRESS_EVERY - 1:
                logger.info("--rejected self: sampled %d of %d replies", len(replies), len(prompts))
        return replies
