"""One reply decoded by ``model.generate`` alone (the engine holds its lock around these): whole, or streamed from a
thread; the path for beam-search presets, sliding-window models and ``--max_batch_size 1``."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor, PreTrainedModel, StoppingCriteriaList

from chathuman_hf.chat.reply_options import ReplyOptions, TokenLogprob, generate_kwargs, scored_tokens, seeded
from chathuman_hf.chat.text_stream import CancelGeneration, ReplyStreamer, shown_pieces


def model_inputs(model: PreTrainedModel, ids: list[int]) -> dict[str, torch.Tensor]:
    """``generate``'s inputs for one unpadded prompt."""
    input_ids = torch.tensor([ids], dtype=torch.long, device=model.device)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def generate_alone(model: PreTrainedModel, ids: list[int], config: GenerationConfig, deadline: float,
                   options: ReplyOptions | None, extra: list[LogitsProcessor],
                   streamer: ReplyStreamer | None = None,
                   cancel: threading.Event | None = None) -> tuple[list[int], list[TokenLogprob] | None]:
    """The new token ids after ``ids`` and their log-probs (when ``options`` ask), stopped at ``deadline``."""
    stop = StoppingCriteriaList([CancelGeneration(cancel or threading.Event(), deadline)])
    with torch.inference_mode(), seeded(options and options.seed, model.device):
        output = model.generate(**model_inputs(model, ids), stopping_criteria=stop, streamer=streamer,
                                **generate_kwargs(config, options, extra))
    new = output.sequences[0, len(ids):].tolist()
    return new, scored_tokens(output, new, options)


def stream_alone(model: PreTrainedModel, ids: list[int], config: GenerationConfig, streamer: ReplyStreamer,
                 deadline: float, options: ReplyOptions | None, opened: str | None,
                 extra: list[LogitsProcessor]) -> Generator[str, None, tuple[str, Any, list[int], Any]]:
    """``generate_alone`` in a thread, yielding the shown pieces; returns (text shown, error, new ids, log-probs)."""
    box: dict[str, Any] = {}
    cancel = threading.Event()

    def run() -> None:
        try:
            box["new"], box["scored"] = generate_alone(model, ids, config, deadline, options, extra, streamer, cancel)
        except BaseException as exc:  # surfaced to the consumer
            box["error"] = exc
            streamer.end()

    thread = threading.Thread(target=run, name="chat-generate", daemon=True)
    thread.start()
    try:
        shown = yield from shown_pieces(streamer, opened)
    finally:
        cancel.set()
        thread.join()
    return shown, box.get("error"), box.get("new", []), box.get("scored")
