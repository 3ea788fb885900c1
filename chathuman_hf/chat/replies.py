"""A finished reply (``Generation``: text, token counts, finish reason) and how it is decoded from the new ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from transformers import GenerationConfig, PreTrainedTokenizerBase

from chathuman_hf.chat.reply_options import TokenLogprob
from chathuman_hf.chat.reply_text import final_text

# what the page and the terminal show for an empty reply (the API returns the empty text)
EMPTY_REPLY = "음… 뭐라고 답해야 할지 모르겠어요."


@dataclass
class Generation:
    """A finished model reply and its token counts (``finish_reason`` is ``stop`` or ``length``); ``text`` is what
    the model generated, possibly empty; ``logprobs`` one per completion token when they were asked for."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    reasoning: str = ""  # the reply's leading reasoning block (``<think>…</think>``), not shown
    logprobs: list[TokenLogprob] | None = field(default=None, repr=False)


def finish_reply(tokenizer: PreTrainedTokenizerBase, new: list[int], prompt_len: int, config: GenerationConfig,
                 timed_out: bool = False, scored: list[TokenLogprob] | None = None,
                 opened: str | None = None) -> Generation:
    """The reply's text (``reply_text``: no reasoning block, no half character) and counts; ``timed_out``: cut at
    the request's deadline (finish_reason ``length``); ``scored``: the log-probs recorded per generated token;
    ``opened``: the reasoning block the prompt opened."""
    new = list(new)
    stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    pad = config.pad_token_id
    while new and new[-1] == pad and pad not in stops:
        new.pop()
    stopped = bool(new) and new[-1] in stops
    reasoning, text = final_text(partial(tokenizer.decode, skip_special_tokens=True), new, opened=opened)
    ended = not timed_out and (stopped or len(new) < (config.max_new_tokens or 0))
    logprobs = list(scored[: len(new)]) if scored is not None else None
    return Generation(text, prompt_len, len(new), "stop" if ended else "length", reasoning, logprobs)
