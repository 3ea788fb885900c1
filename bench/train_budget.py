"""The equal-useful-token budget of bench/train_throughput.py: counts, times, evaluates at marks, and stops."""

from __future__ import annotations

import math
import time


class Budget:
    """Counts useful tokens through a forward pre-hook, times training steps, evaluates at token marks, stops."""

    def __init__(self, model, pad_id: int, budget: int, eval_fn, n_evals: int, max_seconds: float | None, sync):
        self.pad_id, self.budget, self.eval_fn, self.max_seconds, self.sync = (
            pad_id, budget, eval_fn, max_seconds, sync
        )
        self.marks = [math.ceil(budget * k / n_evals) for k in range(1, n_evals + 1)]
        self.tokens = self.positions = self.steps = 0
        self.train_s = self.eval_s = 0.0
        self.curve: list[dict[str, float]] = []
        self.capped = False
        self.warmup_steps = 2
        self.warm: tuple[int, int, float] | None = None  # (tokens, positions, train_s) after the warm-up steps
        self._t = None
        self._handle = model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is None:
            return
        self.positions += ids.numel()
        self.tokens += int((ids != self.pad_id).sum())

    def start(self) -> None:
        self.sync()
        self._t = time.perf_counter()

    def after_step(self) -> bool:
        self.sync()
        now = time.perf_counter()
        self.train_s += now - self._t
        self.steps += 1
        if self.steps == self.warmup_steps:
            self.warm = (self.tokens, self.positions, self.train_s)
        done = self.tokens >= self.budget
        self.capped = not done and self.max_seconds is not None and self.train_s >= self.max_seconds
        if done or self.capped or (self.marks and self.tokens >= self.marks[0]):
            while self.marks and self.tokens >= self.marks[0]:
                self.marks.pop(0)
            t0 = time.perf_counter()
            ppl = self.eval_fn()
            self.eval_s += time.perf_counter() - t0
            self.curve.append({"tokens": self.tokens, "train_s": round(self.train_s, 3), "ppl": ppl})
        self._t = time.perf_counter()
        return done or self.capped

    def close(self) -> None:
        self._handle.remove()


def time_to_target(curve: list[dict[str, float]], target: float) -> float | None:
    """Training seconds at which held-out ppl first reaches `target` (log-linear between eval points)."""
    prev = {"train_s": 0.0, "ppl": float("inf")}
    for point in curve:
        if point["ppl"] <= target:
            if not math.isfinite(prev["ppl"]):
                return point["train_s"]
            span = math.log(prev["ppl"]) - math.log(point["ppl"])
            frac = (math.log(prev["ppl"]) - math.log(target)) / span if span > 0 else 1.0
            return prev["train_s"] + frac * (point["train_s"] - prev["train_s"])
        prev = point
    return None



def budget_callback(budget: Budget):
    from transformers import TrainerCallback

    class _CB(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            budget.start()

        def on_step_end(self, args, state, control, **kw):
            if budget.after_step():
                control.should_training_stop = True

    return _CB()
