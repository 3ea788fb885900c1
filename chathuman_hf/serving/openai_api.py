"""OpenAI-compatible ``POST /v1/chat/completions`` (JSON or server-sent events) and ``GET /v1/models``.

Every request field is honoured or refused (``serving/sampling_params.py``); skills answer here only when the server
was started with them (``--skills_on_api``), and then within ``max_tokens``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter

from chathuman_hf.chat import ChatEngine, EngineBusy, Generation, GenerationPreset
from chathuman_hf.korean.analysis import parse_speech_level, requested_level, with_level_instruction
from chathuman_hf.serving.errors import ApiError, check_unicode, error_body
from chathuman_hf.serving.logprobs import chat_logprobs
from chathuman_hf.serving.request_checks import StopStream, check_template_accepts, cut_at_stop, stop_strings
from chathuman_hf.serving.sampling_params import check_fields, fit_reply, reply_options, request_preset
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.streaming import EventStreamResponse
from chathuman_hf.skills import SkillRouter


def to_messages(request: ChatCompletionRequest, max_chars: int) -> list[dict[str, str]]:
    """Validate and convert OpenAI messages to the chat template's roles (``developer`` counts as ``system``)."""
    if not request.messages:
        raise ApiError(400, "messages is empty: send at least one user message.", param="messages")
    out: list[dict[str, str]] = []
    for i, message in enumerate(request.messages):
        role = "system" if message.role == "developer" else message.role
        if role not in {"system", "user", "assistant"}:
            raise ApiError(400, f"messages[{i}]: role '{message.role}' is not supported (tools are not available).",
                           param=f"messages[{i}].role")
        if role == "system" and i != 0:
            raise ApiError(400, f"messages[{i}]: a system message is only allowed first.", param=f"messages[{i}]")
        try:
            text = message.text()
        except ValueError as exc:
            raise ApiError(400, f"messages[{i}]: {exc}.", param=f"messages[{i}].content") from None
        text = check_unicode(text, f"messages[{i}].content").strip()
        if not text and role != "assistant":
            raise ApiError(400, f"messages[{i}]: content is empty.", param=f"messages[{i}].content")
        if len(text) > max_chars:
            raise ApiError(400, f"messages[{i}]: content is {len(text)} characters long; the limit is {max_chars}.",
                           param=f"messages[{i}].content")
        out.append({"role": role, "content": text})
    if out[-1]["role"] != "user":
        raise ApiError(400, "The last message must come from the user.", param="messages")
    return out


def skill_reply(engine: ChatEngine, text: str, max_new_tokens: int, prompt_tokens: int) -> Generation:
    """A skill's answer as a reply of at most ``max_new_tokens`` tokens (cut there: finish_reason "length")."""
    ids = engine.tokenizer.encode(text, add_special_tokens=False)
    if len(ids) <= max_new_tokens:
        return Generation(text, prompt_tokens, len(ids), "stop")
    cut = engine.tokenizer.decode(ids[:max_new_tokens], skip_special_tokens=True).rstrip("\ufffd").strip()
    return Generation(cut, prompt_tokens, max_new_tokens, "length")


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def make_openai_router(engine: ChatEngine, skills: SkillRouter | None, preset: GenerationPreset, *,
                       max_chars: int, max_turns: int, speech_level: str | None = None) -> APIRouter:
    """``skills``: the router that answers before the model (``None``: the model answers everything, the default of
    ``create_app`` unless ``skills_on_api``); ``speech_level``: the server's default for the ``speech_level`` field."""
    api = APIRouter()
    created = int(time.time())
    default_new = engine.generation_config(preset).max_new_tokens
    vocab_size = engine.model.config.get_text_config().vocab_size

    @api.get("/v1/models")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": engine.name, "object": "model", "created": created,
                                            "owned_by": "chathuman_hf"}]}

    @api.post("/v1/chat/completions")
    def chat_completions(request: ChatCompletionRequest):
        messages = to_messages(request, max_chars)
        if request.model not in (None, "", engine.name):  # as OpenAI-compatible servers do: no silent stand-in
            raise ApiError(404, f"The model '{request.model[:100]}' does not exist here; this server serves "
                           f"'{engine.name}' (GET /v1/models).", param="model", type="not_found_error")
        check_fields(request, vocab_size)
        level = parse_speech_level(request.speech_level or speech_level)
        messages = with_level_instruction(messages, requested_level(messages, level))
        stops = stop_strings(request.stop)
        check_template_accepts(engine.tokenizer, messages)  # a 400 before generation or a stream starts
        max_new, prompt_tokens = fit_reply(engine, messages, request.max_completion_tokens or request.max_tokens,
                                           default_new, max_turns)
        chosen = request_preset(preset, request, max_new)
        skill = skills.route(messages[-1]["content"]) if skills is not None else None
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        model = engine.name
        now = int(time.time())

        def count(text: str) -> int:
            return len(engine.tokenizer.encode(text, add_special_tokens=False))

        def reply(choice: int) -> Generation:
            if skill is not None:
                return skill_reply(engine, skill.text, max_new, prompt_tokens)
            try:
                return engine.generate(messages, chosen, max_turns=max_turns, options=reply_options(request, choice),
                                       cut_newest=False)
            except EngineBusy:
                raise  # 503 + Retry-After (install_error_handlers)
            except Exception as exc:
                raise ApiError(500, f"Generation failed: {exc}", type="server_error") from exc

        if not request.stream:
            if request.n == 1:
                results = [reply(0)]
            else:  # the n replies are admitted separately and decoded in one batch
                with ThreadPoolExecutor(request.n, thread_name_prefix="n-choice") as pool:
                    results = list(pool.map(reply, range(request.n)))
            choices = []
            for i, result in enumerate(results):
                content, finish, scored = result.text, result.finish_reason, result.logprobs
                content, stopped = cut_at_stop(content, stops)
                completion_tokens = result.completion_tokens
                if stopped:
                    finish, completion_tokens = "stop", count(content)
                    scored = scored[:completion_tokens] if scored is not None else None
                choices.append(({"index": i, "message": {"role": "assistant", "content": content},
                                 "logprobs": chat_logprobs(engine.tokenizer, scored), "finish_reason": finish},
                                completion_tokens))
            return {
                "id": completion_id, "object": "chat.completion", "created": now, "model": model,
                "choices": [c for c, _ in choices],
                "usage": usage(results[0].prompt_tokens, sum(n for _, n in choices)),
            }

        include_usage = bool((request.stream_options or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None = None, scored: list | None = None) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": chat_logprobs(engine.tokenizer, scored),
                                 "finish_reason": finish}]}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            cutter, shown, live, sent = StopStream(stops), [], [], 0
            wants = reply_options(request)
            scoring = wants is not None and wants.logprobs is not None

            def fresh() -> list | None:  # log-probs of the tokens recorded since the last chunk
                nonlocal sent
                if not scoring:
                    return None
                new, sent = live[sent:], len(live)
                return new

            if skill is not None:
                pieces = iter([skill_reply(engine, skill.text, max_new, prompt_tokens).text])
            else:
                pieces = engine.stream(messages, chosen, max_turns=max_turns, options=wants, cut_newest=False,
                                       scored=live)
            result = None
            started = False  # the role chunk goes with the first piece: a full engine is a 503 before it
            try:
                while not cutter.stopped:
                    try:
                        piece = next(pieces)
                    except StopIteration as stop:
                        result = stop.value
                        break
                    if not started:
                        started = True
                        yield chunk({"role": "assistant", "content": ""})
                    piece = cutter.feed(piece)
                    if piece:
                        shown.append(piece)
                        yield chunk({"content": piece}, scored=fresh())
            except EngineBusy:
                raise  # before any chunk (admission comes first): EventStreamResponse answers 503
            except Exception as exc:  # headers are sent: report in-band, as OpenAI does
                yield f"data: {json.dumps(error_body(f'Generation failed: {exc}', 'server_error'))}\n\n"
                yield "data: [DONE]\n\n"
                return
            finally:
                if hasattr(pieces, "close"):
                    pieces.close()  # a client that went away (or a stop string) stops the generation, frees the model
            if not started:
                yield chunk({"role": "assistant", "content": ""})
            rest = cutter.flush()
            if rest:
                shown.append(rest)
                yield chunk({"content": rest}, scored=fresh())
            if skill is not None:
                result = skill_reply(engine, skill.text, max_new, prompt_tokens)
            if result is None:  # ended at a stop string
                finish, used = "stop", (prompt_tokens, count("".join(shown)))
            else:
                finish, used = result.finish_reason, (result.prompt_tokens, result.completion_tokens)
                if scoring and result.logprobs is not None and len(result.logprobs) > len(live):
                    live[:] = result.logprobs  # decoded one at a time: the log-probs come with the last chunk
            last = (live[sent:used[1]] if result is None else live[sent:]) if scoring else None
            yield chunk({}, finish, scored=last)
            if include_usage:
                body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                        "choices": [], "usage": usage(*used)}
                yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return EventStreamResponse(events())

    return api
