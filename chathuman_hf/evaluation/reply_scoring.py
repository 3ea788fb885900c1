"""Mean log-likelihood per reply token of replies after a context (what response selection ranks by): the context
runs once and its key/value cache is shared by every reply."""

from __future__ import annotations

import copy
import inspect

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.evaluation.perplexity import token_nll_sums
from chathuman_hf.tokens.encoding import encode_dialogues
from chathuman_hf.tokens.labels import IGNORE_INDEX, LabelMode, target_mask
from chathuman_hf.tokens.template_inputs import render_ids

Messages = list[dict[str, str]]


class ReplyRenderer:
    """Chat-template token ids of a context (with the generation prompt) and of a reply after it, cached per reply.

    A reply's ids are what the template appends after the generation prompt (rendered once after an empty user
    turn; the reply rendered as the newest message, so a template that rewrites history scores each reply in its
    inference context, e.g. after Qwen3's empty think block); a template whose rendering of the prompt is not a
    prefix of the rendered exchange is rendered per pair. Which of them are scored is the label rule's answer for the
    last assistant turn (``labels.target_mask``).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.empty = self.prompt([{"role": "user", "content": ""}])
        self.replies: dict[str, list[int]] = {}
        self.masks: dict[str, list[bool]] = {}

    def prompt(self, context: Messages) -> list[int]:
        return render_ids(self.tokenizer, context, gen=True)

    def exchange(self, context: Messages, reply: str) -> list[int]:
        return render_ids(self.tokenizer, [*context, {"role": "assistant", "content": reply}])

    def reply(self, reply: str) -> list[int]:
        if reply not in self.replies:
            full = self.exchange([{"role": "user", "content": ""}], reply)
            self.replies[reply] = full[len(self.empty):]
        return self.replies[reply]

    def trained(self, reply: str) -> list[bool]:
        """Per token of ``reply(reply)``: True where training puts a target (content and end of turn)."""
        if reply not in self.masks:
            ids = self.reply(reply)
            row = encode_dialogues([[{"role": "user", "content": ""}, {"role": "assistant", "content": reply}]],
                                   self.tokenizer)[0]
            mask = target_mask(row["roles"], row["last_turn"], LabelMode.LAST_SYS)
            same = bool(ids) and row["input_ids"][-len(ids):] == ids
            self.masks[reply] = mask[-len(ids):] if same else [True] * len(ids)  # unknown split: score them all
        return self.masks[reply]

    def concatenates(self, context: Messages, reply: str) -> bool:
        return self.exchange(context, reply) == self.prompt(context) + self.reply(reply)


@torch.no_grad()
def score_replies(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase | ReplyRenderer,
    context: Messages,
    replies: list[str],
    *,
    max_length: int = 256,
    batch_size: int = 64,
) -> list[float]:
    """Mean log-likelihood per reply token (contents and end-of-turn) of each reply after ``context``.

    The context runs once and its key/value cache is shared by every reply (a context of several turns is much
    longer than a reply: scoring 20 replies costs about one context plus 20 replies, not 20 contexts); the oldest
    context tokens are cut so that context + reply fits ``max_length``.
    """
    render = tokenizer if isinstance(tokenizer, ReplyRenderer) else ReplyRenderer(tokenizer)
    if replies and not render.concatenates(context, replies[0]):  # unusual template: one full rendering per pair
        return [_score_one(model, render, context, r, max_length) for r in replies]
    prefix = render.prompt(context)
    suffixes = [render.reply(r)[: max_length - 1] for r in replies]
    trained = [render.trained(r)[: max_length - 1] for r in replies]
    keep = max(1, max_length - max((len(x) for x in suffixes), default=0))
    prefix = prefix[-keep:]
    device = next(model.parameters()).device
    pad = render.tokenizer.pad_token_id if render.tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    past_len = len(prefix) - 1
    cache = None
    if past_len:
        out = model(input_ids=torch.tensor([prefix[:-1]], device=device), use_cache=True)
        cache = out["cache"] if "cache" in out else out["past_key_values"]  # transformers 5.24 renamed it
    scores: list[float] = []
    for b in range(0, len(suffixes), batch_size):
        rows = [[prefix[-1], *x] for x in suffixes[b : b + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), past_len + width), dtype=torch.long)
        mask[:, :past_len] = 1
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            scored = torch.tensor(trained[b + i], dtype=torch.bool)
            labels[i, 1 : len(row)] = torch.where(scored, torch.tensor(row[1:]), IGNORE_INDEX)
            mask[i, past_len : past_len + len(row)] = 1
        past = None
        if cache is not None:
            past = copy.deepcopy(cache)
            past.batch_repeat_interleave(len(rows))
        positions = torch.arange(past_len, past_len + width).unsqueeze(0).expand(len(rows), -1)
        kwargs = {} if past is None else {_cache_argument(model): past}
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                       use_cache=past is not None, **kwargs).logits
        nll, count = token_nll_sums(logits, labels.to(device), pre_shifted=False)
        scores += [-float(n) / max(int(c), 1) for n, c in zip(nll, count, strict=True)]
    if was_training:
        model.train()
    return scores


def _cache_argument(model: PreTrainedModel) -> str:
    """The forward argument taking a key/value cache: ``cache`` (transformers >= 5.24) or ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def _score_one(model: PreTrainedModel, render: ReplyRenderer, context: Messages, reply: str, max_length: int) -> float:
    prefix, full = render.prompt(context), render.exchange(context, reply)
    start = len(prefix) if full[: len(prefix)] == prefix else len(full) - len(render.reply(reply))
    cut = max(0, min(len(full) - max_length, start - 1))
    full, start = full[cut:][:max_length], start - cut
    labels = torch.full((1, len(full)), IGNORE_INDEX, dtype=torch.long)
    labels[0, start:] = torch.tensor(full[start:])
    mask = render.trained(reply)
    if len(mask) == len(full) - start:
        labels[0, start:][~torch.tensor(mask, dtype=torch.bool)] = IGNORE_INDEX
    device = next(model.parameters()).device
    logits = model(input_ids=torch.tensor([full], device=device), use_cache=False).logits
    nll, count = token_nll_sums(logits, labels.to(device), pre_shifted=False)
    return -float(nll[0]) / max(int(count[0]), 1)


def mean_reply_loglik(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    pairs: list[tuple[Messages, str]],
    *,
    max_length: int = 256,
    batch_size: int = 64,
) -> list[float]:
    """``score_replies`` for (context, reply) pairs; consecutive pairs with the same context share its cache."""
    render = ReplyRenderer(tokenizer)
    scores: list[float] = []
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        scores += score_replies(model, render, pairs[i][0], [r for _, r in pairs[i:j]], max_length=max_length,
                                batch_size=batch_size)
        i = j
    return scores
