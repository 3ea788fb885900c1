"""The chat history window a model was trained with (``chat_window.json``) and history trimming."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

WINDOW_FILE = "chat_window.json"
# exchanges a chat front end shows a model that has no turn limit of its own (no chat_window.json, or trained
# without --max_turns), the new message's included
DEFAULT_MAX_TURNS = 3
MIN_PROMPT_TOKENS = 8  # a reply may use every position but these


class ContextOverflow(ValueError):
    """The newest exchange alone (``prompt_tokens``) and ``max_new_tokens`` do not fit the model's ``limit``
    positions; the message has vLLM's shape, naming both numbers."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int | None, limit: int) -> None:
        self.prompt_tokens, self.max_new_tokens, self.limit = prompt_tokens, max_new_tokens, limit
        if max_new_tokens is None or prompt_tokens >= limit:
            message = (f"This model's maximum context length is {limit} tokens. However, your request has "
                       f"{prompt_tokens} input tokens. Please reduce the length of the input messages.")
        else:
            message = (f"'max_tokens' or 'max_completion_tokens' is too large: {max_new_tokens}. This model's maximum "
                       f"context length is {limit} tokens and your request has {prompt_tokens} input tokens "
                       f"({max_new_tokens} > {limit} - {prompt_tokens}).")
        super().__init__(message)


@dataclass
class ChatWindow:
    """How much history a chat model sees: at most ``max_turns`` exchanges (the newest included, as in training's
    ``--max_turns``) and ``max_length`` tokens."""

    max_turns: int | None = DEFAULT_MAX_TURNS
    max_length: int = 256

    def save_pretrained(self, directory: str | Path) -> Path:
        path = Path(directory) / WINDOW_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ChatWindow:
        path = Path(directory) / WINDOW_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: save one with ChatWindow(...).save_pretrained({directory!s})")
        data = json.loads(path.read_text(encoding="utf-8"))
        unknown = set(data) - {"max_turns", "max_length"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected max_turns and max_length")
        return cls(**data)


def split_exchanges(messages: list[dict]) -> tuple[list[dict], list[list[dict]]]:
    """Split into (leading system messages, exchanges); an exchange starts at a user message."""
    head: list[dict] = []
    exchanges: list[list[dict]] = []
    for msg in messages:
        if msg["role"] == "system" and not exchanges:
            head.append(msg)
        elif msg["role"] == "user" or not exchanges:
            exchanges.append([msg])
        else:
            exchanges[-1].append(msg)
    return head, exchanges


def trim_history(
    messages: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_turns: int | None,
    max_prompt_tokens: int | None,
    tools: list[dict] | None = None,
) -> list[dict]:
    """Drop the oldest exchanges until at most ``max_turns`` remain and the prompt fits ``max_prompt_tokens``.

    ``max_turns`` counts exchanges (a user message and its answer), the last one included; a leading system
    message is kept. The prompt is measured with the chat template and ``add_generation_prompt=True`` when the
    last message is from the user. The newest exchange is always kept, even if it alone is too long.
    """
    head, exchanges = split_exchanges(list(messages))
    if max_turns is not None and max_turns > 0 and len(exchanges) > max_turns:
        exchanges = exchanges[-max_turns:]
    if max_prompt_tokens is not None:
        gen_prompt = bool(messages) and messages[-1]["role"] == "user"
        while len(exchanges) > 1:
            flat = head + [m for ex in exchanges for m in ex]
            n = len(tokenizer.apply_chat_template(flat, tokenize=True, return_dict=False,
                                                  add_generation_prompt=gen_prompt, tools=tools))
            if n <= max_prompt_tokens:
                break
            exchanges = exchanges[1:]
    return head + [m for ex in exchanges for m in ex]


def fit_prompt(
    messages: list[dict], tokenizer: PreTrainedTokenizerBase, *, max_turns: int | None, max_prompt_tokens: int | None,
    cut_newest: bool = True, tools: list[dict] | None = None,
) -> tuple[list[int], int]:
    """Generation-prompt ids of the trimmed conversation (``trim_history``), and their length before any cut.

    When the newest exchange alone exceeds ``max_prompt_tokens``, its last tokens are kept after a leading bos, or,
    with ``cut_newest=False`` (the API: the newest message is never cut), ``ContextOverflow`` is raised (its
    ``limit`` is then ``max_prompt_tokens``; the caller adds the reply's tokens back). ``tools``: OpenAI tool
    definitions, given to the chat template.
    """
    trimmed = trim_history(messages, tokenizer, max_turns=max_turns, max_prompt_tokens=max_prompt_tokens, tools=tools)
    ids = tokenizer.apply_chat_template(trimmed, tokenize=True, add_generation_prompt=True, return_dict=False,
                                        tools=tools)
    ids = list(ids[0] if ids and isinstance(ids[0], list) else ids)
    full = len(ids)
    if max_prompt_tokens is not None and full > max_prompt_tokens and not cut_newest:
        raise ContextOverflow(full, None, max_prompt_tokens)
    if max_prompt_tokens is not None and full > max_prompt_tokens:
        head = ids[:1] if ids and ids[0] == tokenizer.bos_token_id else []
        ids = head + ids[full - (max_prompt_tokens - len(head)):]
    return ids, full
