"""``/v1/completions`` with ``stream: true``: server-sent events in OpenAI's completions shape (``text_completion``
chunks with ``choices[{text, index, logprobs, finish_reason}]``, a usage chunk with ``stream_options.include_usage``,
then ``data: [DONE]``). Every prompt × ``n`` reply decodes at once; chunks are tagged by choice index."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from chathuman_hf.chat import ChatEngine, GenerationPreset
from chathuman_hf.chat.reply_options import ReplyOptions
from chathuman_hf.serving.openai_api import late_errors, usage
from chathuman_hf.serving.request_checks import StopStream
from chathuman_hf.serving.stream_choices import merge_streams


def _shown(engine: ChatEngine, ids: list[int], preset: GenerationPreset, options: ReplyOptions | None,
           stops: list[str]) -> Iterator[str]:
    """One reply's pieces with the stop strings applied; returns (finish_reason, completion tokens)."""
    cutter = StopStream(stops)
    result = yield from cutter.cut(engine.stream_ids(ids, preset, options=options))
    if result is None:  # ended at a stop string
        return "stop", len(engine.tokenizer.encode("".join(cutter.shown), add_special_tokens=False))
    return result.finish_reason, result.completion_tokens


def completion_events(engine: ChatEngine, prompts: list[list[int]], n: int, preset: GenerationPreset,
                      options: Any, stops: list[str], *, echo: bool, include_usage: bool) -> Iterator[str]:
    """The event stream of one streamed completions request (``options(c)``: the reply options of choice ``c``),
    errors reported as ``openai_api.late_errors`` does."""
    return late_errors(_events(engine, prompts, n, preset, options, stops, echo=echo, include_usage=include_usage))


def _events(engine: ChatEngine, prompts: list[list[int]], n: int, preset: GenerationPreset, options: Any,
            stops: list[str], *, echo: bool, include_usage: bool) -> Iterator[str]:
    cid, now = f"cmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(index: int, text: str, finish: str | None = None) -> str:
        body = {"id": cid, "object": "text_completion", "created": now, "model": engine.name,
                "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    merged = merge_streams([_shown(engine, ids, preset, options(c), stops) for ids in prompts for c in range(n)])
    started: set[int] = set()
    try:
        while True:
            try:
                i, piece = next(merged)
            except StopIteration as end:
                finals = end.value
                break
            if i not in started:
                started.add(i)
                if echo:
                    yield chunk(i, engine.tokenizer.decode(prompts[i // n]))
            yield chunk(i, piece)
    finally:
        merged.close()
    for i, (finish, _) in enumerate(finals):
        if echo and i not in started:
            yield chunk(i, engine.tokenizer.decode(prompts[i // n]))
        yield chunk(i, "", finish)
    if include_usage:
        prompt_tokens = sum(len(ids) for ids in prompts)
        completion_tokens = sum(used for _, used in finals)
        body = {"id": cid, "object": "text_completion", "created": now, "model": engine.name, "choices": [],
                "usage": usage(prompt_tokens, completion_tokens)}
        yield f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
