"""ChatEngine: one loaded model + tokenizer shared by many sessions; prompts from the saved chat template only."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from chathuman_hf.chat.admission import Admission, EngineBusy
from chathuman_hf.chat.batching import BatchScheduler, supports_batching
from chathuman_hf.chat.decoding import Job, job_scored
from chathuman_hf.chat.one_at_a_time import generate_alone, stream_alone
from chathuman_hf.chat.presets import GenerationPreset, build_generation_config, get_preset
from chathuman_hf.chat.replies import Generation, finish_reply
from chathuman_hf.chat.reply_options import ReplyOptions
from chathuman_hf.chat.reply_text import opens_reasoning
from chathuman_hf.chat.saved_model import open_saved_model
from chathuman_hf.chat.text_stream import ReplyStreamer, shown_pieces
from chathuman_hf.core.window import DEFAULT_MAX_TURNS, MIN_PROMPT_TOKENS, ChatWindow, ContextOverflow, fit_prompt
from chathuman_hf.models.build import position_limit
from chathuman_hf.models.revision import model_revision


class ChatEngine:
    """Holds the model, tokenizer, base generation config and chat window; ``lock`` guards the model.

    ``max_batch_size`` 1 generates one reply at a time (``generate`` under the lock); above 1, streamable replies
    (one beam) are decoded together by a ``BatchScheduler``, joining the running batch between steps. At most
    ``max_batch_size + max_queue`` replies are in flight (``EngineBusy`` past that); each has ``request_timeout``
    seconds: still queued then it is refused with ``EngineBusy``, still generating it is cut there."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *,
                 generation_config: GenerationConfig | None = None, window: ChatWindow | None = None,
                 name: str = "chathuman", max_batch_size: int = 1, max_queue: int = 64,
                 request_timeout: float = 120.0) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("The tokenizer has no chat template: prepare it with chathuman_hf.tokens.tokenizer."
                             "prepare_tokenizer and save it with the model.")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.base_config = generation_config or model.generation_config
        self.window = window or ChatWindow(max_turns=DEFAULT_MAX_TURNS, max_length=position_limit(model) or 1024)
        self.name = name
        self.revision: str | None = None  # which saved model: set by from_pretrained (models/revision.py)
        self.lock = threading.Lock()
        self._configs: dict[GenerationPreset, GenerationConfig] = {}
        if max_batch_size > 1 and not supports_batching(model):
            warnings.warn(f"{type(model).__name__} has sliding-window cache layers, which batched decoding does not "
                          f"handle: replies are generated one at a time (max_batch_size 1, not {max_batch_size}).",
                          stacklevel=2)
            max_batch_size = 1
        self.admission = Admission(max_batch_size, max_queue, request_timeout)
        self.generating = 0  # replies running one at a time (under the lock)
        self.scheduler = None
        if max_batch_size > 1:
            self.scheduler = BatchScheduler(model, self.lock, max_batch_size=max_batch_size,
                                            on_expired=self.admission.expired)

    @classmethod
    def from_pretrained(cls, model_dir: str | Path, *, device: str | None = None,
                        dtype: torch.dtype | None = None, chat_template: str = "auto",
                        **limits: Any) -> ChatEngine:
        """Load a saved chat model directory (weights, tokenizer + chat template, generation config, window).

        ``chat_template`` (``--chat_template``): ``auto`` keeps the saved template; another choice replaces it and
        generation then stops on that template's end-of-turn token."""
        model_dir = Path(model_dir)
        model, tokenizer, generation_config, window = open_saved_model(model_dir, device=device, dtype=dtype,
                                                                       chat_template=chat_template)
        engine = cls(model, tokenizer, generation_config=generation_config, window=window, name=model_dir.name,
                     **limits)
        engine.revision = model_revision(model_dir)
        return engine

    def generation_config(self, preset: GenerationPreset) -> GenerationConfig:
        if preset not in self._configs:
            if len(self._configs) >= 64:  # API clients can vary temperature/max_tokens freely: keep the cache small
                self._configs.clear()
            self._configs[preset] = build_generation_config(self.base_config, preset, self.tokenizer)
        return self._configs[preset]

    def load(self) -> dict[str, int]:
        """Batch occupancy and queue depth now (for ``/healthz``)."""
        running = self.generating + (self.scheduler.stats()["running"] if self.scheduler is not None else 0)
        return {"max_batch_size": self.admission.max_batch_size, "running": running,
                "queued": max(0, self.admission.in_flight - running), "max_queue": self.admission.max_queue,
                "refused": self.admission.refused}

    @contextmanager
    def _admitted(self) -> Iterator[float]:
        """Count one request in flight for its duration (``EngineBusy`` when full); yields its deadline."""
        deadline = self.admission.enter()
        start, finished = time.monotonic(), False
        try:
            yield deadline
            finished = True
        finally:
            self.admission.leave(time.monotonic() - start if finished else None)

    @contextmanager
    def _one_at_a_time(self, deadline: float) -> Iterator[None]:
        """Hold the model lock (``EngineBusy`` if it is not free before ``deadline``)."""
        if not self.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise self.admission.expired()
        self.generating += 1
        try:
            yield
        finally:
            self.generating -= 1
            self.lock.release()

    def _batched(self, preset: GenerationPreset) -> bool:
        return self.scheduler is not None and preset.streams

    def context_limit(self) -> int | None:
        """Positions a prompt and its reply share: the model's position limit and the window's ``max_length``."""
        limits = [x for x in (position_limit(self.model), self.window.max_length) if x]
        return min(limits) if limits else None

    def check_max_new_tokens(self, max_new_tokens: int, option: str = "max_new_tokens") -> None:
        """Refuse (``ValueError``, one line naming ``option``) a reply length below 1 or one that leaves fewer than
        ``MIN_PROMPT_TOKENS`` of the model's positions for the prompt: the one rule for start-up and requests."""
        if max_new_tokens < 1:
            raise ValueError(f"{option} must be at least 1 (tokens per reply), got {max_new_tokens}")
        limit = self.context_limit()
        if limit is not None and max_new_tokens > limit - MIN_PROMPT_TOKENS:
            raise ValueError(f"{option} {max_new_tokens} leaves no room for a prompt within the model's "
                             f"{limit} positions: at most {limit - MIN_PROMPT_TOKENS}")

    def check_preset(self, preset: GenerationPreset | str, option: str = "--max-new-tokens") -> None:
        """:meth:`check_max_new_tokens` for the reply length ``preset`` gives (its own, else the model directory's
        generation config): what ``chat.py`` and ``serve.py`` call at start-up."""
        self.check_max_new_tokens(self.generation_config(get_preset(preset)).max_new_tokens, option)

    def prompt_ids(self, messages: list[dict], *, max_new_tokens: int, max_turns: int | None = None,
                   cut_newest: bool = True, tools: list[dict] | None = None) -> list[int]:
        """Token ids of the trimmed conversation rendered with the tokenizer's chat template (+ ``<sys>``);
        ``tools``: OpenAI tool definitions for the template.

        Older exchanges are dropped whole until the prompt and ``max_new_tokens`` fit; the newest exchange is then
        cut from the front (a warning), or, with ``cut_newest=False`` (the API), ``ContextOverflow`` is raised."""
        limit = self.context_limit()
        budget = limit - max_new_tokens if limit else None
        if cut_newest:
            self.check_max_new_tokens(max_new_tokens)
        try:
            ids, full = fit_prompt(messages, self.tokenizer, max_turns=max_turns, max_prompt_tokens=budget,
                                   cut_newest=cut_newest, tools=tools)
        except ContextOverflow as exc:
            raise ContextOverflow(exc.prompt_tokens, max_new_tokens, limit) from None
        if full > len(ids):
            warnings.warn(f"The last message alone is {full} tokens; keeping its last {budget} tokens so the "
                          f"prompt fits the model's positions.", stacklevel=2)
        return ids

    def generate(self, messages: list[dict], preset: GenerationPreset | str = "fast", *,
                 max_turns: int | None = None, options: ReplyOptions | None = None,
                 cut_newest: bool = True, tools: list[dict] | None = None,
                 constraint: Callable[[], list[LogitsProcessor]] | None = None) -> Generation:
        """Generate the assistant's next reply to ``messages`` (which must end with a user message); ``options``:
        seed, extra logits processors, log-probs of this reply; ``cut_newest``: see ``prompt_ids``; ``constraint``:
        makes this reply's own logits processors (a grammar mask, ``chat/constrained.py``), run before the warpers."""
        preset = get_preset(preset)
        config = self.generation_config(preset)
        ids = self.prompt_ids(messages, max_new_tokens=config.max_new_tokens, max_turns=max_turns,
                              cut_newest=cut_newest, tools=tools)
        return self.complete(ids, preset, options=options, constraint=constraint)

    def complete(self, ids: list[int], preset: GenerationPreset | str = "fast", *,
                 options: ReplyOptions | None = None,
                 constraint: Callable[[], list[LogitsProcessor]] | None = None) -> Generation:
        """Continue the token ids ``ids`` as they are (no template; ``generate`` renders one first)."""
        preset = get_preset(preset)
        config = self.generation_config(preset)
        extra = constraint() if constraint is not None else []
        with self._admitted() as deadline:
            if self._batched(preset):
                job = self.scheduler.submit(Job(ids, config, deadline, options=options, constraints=extra))
                job.done.wait()
                if job.error is not None:
                    raise job.error
                return finish_reply(self.tokenizer, job.tokens, len(ids), config, job.cut, job_scored(job),
                                    self._opened(ids))
            with self._one_at_a_time(deadline):
                new, scored = generate_alone(self.model, ids, config, deadline, options, extra)
        return finish_reply(self.tokenizer, new, len(ids), config, time.monotonic() > deadline, scored,
                            self._opened(ids))

    def _opened(self, ids: list[int]) -> str | None:
        """The closing tag awaited when the prompt ends inside a reasoning block it opened (DeepSeek-R1)."""
        return opens_reasoning(self.tokenizer.decode(ids[-8:]))

    def stream(self, messages: list[dict], preset: GenerationPreset | str = "fast", *,
               max_turns: int | None = None, timeout: float | None = None, options: ReplyOptions | None = None,
               cut_newest: bool = True, scored: list | None = None, tools: list[dict] | None = None,
               constraint: Callable[[], list[LogitsProcessor]] | None = None) -> Iterator[str]:
        """Yield text pieces as they are generated; the generator's return value is the final ``Generation``.

        Beam-search presets cannot stream token by token: they yield the whole reply once. Closing the generator
        early (a client disconnect) stops the generation at the next token and frees its slot (or the lock).
        ``timeout``: the longest wait for the next piece (default: the request timeout + 30 s). ``scored``: a list
        that batched decoding fills with log-probs as tokens come (when ``options.logprobs`` is set).
        """
        preset = get_preset(preset)
        if not preset.streams:
            result = self.generate(messages, preset, max_turns=max_turns, options=options, cut_newest=cut_newest,
                                   tools=tools, constraint=constraint)
            if result.text:
                yield result.text
            return result
        config = self.generation_config(preset)
        ids = self.prompt_ids(messages, max_new_tokens=config.max_new_tokens, max_turns=max_turns,
                              cut_newest=cut_newest, tools=tools)
        extra = constraint() if constraint is not None else []
        batched = self._batched(preset)
        streamer = ReplyStreamer(self.tokenizer, skip_prompt=not batched,
                                 timeout=timeout or self.admission.timeout + 30)
        opened = self._opened(ids)
        with self._admitted() as deadline:
            if batched:
                job = Job(ids, config, deadline, streamer=streamer, options=options, constraints=extra)
                if scored is not None:
                    job.scored = scored
                self.scheduler.submit(job)
                try:
                    shown = yield from shown_pieces(streamer, opened)
                finally:
                    job.cancel.set()  # a client that went away frees its slot at the next step
                job.done.wait()
                error, new, cut, logprobs = job.error, job.tokens, job.cut, job_scored(job)
            else:
                with self._one_at_a_time(deadline):
                    shown, error, new, logprobs = yield from stream_alone(
                        self.model, ids, config, streamer, deadline, options, opened, extra)
                cut = time.monotonic() > deadline
        if isinstance(error, EngineBusy):  # waited in the queue until its deadline: nothing was shown
            raise error
        if error is not None:
            raise RuntimeError(f"generation failed: {error}") from error
        result = finish_reply(self.tokenizer, new, len(ids), config, cut, logprobs, opened)
        if not result.text.startswith(shown):  # what a client saw is the reply (never expected: reply_text's rule)
            return replace(result, text=shown)
        if result.text != shown:
            yield result.text[len(shown):]  # complete characters held with a cut one
        return result
