"""Token-weighted loss and perplexity from per-example loss sums and target-token counts."""

import math

import datasets
import evaluate

_DESCRIPTION = """
Token-weighted mean negative log-likelihood and its perplexity: sum of per-example loss sums divided by the sum of
their target-token counts (never a mean of per-batch means), so the result does not depend on batch size, padding or
packing.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per-example sums of token negative log-likelihoods (nats).
    references: per-example numbers of target tokens.
Returns:
    loss (token-weighted mean NLL), perplexity (exp of loss), tokens (total target tokens).
Example:
    >>> m = evaluate.load("chathuman_hf/evaluation/metrics/token_perplexity")
    >>> m.compute(predictions=[2.0, 4.0], references=[1, 3])
    {'loss': 1.5, 'perplexity': 4.4816890703380645, 'tokens': 4}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TokenPerplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        tokens = int(sum(references))
        if tokens == 0:
            return {"loss": float("nan"), "perplexity": float("nan"), "tokens": 0}
        loss = float(sum(predictions)) / tokens
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)), "tokens": tokens}
