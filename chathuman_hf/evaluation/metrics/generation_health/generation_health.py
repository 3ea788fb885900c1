"""Generation health of chat replies: stop share, empty share, distinct-2 and mean length (token ids in)."""

import datasets
import evaluate

_DESCRIPTION = """
Health of generated chat replies, computed from the reply token ids (special tokens removed) and whether each
generation stopped with an end-of-turn token before the token limit:
stopped_share (share that ended with end-of-turn), empty_share (share with no reply token), distinct_2 (distinct
token bigrams / all token bigrams over every reply) and mean_length (reply tokens per reply).
A model that only emits eos scores empty_share 1.0 even when its loss looks fine.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of replies, each a list of token ids (special tokens removed).
    references: list of 0/1, 1 when the generation ended with an end-of-turn token before the limit.
Returns:
    stopped_share, empty_share, distinct_2, mean_length (floats).
Example:
    >>> m = evaluate.load("chathuman_hf/evaluation/metrics/generation_health")
    >>> m.compute(predictions=[[5, 6, 7], []], references=[1, 1])
    {'stopped_share': 1.0, 'empty_share': 0.5, 'distinct_2': 1.0, 'mean_length': 1.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GenerationHealth(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Sequence(datasets.Value("int64")), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        n = len(predictions)
        if n == 0:
            return {"stopped_share": 0.0, "empty_share": 0.0, "distinct_2": 0.0, "mean_length": 0.0}
        bigrams = [tuple(reply[i : i + 2]) for reply in predictions for i in range(len(reply) - 1)]
        return {
            "stopped_share": sum(1 for r in references if r) / n,
            "empty_share": sum(1 for reply in predictions if len(reply) == 0) / n,
            "distinct_2": len(set(bigrams)) / len(bigrams) if bigrams else 0.0,
            "mean_length": sum(len(reply) for reply in predictions) / n,
        }
