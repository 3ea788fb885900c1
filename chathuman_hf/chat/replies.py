"""A finished reply (``Generation``: text, token counts, finish reason) and how it is decoded from the new ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import GenerationConfig, PreTrainedTokenizerBase

from chathuman_hf.chat.reply_options import TokenLogprob

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
    logprobs: list[TokenLogprob] | None = field(default=None, repr=False)


def finish_reply(tokenizer: PreTrainedTokenizerBase, new: list[int], prompt_len: int, config: GenerationConfig,
                 timed_out: bool = False, scored: list[TokenLogprob] | None = None) -> Generation:
    """The reply's text and counts; ``timed_out``: cut at the request's deadline (finish_reason ``length``);
    ``scored``: the log-probs recorded per generated token."""
    new = list(new)
    stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
    pad = config.pad_token_id
    while new and new[-1] == pad and pad not in stops:
        new.pop()
    stopped = bool(new) and new[-1] in stops
    text = tokenizer.decode(new, skip_special_tokens=True)
    for cut in range(1, 4):  # a character whose byte tokens were cut by max_new_tokens is dropped, not shown
        if not text.endswith("\ufffd") or cut > len(new):  # as U+FFFD (which would hide complete ones too)
            break
        text = tokenizer.decode(new[:-cut], skip_special_tokens=True)
    text = text.rstrip("\ufffd").strip()
    ended = not timed_out and (stopped or len(new) < (config.max_new_tokens or 0))
    logprobs = list(scored[: len(new)]) if scored is not None else None
    return Generation(text, prompt_len, len(new), "stop" if ended else "length", logprobs)
