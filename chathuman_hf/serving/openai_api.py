"""OpenAI-compatible ``POST /v1/chat/completions`` (JSON or server-sent events) and ``GET /v1/models``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter

from chathuman_hf.chat import ChatEngine, EngineBusy, GenerationPreset
from chathuman_hf.serving.errors import ApiError, check_unicode, error_body
from chathuman_hf.serving.request_checks import StopStream, check_template_accepts, cut_at_stop, stop_strings
from chathuman_hf.serving.schemas import ChatCompletionRequest
from chathuman_hf.serving.streaming import EventStreamResponse
from chathuman_hf.serving.structured import ToolStream, history_fields, plan_structured
from chathuman_hf.skills import SkillRouter

MAX_TOKENS_CAP = 512


def to_messages(request: ChatCompletionRequest, max_chars: int) -> list[dict[str, str]]:
    """Validate and convert OpenAI messages to the chat template's roles (``developer`` counts as ``system``)."""
    if request.n != 1:
        raise ApiError(400, f"Only n=1 is supported (got n={request.n}).", param="n")
    if not request.messages:
        raise ApiError(400, "messages is empty: send at least one user message.", param="messages")
    out: list[dict[str, str]] = []
    for i, message in enumerate(request.messages):
        role = "system" if message.role == "developer" else message.role
        if role not in {"system", "user", "assistant", "tool"}:
            raise ApiError(400, f"messages[{i}]: role '{message.role}' is not supported.",
                           param=f"messages[{i}].role")
        if role == "system" and i != 0:
            raise ApiError(400, f"messages[{i}]: a system message is only allowed first.", param=f"messages[{i}]")
        text = check_unicode(message.text(), f"messages[{i}].content").strip()
        if not text and role not in ("assistant", "tool"):
            raise ApiError(400, f"messages[{i}]: content is empty.", param=f"messages[{i}].content")
        if len(text) > max_chars:
            raise ApiError(400, f"messages[{i}]: content is {len(text)} characters long; the limit is {max_chars}.",
                           param=f"messages[{i}].content")
        out.append({"role": role, "content": text, **history_fields(message, i)})
    if out[-1]["role"] not in ("user", "tool"):
        raise ApiError(400, "The last message must come from the user (or be a tool result).", param="messages")
    return out


def request_preset(base: GenerationPreset, request: ChatCompletionRequest,
                   room: int | None = None) -> GenerationPreset:
    """The preset with the request's sampling fields; ``max_tokens`` is clamped to ``MAX_TOKENS_CAP`` and to
    ``room`` (what the model's positions leave for a reply): a reply cut there ends with finish_reason "length"."""
    overrides: dict[str, Any] = {}
    limit = request.max_completion_tokens or request.max_tokens
    if limit is not None:
        overrides["max_new_tokens"] = min(limit, MAX_TOKENS_CAP, room or MAX_TOKENS_CAP)
    if request.temperature is not None:
        if request.temperature == 0:
            overrides.update(do_sample=False, temperature=None, top_p=None, num_beams=1)
        else:
            overrides.update(temperature=request.temperature, do_sample=True)
    if request.top_p is not None and overrides.get("do_sample", base.do_sample):
        overrides["top_p"] = request.top_p
    if request.stream:
        overrides["num_beams"] = 1
    return base.replace(**overrides) if overrides else base


def make_openai_router(engine: ChatEngine, skills: SkillRouter | None, preset: GenerationPreset, *,
                       max_chars: int, max_turns: int) -> APIRouter:
    api = APIRouter()
    created = int(time.time())

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
        structured = plan_structured(request, engine, messages)
        chosen = structured.preset(request_preset(preset, request, engine.max_new_tokens_limit()))
        extra = {"tools": structured.tools, "constraint": structured.constraint}
        stops = stop_strings(request.stop)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        model = engine.name
        now = int(time.time())
        plain = structured.style is None and structured.constraint is None
        skill = skills.route(messages[-1]["content"]) if skills is not None and plain else None
        if skill is None:
            check_template_accepts(engine.tokenizer, messages, structured.tools)  # a 400 before generation starts

        def count(text: str) -> int:
            return len(engine.tokenizer.encode(text, add_special_tokens=False))

        if not request.stream:
            if skill is not None:
                content, finish = skill.text, "stop"
                prompt_tokens, completion_tokens = count(messages[-1]["content"]), count(skill.text)
            else:
                try:
                    result = engine.generate(messages, chosen, max_turns=max_turns, **extra)
                except EngineBusy:
                    raise  # 503 + Retry-After (install_error_handlers)
                except Exception as exc:
                    raise ApiError(500, f"Generation failed: {exc}", type="server_error") from exc
                content, finish = result.text, result.finish_reason
                prompt_tokens, completion_tokens = result.prompt_tokens, result.completion_tokens
            content, stopped = cut_at_stop(content, stops)
            if stopped:
                finish, completion_tokens = "stop", count(content)
            message, finish = structured.reply(content, finish)
            return {
                "id": completion_id, "object": "chat.completion", "created": now, "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens},
            }

        include_usage = bool((request.stream_options or {}).get("include_usage"))

        def chunk(delta: dict, finish: str | None = None) -> str:
            body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            cutter, shown = StopStream(stops), []
            if skill is not None:
                yield chunk({"role": "assistant", "content": ""})
                shown.append(cutter.feed(skill.text) + cutter.flush())
                yield chunk({"content": shown[-1]})
                finish, usage = "stop", (count(messages[-1]["content"]), count(shown[-1]))
            else:
                pieces = engine.stream(messages, chosen, max_turns=max_turns, **extra)
                calls = ToolStream(structured)  # content is held back where a tool call may begin
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
                            piece = calls.feed(piece)
                            if piece:
                                yield chunk({"content": piece})
                except EngineBusy:
                    raise  # before any chunk (admission comes first): EventStreamResponse answers 503
                except Exception as exc:  # headers are sent: report in-band, as OpenAI does
                    yield f"data: {json.dumps(error_body(f'Generation failed: {exc}', 'server_error'))}\n\n"
                    yield "data: [DONE]\n\n"
                    return
                finally:
                    pieces.close()  # a client that went away (or a stop string) stops the generation, frees the model
                if not started:
                    yield chunk({"role": "assistant", "content": ""})
                rest = cutter.flush()
                if rest:
                    shown.append(rest)
                    rest = calls.feed(rest)
                    if rest:
                        yield chunk({"content": rest})
                if result is None:  # ended at a stop string
                    limit = engine.generation_config(chosen).max_new_tokens
                    prompt = engine.prompt_ids(messages, max_new_tokens=limit, max_turns=max_turns,
                                               tools=structured.tools)
                    finish, usage = "stop", (len(prompt), count("".join(shown)))
                else:
                    finish, usage = result.finish_reason, (result.prompt_tokens, result.completion_tokens)
                if structured.style is not None:
                    delta, finish = calls.finish(finish)
                    if delta:
                        yield chunk(delta)
            yield chunk({}, finish)
            if include_usage:
                body = {"id": completion_id, "object": "chat.completion.chunk", "created": now, "model": model,
                        "choices": [], "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                                                 "total_tokens": usage[0] + usage[1]}}
                yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
            yield "data: [DONE]\n\n"

        return EventStreamResponse(events())

    return api
