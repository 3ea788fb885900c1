"""The FastAPI app: the chat page and its per-session API (``/page/api/*``), health, the OpenAI-compatible
``/v1/*`` and Ollama's ``/api/*``."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from chathuman_hf.chat import ChatEngine, ChatSession, EngineBusy, get_preset
from chathuman_hf.core.window import DEFAULT_MAX_TURNS
from chathuman_hf.data.feedback_log import FeedbackLog
from chathuman_hf.korean.analysis import parse_speech_level, with_level_instruction
from chathuman_hf.serving.chat_request import ChatApi
from chathuman_hf.serving.completions_api import make_completions_router
from chathuman_hf.serving.errors import ApiError, check_unicode, install_error_handlers
from chathuman_hf.serving.feedback_api import CompletionMemory, make_feedback_router
from chathuman_hf.serving.limits import BodySizeLimit, WorkerThreads
from chathuman_hf.serving.models import ServedModel, ServedModels, open_engines
from chathuman_hf.serving.ollama_api import make_ollama_router
from chathuman_hf.serving.openai_api import make_openai_router
from chathuman_hf.serving.request_checks import check_template_accepts
from chathuman_hf.serving.schemas import ChatRequest, ChatResponse, ResetRequest
from chathuman_hf.serving.store import SessionStore
from chathuman_hf.serving.streaming import EventStreamResponse
from chathuman_hf.skills import SkillRouter, SkillsConfig, build_router

HERE = Path(__file__).resolve().parent
logger = logging.getLogger(__name__)


def create_app(model_dir: str | Path | None = None, *, engine: ChatEngine | None = None,
               session_factory: Callable[[], ChatSession] | None = None, preset: str = "fast",
               preset_overrides: dict[str, Any] | None = None, skills: SkillsConfig | None = None,
               router: SkillRouter | None = None, use_skills: bool = True, max_turns: int | None = None,
               max_message_chars: int = 1000, session_ttl: float = 1800.0, max_sessions: int = 1000,
               device: str | None = None, title: str = "이랑 · 일상 대화 친구",
               chat_template: str = "auto", max_body_bytes: int = 1 << 20, max_batch_size: int = 1,
               max_queue: int = 64, request_timeout: float = 120.0, speech_level: str | None = None,
               skills_on_api: bool = False, feedback_log: str | Path | None = None,
               more_models: Sequence[str | Path | ChatEngine] = ()) -> FastAPI:
    """Build the app around a model directory or a loaded ``ChatEngine`` (one of them is required).

    Each visitor's history lives in its own ``ChatSession`` on the server (idle TTL ``session_ttl`` seconds, at
    most ``max_sessions`` live). Replies are decoded ``max_batch_size`` at a time (1: one after another), at most
    ``max_queue`` more wait, each for ``request_timeout`` seconds; past that a request gets 503 with ``Retry-After``
    (the limits of a loaded ``engine`` are its own). Request bodies over ``max_body_bytes`` are refused (413) from
    their ``Content-Length`` before they are read, or as they arrive when they have none (chunked). Skills answer
    on the page; on ``/v1`` and Ollama's API only with ``skills_on_api``. Ratings are appended to ``feedback_log``
    (PII-scrubbed JSONL, ``data/feedback_log.py``); without it none are kept (``app.state.feedback`` is None).
    ``more_models`` (directories or engines) are served too, picked by the API's ``model`` field
    (``app.state.models``); the first model is the default and the page's.
    """
    if engine is None and model_dir is None:
        raise ValueError("create_app needs model_dir (a saved chat model directory) or engine.")
    engines = open_engines(engine if engine is not None else model_dir, more_models, device=device,
                           chat_template=chat_template, max_batch_size=max_batch_size, max_queue=max_queue,
                           request_timeout=request_timeout)
    engine = engines[0]
    if use_skills and router is None:
        router = build_router(skills)
    base_preset = get_preset(preset, **(preset_overrides or {}))

    def turns(model: ChatEngine) -> int:
        return max_turns if max_turns is not None else (model.window.max_turns or DEFAULT_MAX_TURNS)

    for model in engines:
        model.check_preset(base_preset)  # at start-up: a reply length the model cannot give would fail every request
        check_server_level(model.tokenizer, speech_level)
    window_turns = turns(engine)

    def default_factory() -> ChatSession:
        return ChatSession(engine, preset=base_preset, router=router, use_skills=use_skills, max_turns=window_turns,
                           speech_level=speech_level)

    store = SessionStore(session_factory or default_factory, ttl=session_ttl, max_sessions=max_sessions,
                         admission=engine.admission)
    app = FastAPI(title="chathuman_hf chat", version="0.1.0")
    app.state.engine, app.state.store, app.state.router = engine, store, router
    api_skills = router if skills_on_api else None
    models = ServedModels([ServedModel(m, ChatApi(m, base_preset, max_message_chars, turns(m), api_skills,
                                                  speech_level),
                                       FeedbackLog(feedback_log, model=m.name, revision=m.revision)
                                       if feedback_log else None) for m in engines])  # fmt: skip
    app.state.models, app.state.feedback = models, models.default.feedback
    app.state.completions = CompletionMemory(ttl=session_ttl) if feedback_log else None  # for POST /v1/feedback
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(WorkerThreads, threads=sum(m.admission.capacity for m in engines) + 32)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    catalog = router.catalog() if router is not None else []

    def check_message(message: str) -> str:
        text = check_unicode(message, "message").strip()
        if not text:
            raise ApiError(400, "message is empty: send some text.", param="message")
        if len(text) > max_message_chars:
            raise ApiError(400, f"message is {len(text)} characters long; the limit is {max_message_chars}.",
                           param="message")
        return text

    def check_prompt(messages: list[dict[str, str]]) -> None:
        """A 400 with the template's reason when it refuses what the model would see (speech_level: a system line)."""
        try:
            check_template_accepts(engine.tokenizer, messages)
        except ApiError as exc:
            leveled = messages[0]["role"] == "system"
            exc.param = "speech_level" if leveled else "message"
            if leveled:
                exc.message += ' (speech_level adds a system message: send "speech_level": "none")'
            raise

    def session_for(session_id: str | None) -> tuple[str, Any]:
        session_id = session_id or uuid.uuid4().hex
        try:
            return session_id, store.get(session_id)
        except ValueError as exc:
            raise ApiError(400, str(exc), param="session_id") from exc

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "index.html", {
            "title": title, "skills": [s for s in catalog if s["name"] != "help"],
            "max_chars": max_message_chars, "model_name": engine.name,
        })

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/healthz")
    async def healthz() -> dict:  # async: answers at once even when every worker thread waits on the model
        load = engine.load()
        return {"status": "ok", "model": engine.name, "models": list(models.by_name), "sessions": len(store),
                "preset": base_preset.name,
                "max_batch_size": load["max_batch_size"], "batch_occupancy": load["running"],
                "queue_depth": load["queued"], "max_queue": load["max_queue"], "refused": load["refused"],
                "waiting_for_session": store.waiting}

    @app.post("/page/api/chat", response_model=ChatResponse)
    def chat(body: ChatRequest) -> ChatResponse:
        text = check_message(body.message)
        session_id, entry = session_for(body.session_id)
        with store.turn(entry):  # EngineBusy (503 + Retry-After) when the queue is full or the wait too long
            try:
                reply = entry.session.reply(text, speech_level=body.speech_level, check=check_prompt)
            except (EngineBusy, ApiError):
                raise  # 503 + Retry-After, or 400 (install_error_handlers)
            except Exception as exc:
                logger.exception("generation failed for session %s", session_id)
                raise ApiError(500, f"Generation failed: {exc}", type="server_error") from exc
        return ChatResponse(reply=reply.text, skill=reply.skill, session_id=session_id)

    @app.post("/page/api/chat/stream")
    def chat_stream(body: ChatRequest) -> EventStreamResponse:
        """Server-sent events: ``{"type": "delta", "text"}`` pieces, then ``done`` (or ``error``)."""
        text = check_message(body.message)
        session_id, entry = session_for(body.session_id)

        def event(data: dict) -> str:
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        def events() -> Iterator[str]:
            with store.turn(entry):  # EngineBusy before the first event: 503 + Retry-After
                pieces = entry.session.stream(text, speech_level=body.speech_level, check=check_prompt)
                try:
                    for piece in pieces:
                        yield event({"type": "delta", "text": piece})
                except (EngineBusy, ApiError):
                    raise  # raised before the first event: EventStreamResponse answers 503 / 400
                except Exception as exc:
                    logger.exception("generation failed for session %s", session_id)
                    yield event({"type": "error", "message": f"Generation failed: {exc}"})
                    return
                finally:
                    pieces.close()  # a client that went away stops the generation and frees the model
                reply = entry.session.last_reply
            yield event({"type": "done", "reply": reply.text, "skill": reply.skill, "session_id": session_id})

        return EventStreamResponse(events())

    @app.post("/page/api/reset")
    def reset(body: ResetRequest) -> dict:
        try:
            existed = store.reset(body.session_id)
        except ValueError as exc:  # the message does not repeat the (possibly huge) id
            raise ApiError(400, str(exc), param="session_id") from exc
        return {"ok": True, "session_id": body.session_id, "existed": existed}

    remember = app.state.completions.remember if feedback_log else None
    app.include_router(make_openai_router(models, max_chars=max_message_chars, remember=remember))
    app.include_router(make_feedback_router(app.state.completions, lambda name: models.by_name[name].feedback,
                                            max_chars=max_message_chars))
    app.include_router(make_completions_router(models))
    app.include_router(make_ollama_router(models))
    return app


def check_server_level(tokenizer: Any, speech_level: str | None) -> None:
    """``ValueError`` (one line from serve.py) when ``--speech_level`` asks for a system message the chat template
    refuses (Gemma 2): every model reply would be refused otherwise."""
    choice = parse_speech_level(speech_level)
    if choice is None:
        return
    level = "polite" if choice == "mirror" else choice
    messages = with_level_instruction([{"role": "user", "content": "안녕"}], level)
    try:
        check_template_accepts(tokenizer, messages)
    except ApiError as exc:
        raise ValueError(f"--speech_level {speech_level}: {exc.message} (the level is asked for in a system "
                         "message); leave --speech_level out for this model.") from None
