"""Serve a saved chat model: the Korean chat page, the chat API and an OpenAI-compatible endpoint.

    pip install -e ".[serve]"
    python recipes/serve.py --model runs/quickstart/final --port 8000     # then open http://127.0.0.1:8000
    python recipes/serve.py --model runs/sft --model runs/kto --feedback_log feedback.jsonl   # two, side by side
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from transformers import HfArgumentParser
from transformers.utils import logging as hf_logging

from chathuman_hf.chat.options import ChatModelArguments
from chathuman_hf.core.cli import SHORT_USAGE, UsageError, run_cli
from chathuman_hf.skills import SkillsConfig

logger = logging.getLogger("chathuman_hf.serve")


@dataclass
class ServeModelArguments(ChatModelArguments):
    model: list[str] = field(metadata={
        "action": "append", "help": "Saved chat model or LoRA adapter directory; repeat --model to serve several "
        "(the API's model field picks one; the first is the default and the page's)."})

    def __post_init__(self) -> None:
        self.model = [m for group in self.model for m in (group if isinstance(group, list) else [group])]
        super().__post_init__()


@dataclass
class ServeArguments:
    host: str = field(default="127.0.0.1", metadata={"help": "Interface to bind (0.0.0.0 exposes it to the network)."})
    port: int = field(default=8000, metadata={"help": "TCP port."})
    max_message_chars: int = field(default=1000, metadata={"help": "Longest accepted message, in characters."})
    session_ttl: float = field(default=1800.0, metadata={"help": "Seconds an idle visitor's history is kept."})
    max_sessions: int = field(default=1000, metadata={"help": "Most live sessions (least recently used evicted)."})
    max_batch_size: int = field(default=32, metadata={
        "help": "Replies decoded together in one batch (continuous batching); 1 answers one at a time."})
    max_queue: int = field(default=64, metadata={
        "help": "Requests that may wait for a batch slot; past that the server answers 503 with Retry-After."})
    request_timeout: float = field(default=120.0, metadata={
        "help": "Seconds per request: still queued then, 503; still generating, the reply is cut there."})
    log_level: str = field(default="info", metadata={"help": "uvicorn log level."})
    keep_alive: int | None = field(default=None, metadata={
        "help": "Seconds an idle HTTP connection stays open (default 75: longer than clients and proxies keep it)."})
    skills_on_api: bool = field(default=False, metadata={
        "help": "Let skills answer on /v1 too (by default only the page and the terminal have them)."})
    feedback_log: str | None = field(default=None, metadata={
        "help": "Append ratings (page, POST /v1/feedback) to this JSONL file, PII-scrubbed; without it none are kept"})

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be between 1 and 65535 (0: any free port), got {self.port}")
        if self.keep_alive is not None and self.keep_alive < 1:
            raise UsageError(f"--keep_alive must be at least 1 second, got {self.keep_alive}")


def main(argv: list[str] | None = None) -> int:
    parser = HfArgumentParser((ServeModelArguments, ServeArguments, SkillsConfig), usage=SHORT_USAGE)
    model_args, serve_args, skills = parser.parse_args_into_dataclasses(args=argv)
    try:
        import uvicorn

        from chathuman_hf.serving import create_app
        from chathuman_hf.serving.runner import KEEP_ALIVE_SECONDS
    except ImportError as exc:
        raise UsageError(f"Serving needs the 'serve' extra: pip install -e '.[serve]' ({exc})") from None
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    app = create_app(model_args.model[0], more_models=model_args.model[1:], preset=model_args.preset,
                     preset_overrides=model_args.preset_overrides(),
                     skills=skills, use_skills=not model_args.no_skills, max_turns=model_args.max_turns,
                     max_message_chars=serve_args.max_message_chars, session_ttl=serve_args.session_ttl,
                     max_sessions=serve_args.max_sessions, device=model_args.device,
                     chat_template=model_args.chat_template, max_batch_size=serve_args.max_batch_size,
                     max_queue=serve_args.max_queue, request_timeout=serve_args.request_timeout,
                     speech_level=model_args.speech_level, skills_on_api=serve_args.skills_on_api,
                     feedback_log=serve_args.feedback_log)
    if serve_args.host not in {"127.0.0.1", "localhost", "::1"}:
        logger.warning("Binding %s: the chat is reachable from other machines.", serve_args.host)
    logger.info("Chat page on http://%s:%d  (OpenAI API: /v1, Ollama API: /api)", serve_args.host, serve_args.port)
    keep_alive = KEEP_ALIVE_SECONDS if serve_args.keep_alive is None else serve_args.keep_alive
    uvicorn.run(app, host=serve_args.host, port=serve_args.port, log_level=serve_args.log_level,
                timeout_keep_alive=keep_alive)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
