"""UltraFeedback-style scored completions → one pair, the best-scored completion against the worst.

openbmb/UltraFeedback: ``instruction`` + ``completions`` with ``response``, ``overall_score``, ``fine-grained_score``
and per-aspect ``annotations`` (``{"helpfulness": {"Rating": "4", ...}}``, or a list of such); distilabel's
UltraFeedback task: ``instruction`` + parallel ``generations`` / ``ratings``. ``prompt`` may replace ``instruction``.
"""

from __future__ import annotations

import math
from typing import Any

from .preference import BadRecord, PrefRecord, messages, pair, text_of


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # UltraFeedback's "N/A"
    return number if math.isfinite(number) else None


def completion_score(completion: dict[str, Any]) -> float | None:
    """``overall_score`` (``score``), else ``fine-grained_score``, else the mean of the per-aspect ratings."""
    for key in ("overall_score", "score", "fine-grained_score"):
        value = completion.get(key)
        if not isinstance(value, bool) and (number := _number(value)) is not None:
            return number
    annotations = completion.get("annotations")
    values: list[Any] = []
    if isinstance(annotations, dict):  # {"helpfulness": {"Rating": "4", ...} or [{"Rating": "4", ...}], ...}
        for aspect in annotations.values():
            for entry in aspect if isinstance(aspect, list) else [aspect]:
                if isinstance(entry, dict):
                    values.append(entry.get("Rating"))
    numbers = [n for n in map(_number, values) if n is not None]
    return sum(numbers) / len(numbers) if numbers else None


def _scored(obj: dict[str, Any]) -> list[tuple[float, int, str]]:
    if "generations" in obj:  # distilabel: parallel generations / ratings lists
        generations, ratings = obj.get("generations"), obj.get("ratings")
        if not isinstance(generations, list) or not isinstance(ratings, list) or len(generations) != len(ratings):
            raise BadRecord("malformed_record", "generations and ratings must be lists of the same length")
        return [(score, i, text_of(text, f"generations[{i}]")) for i, (text, rated) in enumerate(zip(
            generations, ratings, strict=True)) if (score := _number(rated)) is not None]  # fmt: skip
    completions = obj.get("completions")
    if not isinstance(completions, list):
        raise BadRecord("malformed_record", f"completions is {type(completions).__name__}, expected a list")
    scored = []
    for i, item in enumerate(completions):
        if not isinstance(item, dict):
            raise BadRecord("malformed_record", f"completions[{i}] is {type(item).__name__}, expected an object")
        score = completion_score(item)
        text = item.get("response", item.get("text"))
        if score is not None and text is not None:
            scored.append((score, i, text_of(text, f"completions[{i}].response")))
    return scored


def parse_ultrafeedback(obj: dict[str, Any]) -> PrefRecord:
    """Scored completions: the highest-scored against the lowest-scored (the first of equals); a tie is dropped."""
    prompt = obj.get("prompt", obj.get("instruction"))
    if prompt is None:
        raise BadRecord("malformed_record", 'no "instruction" or "prompt"')
    context = messages(prompt, "prompt" if "prompt" in obj else "instruction")
    scored = _scored(obj)
    if len(scored) < 2:
        raise BadRecord("too_few_completions", f"{len(scored)} scored completion(s), a pair needs 2")
    best = max(scored, key=lambda s: (s[0], -s[1]))
    worst = min(scored, key=lambda s: (s[0], s[1]))
    if best[0] == worst[0]:
        raise BadRecord("tied_scores", f"every completion scores {best[0]:g}: no preference")
    return pair(context, best[2], worst[2])
