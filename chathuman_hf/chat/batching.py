"""Continuous batching: one forward pass per step for every running reply; new replies join at step boundaries.

Why not transformers' own continuous batching (``init_continuous_batching`` / ``generate_batch``, 5.25)? Measured on
this CPU (2026-12-04): it runs GPT-2 and batches well (16 greedy replies × 20 tokens of the 125M shape in 3.1-3.7 s
vs 18.8 s one at a time), but its logits processors see only each sequence's last token: our presets'
``no_repeat_ngram_size`` crashed its loop (IndexError in NoRepeatNGramLogitsProcessor, all 8 requests failed),
``repetition_penalty`` is dropped as unsupported, multi-token banned words cannot apply, and ``do_sample`` is one
setting for the whole manager. Its replies would differ from ``generate``'s. So this module batches the model's own
forward and runs each reply's own ``LogitsProcessorList`` (built by ``model._get_logits_processor`` from its
``GenerationConfig``, as ``generate`` does) on that reply's own tokens: greedy replies equal ``generate``'s token for
token (tests/test_batching.py). Joiners are prefilled together over a left-padded ``DynamicCache``, then each is
copied into a free slot of the batch's preallocated ``SlotCache`` (chat/slot_cache.py), where decoding runs: joining
and leaving touch no other row (tests/test_batching_slots.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue

import torch
from transformers import DynamicCache, GenerationConfig, PreTrainedModel

from chathuman_hf.chat.admission import EngineBusy
from chathuman_hf.chat.decoding import Job, choose_tokens, prepare_job
from chathuman_hf.chat.slot_cache import SlotCache


def supports_batching(model: PreTrainedModel) -> bool:
    """Whether every cache layer of ``model`` is a plain full-attention ``DynamicLayer`` (no sliding window), which
    the slot cache assumes (Gemma 3's and EXAONE 4's sliding layers keep one reply at a time)."""
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


class StreamPump:
    """Feeds streamers from a thread of its own, so detokenising (``TextIteratorStreamer.put`` decodes the reply so
    far) runs beside the next forward (torch releases the GIL in its kernels), not inside the step loop."""

    def __init__(self) -> None:
        self.queue: SimpleQueue = SimpleQueue()
        self.thread = threading.Thread(target=self._run, name="chat-stream", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            call, arg = self.queue.get()
            try:
                call() if arg is None else call(arg)
            except Exception:  # a streamer's failure is its consumer's; the pump serves the others
                pass


class PumpedStreamer:
    """A streamer's ``put``/``end`` queued on the pump, in order."""

    def __init__(self, streamer, pump: StreamPump) -> None:
        self.streamer, self.pump = streamer, pump

    def put(self, value: torch.Tensor) -> None:
        self.pump.queue.put((self.streamer.put, value))

    def end(self) -> None:
        self.pump.queue.put((self.streamer.end, None))


class BatchScheduler:
    """A daemon thread that decodes up to ``max_batch_size`` replies together, holding ``lock`` during each step.

    State between steps: the batch's ``SlotCache`` (each slot's keys and length), the reply in each slot (``None``:
    free, reused by the next joiner) and each slot's last chosen token (not yet in the cache)."""

    def __init__(self, model: PreTrainedModel, lock: threading.Lock, *, max_batch_size: int,
                 on_expired: Callable[[], EngineBusy]) -> None:
        self.model = model
        self.lock = lock
        self.max_batch_size = max_batch_size
        self.on_expired = on_expired
        self.pending: deque[Job] = deque()
        self.rows: list[Job] = []
        self.wake = threading.Condition()
        self.thread: threading.Thread | None = None
        self.steps = 0
        self.pump: StreamPump | None = None
        self._prepared: dict[int, tuple[GenerationConfig, GenerationConfig]] = {}
        self._reset()

    def _reset(self) -> None:
        self.cache: SlotCache | None = None  # freed when the batch empties
        self.slots: list[Job | None] = []  # slot i of the cache: its reply, or None when free
        self.last: torch.Tensor | None = None  # each slot's last chosen token (not yet in the cache)

    def submit(self, job: Job) -> Job:
        """Queue ``job``; it joins the batch at the next step boundary with a free slot."""
        if job.streamer is not None:
            with self.wake:
                self.pump = self.pump or StreamPump()
            job.streamer = PumpedStreamer(job.streamer, self.pump)
        with self.wake:
            self.pending.append(job)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="chat-batch", daemon=True)
                self.thread.start()
            self.wake.notify()
        return job

    def stats(self) -> dict[str, int]:
        with self.wake:
            return {"running": len(self.rows), "queued": len(self.pending)}

    def _run(self) -> None:
        while True:
            with self.wake:
                while not self.pending and not self.rows:
                    self.wake.wait()
                joiners = self._take_joiners()
            try:
                with self.lock, torch.inference_mode():
                    self._drop([j for j in self.rows if j.cancel.is_set() or self._ended(j)])
                    if joiners:
                        self._prefill(joiners)
                    if self.rows:
                        self._decode()
            except Exception as exc:  # a failed forward fails every reply in it; the loop keeps serving
                for job in {*self.rows, *joiners}:
                    if not job.done.is_set():
                        self._finish(job, exc)
                with self.wake:
                    self.rows = []
                self._reset()

    def _take_joiners(self) -> list[Job]:
        """Pending jobs for the free slots (called with ``wake`` held); cancelled or expired ones are finished."""
        joiners: list[Job] = []
        while self.pending and len(self.rows) + len(joiners) < self.max_batch_size:
            job = self.pending.popleft()
            if job.cancel.is_set():
                self._finish(job)
            elif time.monotonic() > job.deadline:
                self._finish(job, self.on_expired())
            else:
                joiners.append(job)
        return joiners

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor,
                 cache: DynamicCache) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True,
                         logits_to_keep=1)
        self.steps += 1
        return out.logits[:, -1, :].to(dtype=torch.float32)

    def _prefill(self, joiners: list[Job]) -> None:
        """Run the joiners' prompts (left-padded together), choose their first tokens, place them in free slots."""
        for job in joiners:
            prepare_job(self.model, job, self._prepared)
        width = max(len(j.ids) for j in joiners)
        device = self.model.device
        ids = torch.zeros((len(joiners), width), dtype=torch.long, device=device)  # padding: masked out
        mask = torch.zeros_like(ids)
        for i, job in enumerate(joiners):
            ids[i, width - len(job.ids):] = job.history[0]
            mask[i, width - len(job.ids):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        last = choose_tokens(joiners, self._forward(ids, mask, positions, cache))
        self._place(cache, last, joiners)
        self._drop([j for j in joiners if self._ended(j)])

    def _place(self, prefilled: DynamicCache, last: torch.Tensor, jobs: list[Job]) -> None:
        """Copy each joiner's prompt keys into a free slot (the lowest first); the other rows are not touched."""
        free = [i for i, j in enumerate(self.slots) if j is None]
        free = (free + list(range(len(self.slots), len(self.slots) + len(jobs))))[:len(jobs)]
        need = max(len(j.ids) + (j.config.max_new_tokens or 0) + 1 for j in jobs)
        if self.cache is None:
            self.cache = SlotCache(prefilled, max(free) + 1, need)
            self.last = last.new_zeros(self.cache.slots)
        else:
            self.cache.reserve(max(free) + 1, max(need, self.cache.capacity))
            if self.last.shape[0] < self.cache.slots:
                self.last = torch.cat([self.last, self.last.new_zeros(self.cache.slots - self.last.shape[0])])
        slots = self.slots + [None] * (max(free) + 1 - len(self.slots))
        for row, (slot, job) in enumerate(zip(free, jobs, strict=True)):
            self.cache.put(slot, prefilled, row, len(job.ids))
            slots[slot] = job
        self.last[torch.tensor(free, device=last.device)] = last
        with self.wake:
            self.slots = slots
            self.rows = [j for j in slots if j is not None]

    def _decode(self) -> None:
        """One step for every slot in use: feed each row's last token, choose its next one (free slots ride along,
        masked, until a joiner takes them)."""
        n = len(self.slots)
        alive = torch.tensor([j is not None for j in self.slots], device=self.last.device)
        mask, positions = self.cache.step_inputs(n, alive)
        logits = self._forward(self.last[:n, None], mask, positions, self.cache)
        live = alive.nonzero()[:, 0]
        jobs = [j for j in self.slots if j is not None]
        self.last[live] = choose_tokens(jobs, logits[live] if len(live) < n else logits)
        self._drop([j for j in jobs if self._ended(j)])

    def _ended(self, job: Job) -> bool:
        job.cut = time.monotonic() > job.deadline
        return (job.tokens[-1] in job.stops or len(job.tokens) >= (job.config.max_new_tokens or 0)
                or job.cancel.is_set() or job.cut)

    def _drop(self, leaving: list[Job]) -> None:
        """Finish ``leaving`` and free their slots (nothing is copied); free slots at the end are no longer run."""
        if not leaving:
            return
        slots = [None if j in leaving else j for j in self.slots]
        for i, job in enumerate(self.slots):
            if job is not None and slots[i] is None:
                self.cache.free(i)
        while slots and slots[-1] is None:
            slots.pop()
        with self.wake:  # the rows are gone before their replies are done: stats never count a finished reply
            self.slots = slots
            self.rows = [j for j in slots if j is not None]
        if not self.rows:
            self._reset()
        for job in leaving:
            self._finish(job)

    def _finish(self, job: Job, error: BaseException | None = None) -> None:
        if job.done.is_set():
            return
        job.error = error
        if job.streamer is not None:
            job.streamer.end()
        job.done.set()
