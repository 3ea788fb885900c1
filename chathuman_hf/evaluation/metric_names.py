"""The metrics each evaluation during training reports (``ChatTrainer.evaluate``: ``eval_`` + these names), so that
``--metric_for_best_model`` is checked before a run spends time. ``tests/test_metric_names.py`` keeps these lists in
step with what a real evaluation returns."""

from __future__ import annotations

EVERY_EVAL = ("loss", "perplexity", "assistant_loss", "assistant_perplexity", "tokens", "assistant_tokens",
              "runtime", "samples_per_second", "steps_per_second")  # perplexity.summarize_stats + Trainer timing
GENERATION = ("gen_stopped_share", "gen_empty_share", "gen_distinct_2", "gen_mean_length")  # generation_health
REPLIES = ("context_sensitivity", "conversation_seconds")  # conversation.ConversationEval, with or without Kiwi
KIWI_REPLIES = ("distinct_1", "distinct_2", "repeat_rate", "speech_agreement", "speech_undetermined_share",
                "speech_polite_share")  # conversation.reply_metrics with references
SELECTION = ("selection_hits_at_1", "selection_mrr", "selection_meanll_hits_at_1", "selection_meanll_mrr",
             "selection_contexts", "selection_candidates")  # response_selection
FINAL_ONLY = ("speech_control_plain", "speech_control_plain_undetermined", "speech_control_polite",
              "speech_control_polite_undetermined", "speech_control_prompts")  # conversation.speech_control


def eval_metrics(*, generation: bool, conversation: bool, selection_every_eval: bool,
                 kiwi: bool) -> tuple[list[str], dict[str, str]]:
    """``(reported, missing)``: the ``eval_`` names every evaluation during training reports under these settings,
    and for the names it does not, what would make them reported."""
    reported, missing = list(EVERY_EVAL), {}
    groups = [
        (GENERATION, generation, "needs --generation_prompts above 0"),
        (REPLIES, conversation and generation, "needs --conversation_metrics true and --generation_prompts above 0"),
        (KIWI_REPLIES, conversation and generation and kiwi,
         'needs --conversation_metrics true, --generation_prompts above 0 and kiwipiepy (pip install -e ".[korean]")'),
        (SELECTION, conversation and selection_every_eval,
         "needs --conversation_metrics true and --selection_every_eval true"),
        (FINAL_ONLY, False, "is measured only in the evaluation after training, not at the evaluations that pick the "
                            "best checkpoint"),
    ]
    for names, on, why in groups:
        for name in names:
            if on:
                reported.append(name)
            else:
                missing.setdefault(f"eval_{name}", why)
    reported = list(dict.fromkeys(f"eval_{name}" for name in reported))
    return reported, {name: why for name, why in missing.items() if name not in reported}
