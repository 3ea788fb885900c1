"""Conversation quality beyond perplexity: diversity, repetition, speech-level agreement, context sensitivity and
response selection, computed on greedy replies to fixed held-out prompts (see ``response_selection`` for hits@1).

Keys (prefixed ``eval_`` in training evaluations):

- ``distinct_1``/``distinct_2``: distinct Kiwi-morpheme uni/bigrams over all replies / all of them (comparable
  across tokenizers, unlike token-id distinct-n);
- ``repeat_rate``: share of replies repeating a morpheme 4-gram of the user's last message or of the assistant's
  previous reply;
- ``speech_agreement``: share of replies whose speech level (``chathuman_hf.korean.analysis``) equals the reference
  reply's, over pairs where both are determined; ``speech_undetermined_share``: the share of pairs left out;
- ``context_sensitivity``: distinct replies / replies (1.0: a different answer to every prompt; 1/N: the same
  answer to everything);
- ``speech_control_plain``/``_polite`` (models trained with ``--speech_level_control``, after training): greedy
  replies to held-out prompts asked for 반말 / 존댓말 by the system message; the share at the asked level over the
  replies whose level is determined, with ``speech_control_{level}_undetermined`` the share left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from chathuman_hf.evaluation.response_selection import SelectionItem, response_selection, selection_items

logger = logging.getLogger(__name__)

Messages = list[dict[str, str]]
COLLAPSE_THRESHOLD = 0.5  # context sensitivity below this at the end of training is warned about


def ngrams(seq: list[str], n: int) -> list[tuple[str, ...]]:
    """All ``n``-grams of ``seq`` in order."""
    return [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]


def distinct_n(sequences: list[list[str]], n: int) -> float:
    """Distinct ``n``-grams / all ``n``-grams over every sequence (0.0 when there is none)."""
    grams = [g for seq in sequences for g in ngrams(seq, n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeats_ngram(reply: list[str], sources: list[list[str]], n: int = 4) -> bool:
    """True when ``reply`` contains an ``n``-gram of any of ``sources``."""
    seen = {g for src in sources for g in ngrams(src, n)}
    return any(g in seen for g in ngrams(reply, n))


def context_sensitivity(replies: list[str]) -> float:
    """Share of distinct replies (whitespace-normalised) among ``replies``."""
    if not replies:
        return float("nan")
    return len({" ".join(r.split()) for r in replies}) / len(replies)


def speech_agreement(replies: list[str], references: list[str]) -> dict[str, float]:
    """``speech_agreement`` over pairs with both levels determined, and ``speech_undetermined_share``."""
    from chathuman_hf.korean.analysis import UNDETERMINED, speech_level

    pairs = [(speech_level(r), speech_level(ref)) for r, ref in zip(replies, references, strict=True)]
    judged = [(a, b) for a, b in pairs if UNDETERMINED not in (a, b)]
    return {
        "speech_agreement": sum(a == b for a, b in judged) / len(judged) if judged else float("nan"),
        "speech_undetermined_share": (len(pairs) - len(judged)) / len(pairs) if pairs else float("nan"),
        "speech_polite_share": sum(a == "polite" for a, _ in pairs) / len(pairs) if pairs else float("nan"),
    }


def reply_metrics(
    prompts: list[Messages], replies: list[str], references: list[str] | None = None
) -> dict[str, float]:
    """Distinct-1/2, repetition, context sensitivity and (with ``references``) speech-level agreement."""
    from chathuman_hf.korean.analysis import morphemes

    out = {"context_sensitivity": context_sensitivity(replies)}
    reply_morphs = [morphemes(r) for r in replies]
    out["distinct_1"] = distinct_n(reply_morphs, 1)
    out["distinct_2"] = distinct_n(reply_morphs, 2)
    repeats = 0
    for prompt, reply in zip(prompts, reply_morphs, strict=True):
        users = [m["content"] for m in prompt if m["role"] == "user"][-1:]
        previous = [m["content"] for m in prompt if m["role"] == "assistant"][-1:]
        repeats += repeats_ngram(reply, [morphemes(t) for t in users + previous])
    out["repeat_rate"] = repeats / len(replies) if replies else float("nan")
    if references is not None:
        out.update(speech_agreement(replies, references))
    return out


def level_prompts(dialogues: Any, n: int) -> list[Messages]:
    """``n`` held-out prompts (as ``evaluation.health_prompts``) without their level instruction, or ``[]`` when
    the dialogues carry none (the model was not trained with ``--speech_level_control``)."""
    from chathuman_hf.evaluation.perplexity import health_prompts
    from chathuman_hf.korean.analysis import without_level_instruction

    if n <= 0:
        return []
    prompts = health_prompts(dialogues, n)
    stripped = [without_level_instruction(p) for p in prompts]
    return stripped if any(len(a) != len(b) or a != b for a, b in zip(prompts, stripped, strict=True)) else []


def speech_control(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[Messages], *,
                   max_turns: int | None = None, max_prompt_tokens: int | None = None) -> dict[str, float]:
    """Per level: greedy replies to ``prompts`` with that level's instruction; the share at it (undetermined apart)."""
    from chathuman_hf.evaluation.perplexity import generate_replies
    from chathuman_hf.korean.analysis import PLAIN, POLITE, UNDETERMINED, speech_level, with_level_instruction

    out: dict[str, float] = {}
    for level in (PLAIN, POLITE):
        asked = [with_level_instruction(p, level) for p in prompts]
        _, _, texts = generate_replies(model, tokenizer, asked, max_turns=max_turns,
                                       max_prompt_tokens=max_prompt_tokens)
        levels = [speech_level(t) for t in texts]
        judged = [lv for lv in levels if lv != UNDETERMINED]
        out[f"speech_control_{level}"] = sum(lv == level for lv in judged) / len(judged) if judged else float("nan")
        out[f"speech_control_{level}_undetermined"] = (len(levels) - len(judged)) / len(levels) if levels else 0.0
    out["speech_control_prompts"] = len(prompts)
    return out


def reference_replies(dialogues: Any, prompts: list[Messages]) -> list[str]:
    """The held-out reply that followed each prompt of ``evaluation.health_prompts`` (same dialogues, same order)."""
    refs = []
    rows = iter(dialogues)
    for prompt in prompts:
        for row in rows:
            messages = list(row["messages"] if isinstance(row, dict) else row)
            if len(messages) > len(prompt) and [m["content"] for m in messages[: len(prompt)]] == [
                m["content"] for m in prompt
            ]:
                refs.append(messages[len(prompt)]["content"])
                break
        else:
            refs.append("")
    return refs


def kiwi_available() -> bool:
    """True when kiwipiepy can be imported (the morpheme and speech-level metrics need it)."""
    try:
        import kiwipiepy  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def warn_without_kiwi() -> None:
    """Say once per process that the Kiwi metrics are skipped and how to get them (each evaluation would repeat it)."""
    logger.warning('kiwipiepy is not installed: no distinct/repeat/speech metrics (pip install -e ".[korean]")')


@dataclass
class ConversationEval:
    """The fixed held-out material of the conversation metrics and the function computing them for a model."""

    references: list[str] = field(default_factory=list)
    selection: list[SelectionItem] = field(default_factory=list)
    max_length: int = 256
    max_turns: int | None = None
    batch_size: int = 64
    selection_every_eval: bool = True  # False: response selection only once ``final`` is set (after training)
    final: bool = False
    control_prompts: list[Messages] = field(default_factory=list)  # speech control, once ``final`` is set

    @classmethod
    def from_dialogues(cls, dialogues: Any, prompts: list[Messages], *, contexts: int = 200, seed: int = 0,
                       max_length: int = 256, max_turns: int | None = None,
                       selection_every_eval: bool = True, control_prompts: int = 0) -> ConversationEval:
        """References for ``prompts``, ``contexts`` response-selection items (19 distractors, ``seed``) and up to
        ``control_prompts`` speech-control prompts (when the dialogues carry level instructions)."""
        return cls(references=reference_replies(dialogues, prompts),
                   selection=selection_items(dialogues, contexts=contexts, seed=seed),
                   max_length=max_length, max_turns=max_turns, selection_every_eval=selection_every_eval,
                   control_prompts=level_prompts(dialogues, control_prompts) if kiwi_available() else [])

    def compute(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[Messages],
                replies: list[str]) -> dict[str, float]:
        """Every conversation metric for ``replies`` (greedy answers to ``prompts``) and the model's hits@1/MRR."""
        out: dict[str, float] = {}
        if replies:
            if kiwi_available():
                out.update(reply_metrics(prompts, replies, self.references or None))
            else:
                out["context_sensitivity"] = context_sensitivity(replies)
                warn_without_kiwi()
        if self.selection_every_eval or self.final:
            out.update(response_selection(model, tokenizer, self.selection, max_length=self.max_length,
                                          max_turns=self.max_turns, batch_size=self.batch_size))
        if self.final and self.control_prompts:
            from chathuman_hf.core.window import MIN_PROMPT_TOKENS
            from chathuman_hf.tokens.tokenizer import CHAT_SAMPLING

            room = max(self.max_length - CHAT_SAMPLING["max_new_tokens"], MIN_PROMPT_TOKENS)
            out.update(speech_control(model, tokenizer, self.control_prompts, max_turns=self.max_turns,
                                      max_prompt_tokens=room))
        return out


def collapse_warning(metrics: dict[str, Any], prefix: str = "eval_") -> str | None:
    """A warning when the final model gives (nearly) the same reply to different prompts, else None."""
    value = metrics.get(f"{prefix}context_sensitivity")
    if value is None or not value == value or value >= COLLAPSE_THRESHOLD:
        return None
    return (
        f"The model gives the same reply to many prompts ({prefix}context_sensitivity {value:.2f}: distinct replies / "
        "fixed held-out prompts) — it ignores the user. Train longer or with a higher learning rate, try "
        "--label-mode -100+sys on single-turn Q/A data, a smaller --vocab-size or a larger model; "
        f"{prefix}selection_hits_at_1 near chance (0.05) confirms it."
    )
