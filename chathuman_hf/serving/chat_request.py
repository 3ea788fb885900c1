"""One chat request made ready for the engine, shared by the OpenAI and Ollama endpoints: messages checked (and the
speech-level instruction added), fields honoured or refused, the reply length fitted to the model's positions, the
skill that answers (only where the server lets skills answer on the API), and the replies themselves."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from chathuman_hf.chat import ChatEngine, EngineBusy, Generation, GenerationPreset
from chathuman_hf.korean.analysis import parse_speech_level, requested_level, with_level_instruction
from chathuman_hf.serving.errors import ApiError
from chathuman_hf.serving.request_checks import StopStream, check_template_accepts, stop_strings
from chathuman_hf.serving.sampling_params import check_fields, fit_reply, reply_options, request_preset
from chathuman_hf.serving.structured import Structured, plan_structured
from chathuman_hf.skills import SkillRouter


@dataclass
class ChatApi:
    """What the API endpoints share: the engine, the server's preset, window, skills (``None``: the model answers
    everything) and default speech level."""

    engine: ChatEngine
    preset: GenerationPreset
    max_chars: int
    max_turns: int
    skills: SkillRouter | None = None
    speech_level: str | None = None

    def prepare(self, request: Any, messages: list[dict[str, str]]) -> PreparedChat:
        """Check ``request`` (a ``ChatCompletionRequest``) and fit it; ``messages`` already validated."""
        engine = self.engine
        check_fields(request, engine.model.config.get_text_config().vocab_size)
        level = parse_speech_level(request.speech_level or self.speech_level)
        messages = with_level_instruction(messages, requested_level(messages, level))
        stops = stop_strings(request.stop)
        structured = plan_structured(request, engine, messages)
        check_template_accepts(engine.tokenizer, messages, structured.tools)  # a 400 before generation or a stream
        default = engine.generation_config(self.preset).max_new_tokens
        max_new, prompt_tokens = fit_reply(engine, messages, request.max_completion_tokens or request.max_tokens,
                                           default, self.max_turns, structured.tools)
        if structured.style is not None and request.stream and (getattr(request, "n", 1) or 1) > 1:
            raise ApiError(400, "n > 1 with tools cannot be streamed here; send stream: false or n: 1.", param="n")
        plain = structured.style is None and structured.constraint is None
        skill = self.skills.route(messages[-1]["content"]) if self.skills is not None and plain else None
        return PreparedChat(self, request, messages, structured.preset(request_preset(self.preset, request, max_new)),
                            max_new, prompt_tokens, stops, skill.text if skill is not None else None, structured)


@dataclass
class PreparedChat:
    api: ChatApi
    request: Any
    messages: list[dict[str, str]]
    preset: GenerationPreset
    max_new: int
    prompt_tokens: int
    stops: list[str]
    skill_text: str | None
    structured: Structured  # tools for the template, a grammar mask, how the reply is read back

    def count(self, text: str) -> int:
        return len(self.api.engine.tokenizer.encode(text, add_special_tokens=False))

    def skill_reply(self) -> Generation:
        """The skill's answer within ``max_new`` tokens (cut there: finish_reason "length")."""
        tokenizer = self.api.engine.tokenizer
        ids = tokenizer.encode(self.skill_text, add_special_tokens=False)
        if len(ids) <= self.max_new:
            return Generation(self.skill_text, self.prompt_tokens, len(ids), "stop")
        cut = tokenizer.decode(ids[: self.max_new], skip_special_tokens=True).rstrip("\ufffd").strip()
        return Generation(cut, self.prompt_tokens, self.max_new, "length")

    def reply(self, choice: int = 0) -> Generation:
        """The ``choice``-th reply (a skill's, or the model's with this choice's seed)."""
        if self.skill_text is not None:
            return self.skill_reply()
        try:
            return self.api.engine.generate(self.messages, self.preset, max_turns=self.api.max_turns,
                                            options=reply_options(self.request, choice), cut_newest=False,
                                            tools=self.structured.tools, constraint=self.structured.constraint)
        except EngineBusy:
            raise  # 503 + Retry-After (install_error_handlers)
        except Exception as exc:
            raise ApiError(500, f"Generation failed: {exc}", type="server_error") from exc

    def replies(self, n: int = 1) -> list[Generation]:
        """``n`` replies, admitted separately and decoded in one batch."""
        if n == 1:
            return [self.reply(0)]
        with ThreadPoolExecutor(n, thread_name_prefix="n-choice") as pool:
            return list(pool.map(self.reply, range(n)))

    def stream(self, scored: list | None = None, choice: int = 0) -> Iterator[str]:
        """Text pieces as generated (``Generation`` as the return value; ``None`` for a skill's answer)."""
        if self.skill_text is not None:
            return iter([self.skill_reply().text])
        return self.api.engine.stream(self.messages, self.preset, max_turns=self.api.max_turns,
                                      options=reply_options(self.request, choice), cut_newest=False, scored=scored,
                                      tools=self.structured.tools, constraint=self.structured.constraint)

    def shown(self, choice: int = 0) -> Iterator[tuple[str, list | None]]:
        """The reply as shown while it is generated: (piece, log-probs of the tokens since the previous piece or
        ``None`` when not asked for), stop strings applied; returns (finish_reason, completion tokens, the
        log-probs not yet given). ``EngineBusy`` comes before the first piece; closing it stops the generation."""
        cutter, live, sent = StopStream(self.stops), [], 0
        scoring = bool(self.request.logprobs)

        def fresh(upto: int | None = None) -> list | None:
            nonlocal sent
            if not scoring:
                return None
            new = live[sent:upto]
            sent += len(new)
            return new

        pieces = self.stream(scored=live, choice=choice)
        result = yield from cutter.cut(pieces, lambda piece: (piece, fresh()))
        if self.skill_text is not None:
            result = self.skill_reply()
        if result is None:  # ended at a stop string
            used = self.count("".join(cutter.shown))
            return "stop", used, fresh(used)
        if scoring and result.logprobs is not None and len(result.logprobs) > len(live):
            live[:] = result.logprobs  # decoded one at a time: the log-probs come at the end
        return result.finish_reason, result.completion_tokens, fresh()
