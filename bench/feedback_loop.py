"""The loop, simulated: a served SFT model is rated by a script standing in for people, the ratings train a KTO stage
(DPO and ORPO on the pairs), and the new models are judged by the same rule on held-out prompts.

    python -m bench.feedback_loop --model outputs/sft --out bench/results/feedback_loop.json
    python -m bench.feedback_loop --model outputs/sft --kto beta=0.1 learning_rate=5e-6 num_train_epochs=3

1. Prompts: the user messages of ChatbotData (``../shared``), split as the SFT run split them (``--eval_split``
   0.1, seed 42): ``--rated`` prompts drawn from the training side are rated, ``--held_out`` prompts of the held-out
   side measure the pass rate (none of them is rated).
2. ``recipes/serve.py --feedback_log`` serves the model; the person of ``bench.feedback_person`` asks each rated
   prompt in a new conversation on the chat page's endpoints (the server's sampling settings), rates it, presses 다시
   once after a 👎 and rates the new reply (a 👍 keeps it: a retry pair); with ``--edit`` corrects a reply still at
   the wrong level (an edit pair). ``--person api``: the same person on ``/v1/chat/completions`` + ``POST
   /v1/feedback``.
3. ``recipes/prepare.py`` on the log, ``recipes/train.py --stage kto`` on the ratings and ``--stage dpo`` and
   ``--stage orpo`` on the pairs (a kept 다시 sibling or an edit over the model's reply).
4. Each model (SFT, KTO, DPO, ORPO) is served again: one reply per held-out prompt, judged by the rule (pass rate,
   distinct-2, mean length); ``recipes/evaluate_model.py`` gives hits@1 on the held-out split.

Target (issue 30): the pass rate rises by ≥ 20 points with hits@1 no worse than −2 points; end to end ≤ 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import CHATBOT_CSV, REPO, child_env
from bench.feedback_person import Client, PagePerson, pass_rate, rate_on_page, rate_prompts
from bench.machine import machine_info
from bench.serve_load import free_port, wait_until_served
from bench.writers import write_results


def prompts(data: str, eval_split: float, seed: int, rated: int, held_out: int) -> tuple[list[str], list[str]]:
    """``(rated, held_out)`` user messages: rated ones from the training side, never a held-out message."""
    from chathuman_hf.data.held_out import held_out_split
    from chathuman_hf.data.options import DataArguments
    from chathuman_hf.data.pipeline import load_dialogues_from_args

    train, test = held_out_split(load_dialogues_from_args(DataArguments(data=[data])), eval_split, seed)
    test_users = list(dict.fromkeys(m[0]["content"] for m in test["messages"]))
    train_users = [u for u in dict.fromkeys(m[0]["content"] for m in train["messages"]) if u not in set(test_users)]
    random.Random(seed).shuffle(train_users)
    return train_users[:rated], test_users[:held_out]


class Server:
    """``recipes/serve.py`` as a subprocess on a free loopback port (``with Server(...) as base:``)."""

    def __init__(self, model: str, work: Path, feedback_log: Path | None = None, batch: int = 32) -> None:
        self.cmd = [sys.executable, str(REPO / "recipes" / "serve.py"), "--model", model, "--port", str(free_port()),
                    "--device", "cpu", "--log_level", "warning", "--max_batch_size", str(batch)]
        if feedback_log is not None:
            self.cmd += ["--feedback_log", str(feedback_log)]
        self.log_path = work / f"server-{Path(model).name}.log"

    def __enter__(self) -> str:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO, env=child_env())
        return wait_until_served(self.proc, int(self.cmd[self.cmd.index("--port") + 1]), self.log, timeout=300)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def run(cmd: list[str], what: str) -> float:
    """Run a recipe; its wall seconds (its output tail on failure)."""
    start = time.monotonic()
    proc = subprocess.run([sys.executable, *cmd], cwd=REPO, env=child_env(), capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{what} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.monotonic() - start


def settings(pairs: list[str]) -> list[str]:
    """``key=value`` words as ``--key value`` options."""
    return [part for kv in pairs for part in (f"--{kv.split('=', 1)[0]}", kv.split("=", 1)[1])]


def train_stage(stage: str, model: str, data: list[str], out: str, options: list[str]) -> float:
    """``train.py --stage STAGE`` from the SFT model on ``data`` (no held-out split: the rule judges); seconds."""
    run_args = Path(model) / "run_args.json"
    trained = json.loads(run_args.read_text(encoding="utf-8")).get("ChatArguments", {}) if run_args.exists() else {}
    cmd = [str(REPO / "recipes" / "train.py"), "--stage", stage, "--model_name_or_path", model, "--data", *data,
           "--output_dir", out, "--max-length", str(trained.get("max_length", 128)), "--eval_split", "0",
           "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
           "--report_to", "none", "--disable_tqdm", "true", *settings(options)]
    return round(run(cmd, f"train.py --stage {stage}"), 1)


def judge_model(model: str, held_out: list[str], work: Path, a: argparse.Namespace) -> dict[str, Any]:
    """Pass rate on the held-out prompts (served) and the held-out metrics of ``evaluate_model.py``."""
    start = time.monotonic()
    with Server(model, work) as base:
        result = pass_rate(Client(base), held_out, threads=a.threads)
    result["pass_seconds"] = round(time.monotonic() - start, 1)
    out = work / f"eval-{Path(model).name}.json"
    result["eval_seconds"] = round(run([str(REPO / "recipes" / "evaluate_model.py"), "--model", model, "--data",
                                        a.data, "--eval-split", str(a.eval_split), "--split_seed", str(a.seed),
                                        "--max-turns", "1", "--selection_contexts", str(a.selection_contexts),
                                        "--generation_prompts", "20", "--output", str(out)], "evaluate_model.py"), 1)
    metrics = json.loads(out.read_text(encoding="utf-8"))
    metrics = metrics.get("metrics", metrics)
    result["hits_at_1"] = metrics["eval_selection_hits_at_1"]
    result["samples"] = result.pop("rows")[: a.samples]
    return result


def editor(client: Client, log: Path):
    """Writes an edit as the page does (a ``pair`` event, ``how="edit"``, source ``page``)."""
    from chathuman_hf.data.feedback_log import FeedbackLog

    writer = FeedbackLog(log, model=client.model, source="page")
    return lambda messages, corrected, original: writer.pair(messages, corrected, original, how="edit")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench.feedback_loop", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "outputs" / "sft"), help="The served SFT model directory.")
    parser.add_argument("--data", default=str(CHATBOT_CSV), help="Dialogues whose user messages are the prompts.")
    parser.add_argument("--eval_split", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rated", type=int, default=300, help="Prompts rated (a 👎 is regenerated and rated too).")
    parser.add_argument("--held_out", type=int, default=1183, help="Held-out prompts for the pass rate (default: "
                        "every distinct user message of ChatbotData's held-out split; 300 has a standard error of "
                        "~2.5 points).")
    parser.add_argument("--selection_contexts", type=int, default=1183, help="Held-out contexts hits@1 ranks (1,183: "
                        "all of ChatbotData's held-out split; 200 has a standard error of ~2.8 points).")
    parser.add_argument("--threads", type=int, default=32, help="Simulated people chatting at once.")
    parser.add_argument("--kto", nargs="*", default=["use_peft=true", "lora_r=2", "lora_alpha=4",
                                                     "learning_rate=1.5e-3", "num_train_epochs=3", "beta=0.5"],
                        help="train.py --stage kto options as key=value, in place of the default (a rank-2 LoRA "
                        "adapter: the best trade-off measured, bench/RESULTS.md § 18d).")
    parser.add_argument("--dpo", nargs="*", default=["use_peft=true", "lora_r=2", "lora_alpha=4", "sft_weight=2",
                                                     "learning_rate=1.5e-3", "num_train_epochs=6", "beta=0.1"],
                        help="train.py --stage dpo options as key=value, in place of the default (a rank-2 LoRA "
                        "adapter with the SFT term on the chosen reply, RPO: bench/RESULTS.md § 18e; --no_dpo: skip).")
    parser.add_argument("--orpo", nargs="*", default=["num_train_epochs=3", "learning_rate=2e-4", "beta=0.1"],
                        help="train.py --stage orpo options as key=value, on the same pairs as DPO (--no_orpo: skip).")
    parser.add_argument("--no_dpo", action="store_true")
    parser.add_argument("--no_kto", action="store_true")
    parser.add_argument("--no_orpo", action="store_true")
    parser.add_argument("--person", choices=("page", "api"), default="page", help="page: the person uses the chat "
                        "page's endpoints (👍/👎, 다시, 고치기); api: /v1/chat/completions and POST /v1/feedback "
                        "(edits written with the page's log writer: the API has no edit endpoint).")
    parser.add_argument("--edit", action="store_true", help="The person also corrects a reply's speech level.")
    parser.add_argument("--log", help="Train on this feedback log instead of collecting ratings (a rerun).")
    parser.add_argument("--baseline", help="Take the SFT model's figures from this earlier result JSON (a rerun).")
    parser.add_argument("--judge", nargs="*", metavar="NAME=DIR", help="Only judge these saved models.")
    parser.add_argument("--samples", type=int, default=6, help="Sample replies kept per model.")
    parser.add_argument("--work", default=str(REPO / "results" / "feedback_loop"), help="Log, data and models.")
    parser.add_argument("--out", default="bench/results/feedback_loop.json")
    parser.add_argument("--torch_threads", default="1", help="OMP_NUM_THREADS of the server and the recipes (1: on a "
                        "busy machine two OpenMP threads spin on shared cores, bench/RESULTS.md § 11b).")
    a = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = a.torch_threads  # the children's environment (child_env copies it)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    start, stages, results = time.monotonic(), {}, {"contenders": {}, "ratios": {}}
    rated, held_out = prompts(a.data, a.eval_split, a.seed, a.rated, a.held_out)
    if a.judge:
        for name, model in (kv.split("=", 1) for kv in a.judge):
            results["contenders"][name] = judge_model(model, held_out, work, a)
        results.update(machine=machine_info(), settings=vars(a))
        write_results(a.out, results, title="The loop, simulated: models judged")
        return results
    log = Path(a.log) if a.log else work / "feedback.jsonl"
    results["ratings"] = {}
    if not a.log:
        log.unlink(missing_ok=True)
        t = time.monotonic()
        with Server(a.model, work, feedback_log=log) as base:
            if a.person == "page":
                records = rate_on_page(PagePerson(base), rated, a.threads, edit=a.edit)
            else:
                client = Client(base)
                records = rate_prompts(client, rated, a.threads, editor(client, log) if a.edit else None)
        stages["rate"] = round(time.monotonic() - t, 1)
        results["ratings"] = {"replies": sum(not r.get("skill") for r in records),
                              "thumbs_up": sum(r["pass"] for r in records),
                              "regenerated": sum(r["attempt"] for r in records),
                              "edited": sum("edited" in r for r in records),
                              "skill_answers": sum(bool(r.get("skill")) for r in records)}
    stages["prepare"] = round(run([str(REPO / "recipes" / "prepare.py"), "--data", str(log), "--output",
                                   str(work / "prepared")], "prepare.py"), 1)
    report = json.loads((work / "prepared" / "report.json").read_text(encoding="utf-8"))
    counts = {k: report["preferences"][k] for k in ("pairs", "ratings")}
    results["ratings"].update(counts, dropped=report["records"]["dropped"])
    models = {"sft": a.model}
    for stage, options, files in (("kto", a.kto, ["ratings.jsonl", "preferences.jsonl"]),
                                  ("dpo", a.dpo, ["preferences.jsonl"]), ("orpo", a.orpo, ["preferences.jsonl"])):
        if getattr(a, f"no_{stage}") or (stage != "kto" and not counts["pairs"]):
            continue
        models[stage] = str(work / stage)
        data = [str(work / "prepared" / f) for f in files if (work / "prepared" / f).exists()]
        stages[f"train_{stage}"] = train_stage(stage, a.model, data, models[stage], options)
    if a.baseline:
        results["contenders"]["sft"] = json.loads(Path(a.baseline).read_text(encoding="utf-8"))["contenders"]["sft"]
    for name, model in models.items():
        if name in results["contenders"]:
            continue
        results["contenders"][name] = judge_model(model, held_out, work, a)
        print(name, {k: v for k, v in results["contenders"][name].items() if k != "samples"}, file=sys.stderr)
    sft = results["contenders"]["sft"]
    for name in models.keys() - {"sft"}:
        other = results["contenders"][name]
        results["ratios"][f"{name} pass rate − sft (points)"] = round(100 * (other["pass_rate"] - sft["pass_rate"]), 1)
        results["ratios"][f"{name} hits@1 − sft (points)"] = round(100 * (other["hits_at_1"] - sft["hits_at_1"]), 1)
    stages["total"] = round(time.monotonic() - start, 1)
    results.update(stages=stages, machine=machine_info(), settings=vars(a))
    write_results(a.out, results, title="The loop, simulated: SFT → ratings → KTO / DPO / ORPO",
                  notes=["pass rate: one sampled reply per held-out prompt judged by bench.feedback_person's rule"])
    print(json.dumps({k: results[k] for k in ("ratings", "ratios", "stages")}, ensure_ascii=False, indent=2))
    return results


if __name__ == "__main__":
    main()
