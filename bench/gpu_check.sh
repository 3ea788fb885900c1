#!/usr/bin/env bash
# The GPU rows in one go, on a machine with one or more CUDA GPUs (about 4 minutes on one H200, 2026-12-04):
#   1. training throughput at the KoGPT2 shape in bf16 (python -m bench.train_throughput, packed vs dynamic padding),
#   2. the single-GPU quickstart (accelerate_configs/single_gpu.yaml) and a pipeline("text-generation") reply,
#   3. with two or more GPUs: DDP (multi_gpu.yaml) and FSDP2 (fsdp.yaml) across all of them, and the slow FSDP tests
#      of tests/test_scale_out.py (fsdp_cpu.yaml's sharded checkpoints, here on the GPUs: SIGKILL, resume auto,
#      LoRA, pipeline load).
# Writes OUT/gpu_check.json (every step's status, wall time and headline numbers) and OUT/SUMMARY.md.
# Usage: bash bench/gpu_check.sh [OUT]        (default OUT: results/gpu_check)
#   PYTHON=/path/to/python picks the interpreter (default: python, else python3); the throughput row reads
#   ../shared/data/ChatbotData.csv like every benchmark (bench/common.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-results/gpu_check}
PY=${PYTHON:-$(command -v python || command -v python3)}
if [ ! -f ../shared/data/ChatbotData.csv ]; then
    echo "gpu_check: $(cd .. && pwd)/shared/data/ChatbotData.csv is missing: the throughput row trains on it; put ChatbotData.csv (11,823 Q/A pairs) there" >&2
    exit 2
fi
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [ "${NGPU:-0}" -lt 1 ]; then
    echo "gpu_check: no CUDA GPU is visible (torch.cuda.device_count() is 0): run it on a machine with a GPU and a CUDA build of torch" >&2
    exit 2
fi
mkdir -p "$OUT"
: > "$OUT/steps.jsonl"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# run NAME SECONDS CMD...: run with a time limit, log to OUT/NAME.log, append {"step", "rc", "seconds"} to steps.jsonl
run() {
    local name=$1 limit=$2
    shift 2
    local start rc
    start=$(date +%s.%N)
    echo "$(date -u +%H:%M:%S) $name (limit ${limit}s): $*"
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    "$PY" -c "import json,sys,time; print(json.dumps({'step': sys.argv[1], 'rc': int(sys.argv[2]), 'seconds': round(time.time() - float(sys.argv[3]), 1), 'command': sys.argv[4]}))" \
        "$name" "$rc" "$start" "$*" >> "$OUT/steps.jsonl"
    echo "    rc=$rc"
}

# --batch-size 1120 ≈ 63 packed rows of 256 per step: the CPU benchmark's 35 examples (2 rows) leave an H200 idle
# between steps (10,882 useful tok/s, 0.9% of the bf16 matmul peak, 2026-12-04); 1120 gave 163,206 tok/s.
run throughput 300 "$PY" -m bench.train_throughput --size kogpt2 --device cuda --bf16 --batch-size 1120 \
    --contenders ours_packed reference --tokens 3000000 --seeds 1 --evals 2 --out "$OUT/train_gpu.json"
run quickstart 180 "$PY" -m accelerate.commands.launch --config_file accelerate_configs/single_gpu.yaml recipes/train.py \
    --config recipes/configs/quickstart.yaml --output_dir "$OUT/quickstart"
run pipeline 60 "$PY" -c "
import sys
from transformers import pipeline
chat = pipeline('text-generation', model=sys.argv[1], device=0)
print(chat([{'role': 'user', 'content': '안녕! 오늘 뭐 했어?'}])[0]['generated_text'][-1]['content'])" "$OUT/quickstart"
if [ "$NGPU" -ge 2 ]; then
    run ddp 180 "$PY" -m accelerate.commands.launch --config_file accelerate_configs/multi_gpu.yaml --num_processes "$NGPU" \
        recipes/train.py --config recipes/configs/quickstart.yaml --num_train_epochs 3 --output_dir "$OUT/ddp"
    run fsdp 180 "$PY" -m accelerate.commands.launch --config_file accelerate_configs/fsdp.yaml --num_processes "$NGPU" \
        recipes/train.py --config recipes/configs/quickstart.yaml --num_train_epochs 3 --output_dir "$OUT/fsdp"
    run fsdp_test 400 "$PY" -m pytest -q -m slow tests/test_scale_out.py -k fsdp
fi

"$PY" - "$OUT" "$NGPU" <<'EOF'
import json
import sys
from pathlib import Path

out, ngpu = Path(sys.argv[1]), int(sys.argv[2])
steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines() if line.strip()]
result = {"gpus": ngpu, "steps": steps}
try:
    import torch

    result["gpu_name"] = torch.cuda.get_device_name(0)
except Exception as exc:  # the summary is still written
    result["gpu_name"] = f"unknown ({exc})"
throughput = out / "train_gpu.json"
if throughput.is_file():
    data = json.loads(throughput.read_text())
    keep = ("useful_tokens_per_s", "pad_share", "heldout_assistant_ppl", "mfu_vs_mm_peak", "projected_seed_workload_h")
    result["throughput"] = {name: {k: c.get(k) for k in keep} for name, c in data.get("contenders", {}).items()}
    result["mm_peak"] = data.get("mm_peak")
for name in ("quickstart", "ddp", "fsdp"):
    evals = out / name / "eval_results.json"
    if evals.is_file():
        result[name] = {k: v for k, v in json.loads(evals.read_text()).items() if k in (
            "eval_assistant_perplexity", "eval_loss", "eval_gen_stopped_share")}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
lines = [f"# GPU check: {ngpu} × {result['gpu_name']}", "", "| step | rc | seconds |", "|---|---:|---:|"]
lines += [f"| {s['step']} | {s['rc']} | {s['seconds']} |" for s in steps]
for name, c in result.get("throughput", {}).items():
    lines.append(f"\n{name}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in c.items()))
for name in ("quickstart", "ddp", "fsdp"):
    if name in result:
        lines.append(f"\n{name}: {result[name]}")
(out / "SUMMARY.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
failed = [s["step"] for s in steps if s["rc"] != 0]
sys.exit(1 if failed else 0)
EOF
