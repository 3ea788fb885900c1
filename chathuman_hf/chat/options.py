"""Command-line options shared by recipes/chat.py and recipes/serve.py (dataclasses for HfArgumentParser)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chathuman_hf.chat.saved_model import resolve_device
from chathuman_hf.core.cli import UsageError
from chathuman_hf.tokens.template_choice import chat_template_field


@dataclass
class ChatModelArguments:
    """Which chat model directory to load and how to decode."""

    model: str = field(metadata={"help": "Saved chat model or LoRA adapter directory (output of recipes/train.py)."})
    preset: str = field(default="fast", metadata={"help": "Generation preset: fast (streaming), greedy or seed."})
    max_new_tokens: int | None = field(default=None, metadata={"help": "Override the preset's reply length."})
    banned_words: list[str] | None = field(default=None, metadata={"help": "Words never generated (preset default)."})
    max_turns: int | None = field(default=None, metadata={
        "help": "Exchanges the model sees, the new message's included, as in training's --max_turns (default: "
                "chat_window.json)."})
    device: str = field(default="auto", metadata={"help": "cpu, cuda, cuda:1 ... or auto."})
    no_skills: bool = field(default=False, metadata={
        "help": "Answer everything with the model (the terminal chat keeps 초기화 to start a new conversation)."})
    chat_template: str = chat_template_field()
    speech_level: str = field(default="none", metadata={
        "help": "반말 or 존댓말 from a model trained with --speech_level_control: plain, polite, mirror (the level of "
                "your last message) or none (no instruction).", "choices": ["none", "plain", "polite", "mirror"]})

    def __post_init__(self) -> None:
        """Mistakes in these options stop the recipe in one line before the model loads."""
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens must be at least 1 (tokens per reply), got {self.max_new_tokens}")
        resolve_device(self.device)

    def preset_overrides(self) -> dict[str, Any]:
        overrides: dict[str, Any] = {}
        if self.max_new_tokens is not None:
            overrides["max_new_tokens"] = self.max_new_tokens
        if self.banned_words is not None:
            overrides["banned_words"] = tuple(self.banned_words)
        return overrides


@dataclass
class TerminalArguments:
    """What only the terminal chat has."""

    feedback_log: str | None = field(default=None, metadata={
        "help": "Append /good, /bad, /retry choices and /edit corrections to this JSONL file (PII-scrubbed, "
                "docs/serving.md); without it ratings are not kept."})
