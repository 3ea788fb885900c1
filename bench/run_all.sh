#!/usr/bin/env bash
# Run every benchmark (the full 190k preprocessing, then --quick for each script) into $BENCH_OUT (results/).
# Usage: bash bench/run_all.sh [extra args for the torch-based scripts, e.g. --threads 1]
# SERVE_ARGS="--model DIR" serves a trained model instead of a tiny random-init one.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_OUT:-results}
mkdir -p "$OUT"
log() { echo "$(date -u +%H:%M:%S) $* | load $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/run_all.log"; }
log "start"
python -m bench.preprocess --contenders ours ours_cached seed_style --out "$OUT/preprocess.json" > "$OUT/preprocess.log" 2>&1; log "preprocess full rc=$?"
python -m bench.train_throughput --quick "$@" --out "$OUT/train_throughput.json" > "$OUT/train_throughput.log" 2>&1; log "train_throughput rc=$?"
python -m bench.generate --quick "$@" --out "$OUT/generate.json" > "$OUT/generate.log" 2>&1; log "generate rc=$?"
# shellcheck disable=SC2086
python -m bench.serve_load --quick ${SERVE_ARGS:-} --out "$OUT/serve_load.json" > "$OUT/serve_load.log" 2>&1; log "serve_load rc=$?"
python -m bench.preprocess --quick --out "$OUT/preprocess_quick.json" > "$OUT/preprocess_quick.log" 2>&1; log "preprocess quick rc=$?"
python -m bench.report --results "$OUT" --out "$OUT/SUMMARY.md" > /dev/null; log "done"
