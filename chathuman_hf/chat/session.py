"""ChatSession: one conversation's history, skills routed before the model, replies and streaming."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chathuman_hf.chat.engine import ChatEngine
from chathuman_hf.chat.presets import GenerationPreset, get_preset, retry_preset
from chathuman_hf.chat.replies import EMPTY_REPLY, Generation
from chathuman_hf.chat.reply_turns import ModelTurn, ReplyConflict, ReplyTurns
from chathuman_hf.core.window import DEFAULT_MAX_TURNS
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.korean.analysis import parse_speech_level, requested_level, with_level_instruction
from chathuman_hf.skills import SkillRouter, SkillsConfig, build_router


@dataclass(frozen=True)
class Reply:
    """An answer: ``skill`` names the skill that gave it, ``None`` when the model wrote it; ``index``: the model's
    reply number in the conversation (what 👍/👎, 다시 and edits name; ``None`` for a skill's answer)."""

    text: str
    skill: str | None = None
    index: int | None = None


class ChatSession:
    """One conversation: the model sees at most ``max_turns`` exchanges, the new message's included.

    ``max_turns`` counts as in training (``--max_turns``); by default it is the one in ``chat_window.json``, else
    ``DEFAULT_MAX_TURNS``. The history keeps the ``max_turns - 1`` exchanges before the new message.
    ``speech_level`` (``plain``/``polite``/``mirror``; ``None``: none) asks a model trained with
    ``--speech_level_control`` for 반말 or 존댓말 through a leading system message. ``turns`` holds the model's
    replies for 다시 (``regenerate``), ``select``, ratings and edits, written to ``feedback`` when one is given.
    """

    def __init__(self, engine: ChatEngine, *, preset: str | GenerationPreset = "fast",
                 router: SkillRouter | None = None, use_skills: bool = True, max_turns: int | None = None,
                 speech_level: str | None = None, feedback: FeedbackLog | None = None,
                 **preset_overrides: Any) -> None:
        self.engine = engine
        self.preset = get_preset(preset, **preset_overrides)
        engine.check_preset(self.preset)  # a reply length the model cannot give: one line now, not at a message
        self.router = (router or build_router()) if use_skills else None
        window_turns = engine.window.max_turns
        self.max_turns = max_turns if max_turns is not None else (window_turns or DEFAULT_MAX_TURNS)
        if self.max_turns < 1:
            raise ValueError(f"max_turns={self.max_turns}: the model must see at least the new message (1)")
        self.speech_level = parse_speech_level(speech_level)
        self.history: list[dict[str, str]] = []
        self.last_reply: Reply | None = None
        self.last_generation: Generation | None = None
        self.turns = ReplyTurns(feedback)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, preset: str | GenerationPreset = "fast", *,
                        device: str | None = None, skills: SkillsConfig | None = None, use_skills: bool = True,
                        max_turns: int | None = None, chat_template: str = "auto", speech_level: str | None = None,
                        feedback: FeedbackLog | None = None, **preset_overrides: Any) -> ChatSession:
        """Load a saved chat model directory and start an empty conversation."""
        engine = ChatEngine.from_pretrained(model_dir, device=device, chat_template=chat_template)
        router = build_router(skills) if use_skills else None
        return cls(engine, preset=preset, router=router, use_skills=use_skills, max_turns=max_turns,
                   speech_level=speech_level, feedback=feedback, **preset_overrides)

    def reset(self) -> None:
        """Forget the conversation (its replies can no longer be rated)."""
        self.history.clear()
        self.turns.reset()

    def messages_for(self, text: str, speech_level: str | None = None) -> list[dict[str, str]]:
        """The messages the model sees for ``text``: the kept history plus the new user message, after the
        instruction for ``speech_level`` (default: the session's) when one is asked for."""
        messages = [*self.history, {"role": "user", "content": text}]
        return with_level_instruction(messages, requested_level(messages, self._level(speech_level)))

    def _level(self, speech_level: str | None) -> str | None:
        return self.speech_level if speech_level is None else parse_speech_level(speech_level)

    def _accept(self, text: str) -> tuple[str, Reply | None]:
        """Strip and validate a user message; a skill's answer (already recorded as ``last_reply``) if one applies."""
        text = text.strip()
        if not text:
            raise ValueError("The message is empty: type something to say.")
        skill = self._skill(text)
        if skill is not None:
            self.last_reply = skill
        return text, skill

    def _skill(self, text: str) -> Reply | None:
        if self.router is None:
            return None
        answer = self.router.route(text)
        if answer is None:
            return None
        if answer.action == "reset":
            self.reset()
        return Reply(answer.text, answer.skill)

    def _remember(self, text: str, answer: str, speech_level: str | None) -> Reply:
        context = [*self.history, {"role": "user", "content": text}]
        message = {"role": "assistant", "content": answer}
        self.history += [context[-1], message]
        keep = 2 * (self.max_turns - 1)
        if len(self.history) > keep:
            del self.history[: len(self.history) - keep]
        turn = self.turns.add(context, answer, message if keep else None, self._level(speech_level))
        self.last_reply = Reply(answer, index=turn.index)
        return self.last_reply

    def reply(self, text: str, *, speech_level: str | None = None,
              check: Callable[[list[dict[str, str]]], None] | None = None) -> Reply:
        """Answer one user message (a skill's answer or the model's), updating the history. ``check`` is called
        with the messages the model is about to see (a server refuses what the chat template refuses)."""
        text, skill = self._accept(text)
        if skill is not None:
            return skill
        messages = self.messages_for(text, speech_level)
        if check is not None:
            check(messages)
        self.turns.keep_latest()  # going on from the shown reply keeps it over its 다시 siblings
        generation = self.engine.generate(messages, self.preset, max_turns=self.max_turns)
        self.last_generation = generation
        return self._remember(text, generation.text or EMPTY_REPLY, speech_level)

    def stream(self, text: str, *, speech_level: str | None = None,
               check: Callable[[list[dict[str, str]]], None] | None = None) -> Iterator[str]:
        """Like ``reply`` but yields the answer in pieces; ``last_reply`` holds the full answer afterwards."""
        text, skill = self._accept(text)
        if skill is not None:
            yield skill.text
            return
        messages = self.messages_for(text, speech_level)
        if check is not None:
            check(messages)  # before the first piece: a refusal is not inside a started stream
        self.turns.keep_latest()
        generation = yield from self.engine.stream(messages, self.preset, max_turns=self.max_turns)
        if not generation.text:  # the model said nothing shown: the page and the terminal say so in words
            yield EMPTY_REPLY
        self.last_generation = generation
        self._remember(text, generation.text or EMPTY_REPLY, speech_level)

    def _newest(self, index: int, action: str) -> ModelTurn:
        """Reply ``index`` when it is the one the conversation goes on from; ``ValueError`` otherwise."""
        turn = self.turns.get(index)
        in_history = turn.message is None or bool(self.history) and self.history[-1] is turn.message
        if turn is not self.turns.latest() or not in_history:  # None: the model sees no history (max_turns 1)
            raise ReplyConflict(f"{action} works on the newest reply only; reply #{index} is not the newest.")
        if turn.edited is not None:
            raise ReplyConflict(f"reply #{index} was corrected: the conversation goes on from your text.")
        return turn

    def select(self, index: int, sibling: int) -> str:
        """Show sibling ``sibling`` of the newest reply ``index`` (‹ 1/2 ›): the conversation goes on from it."""
        return self.turns.show(self._newest(index, "choosing a version"), sibling)

    def stream_regenerate(self, index: int, *,
                          check: Callable[[list[dict[str, str]]], None] | None = None) -> Iterator[str]:
        """다시: a new reply to the context of the newest reply ``index``, streamed, added as its shown sibling
        (``last_reply`` afterwards). A greedy preset samples here (it would repeat the reply)."""
        turn = self._newest(index, "다시 (regenerate)")
        messages = with_level_instruction(turn.context, requested_level(turn.context, turn.speech_level))
        if check is not None:
            check(messages)
        generation = yield from self.engine.stream(messages, retry_preset(self.preset), max_turns=self.max_turns)
        if not generation.text:
            yield EMPTY_REPLY
        self.last_generation = generation
        self.turns.add_sibling(turn, generation.text or EMPTY_REPLY)
        self.last_reply = Reply(turn.text, index=turn.index)

    def regenerate(self, index: int, *, check: Callable[[list[dict[str, str]]], None] | None = None) -> Reply:
        """다시 without streaming: the new sibling of reply ``index``."""
        for _ in self.stream_regenerate(index, check=check):
            pass
        return self.last_reply
