"""What a preference stage (``recipes/train.py --stage dpo|kto|orpo``) writes: the model, results, chat window, data
report, run arguments and a model card naming the stage, method, beta and pair counts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from chathuman_hf.models.lora import adapter_summary
from chathuman_hf.publishing.model_card import HYPERPARAMETERS
from chathuman_hf.publishing.provenance import base_model_license
from chathuman_hf.publishing.run_output import save_run
from chathuman_hf.training.preference_args import STAGE_METHODS, PreferenceArguments

logger = logging.getLogger(__name__)

CARD_METRICS = ("eval_loss", "eval_rewards/accuracies", "eval_rewards/margins", "eval_rewards/chosen",
                "eval_rewards/rejected", "eval_logps/chosen", "eval_logps/rejected", "eval_kl")


def render_preference_card(
    *, model_name: str, base_model: str, pref: PreferenceArguments, stats: dict[str, Any], hyper: dict[str, Any],
    eval_metrics: dict[str, Any], adapter: dict[str, Any] | None, hub_model_id: str | None,
) -> str:
    """Markdown with YAML front matter for the Hub."""
    meta = {"language": ["ko"], "license": base_model_license(base_model), "base_model": base_model,
            "library_name": "peft" if adapter else "transformers", "pipeline_tag": "text-generation",
            "tags": ["chathuman_hf", "korean", "chat", "conversational", "trl", pref.stage]
            + (["lora", "peft"] if adapter else [])}
    repo = hub_model_id or f"./{model_name}"
    method = {"stage": pref.stage, "method": STAGE_METHODS[pref.stage], "beta": pref.beta}
    if pref.stage == "dpo":
        method.update(loss_type=pref.loss_type, sft_weight=pref.sft_weight,
                      precompute_ref_log_probs=pref.precompute_ref_log_probs)
    lines = ["---", yaml.safe_dump(meta, allow_unicode=True, sort_keys=False).strip(), "---", "",
             f"# {model_name}", "",
             f"A Korean chat model tuned on preferences ({STAGE_METHODS[pref.stage]}) from `{base_model}` with "
             "chathuman_hf (TRL's trainers on the replies as the model generates them after its chat template).", "",
             "## Usage", "", "```python", "from transformers import pipeline", "",
             f'chat = pipeline("text-generation", model="{repo}"' + (f', tokenizer="{repo}")' if adapter else ")"),
             'out = chat([{"role": "user", "content": "안녕! 오늘 뭐 했어?"}])',
             'print(out[0]["generated_text"][-1]["content"])', "```", "", "## Preference stage", "",
             "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in method.items()]
    lines += [f"| {k} | {v} |" for k, v in stats.items() if k != "stage"]
    shown = [(k, eval_metrics[k]) for k in CARD_METRICS if k in eval_metrics]
    if shown:
        lines += ["", "## Held-out evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in shown]
    lines += ["", "## Training hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in hyper.items()]
    if adapter:
        lines += ["", f"LoRA adapter: r={adapter['r']}, alpha={adapter['lora_alpha']}, "
                  f"{adapter['trainable_params']:,} trainable parameters."]
    lines += ["", "The data report (`report.json`) lists every record kept or dropped, with the reason.", ""]
    return "\n".join(lines)


def preference_card_writer(trainer: Any, model_args: Any, pref: PreferenceArguments, stats: dict[str, Any]) -> Any:
    """A callable(output_dir) writing ``README.md`` from the trainer's current state."""

    def write(output_dir: str | Path) -> Path:
        out = Path(output_dir)
        results = out / "eval_results.json"
        eval_metrics = json.loads(results.read_text()) if results.is_file() else {}
        hyper = {k: getattr(trainer.args, k) for k in HYPERPARAMETERS if hasattr(trainer.args, k)}
        text = render_preference_card(
            model_name=Path(trainer.args.hub_model_id or out.resolve().name).name,
            base_model=model_args.model_name_or_path, pref=pref, stats=stats, hyper=hyper, eval_metrics=eval_metrics,
            adapter=adapter_summary(trainer.accelerator.unwrap_model(trainer.model)),
            hub_model_id=trainer.args.hub_model_id)
        out.mkdir(parents=True, exist_ok=True)
        (out / "README.md").write_text(text, encoding="utf-8")
        return out / "README.md"

    return write


def save_preference_output(
    trainer: Any, train_result: Any, data: Any, chat_window: Any, run_args: tuple[Any, ...] = ()
) -> dict[str, Any]:
    """Save the (best) model, results, chat window, report, run arguments and card; push when asked."""
    return save_run(trainer, {**train_result.metrics, **data.stats}, data.report, chat_window, run_args)
