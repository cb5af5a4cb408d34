#!/usr/bin/env bash
# anyaccel-cuda on an NVIDIA GPU (H100/H200/B200 runners; no network needed once installed). Under 10 minutes:
#   1. the device is detected as cuda under ANYACCEL_STRICT=1 and the plugin is active;
#   2. the conformance kit on the device for the plugin's kernels and for Triton (large cases included);
#   3. benchmarks of every kernel that runs here for attention, MoE and fp8 GEMM (the plugin's against
#      Triton's and the reference's, same sweeps);
#   4. `anyaccel run` in bf16 against transformers: the packaged SmolLM2 GGUF and a tiny Qwen3-MoE;
#   5. the plugin's own tests (emulated paths still run on the host).
# The lane's install step puts the vendor stack in the venv beside the core's pinned CUDA torch, without
# letting it pull another torch and with FlashInfer's cubins and JIT cache installed (no download or JIT
# build at run time), e.g.:
#   make install TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu130'
#   .venv/bin/pip install --no-deps flashinfer-python flashinfer-cubin flashinfer-jit-cache flash-attn-4
# Results land in $CUDA_LANE_OUT (default cuda-lane/); rows for docs/hardware-results.md in results.md.
set -euo pipefail
PY=.venv/bin/python
AA=.venv/bin/anyaccel
OUT=${CUDA_LANE_OUT:-cuda-lane}
mkdir -p "$OUT"
status=0

ANYACCEL_STRICT=1 "$AA" info --json > "$OUT/info.json"
"$PY" - "$OUT/info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
plugin = next(p for p in info["plugins"] if p["name"] == "anyaccel-cuda")
if info["platform"]["name"] != "cuda" or plugin["status"] != "active":
    sys.exit(f"expected an active anyaccel-cuda on cuda, got {info['platform']['name']}: {plugin}")
print(f"{info['platform']['device_name']} ({info['platform']['capability']}): anyaccel-cuda active")
PY

timeout 300 "$AA" check --plugin anyaccel-cuda --json --junit "$OUT/junit-cuda.xml" > "$OUT/conformance-cuda.json" || status=1
timeout 120 "$AA" check --provider triton --json > "$OUT/conformance-triton.json" || status=1

for op in attention.decode attention.prefill moe.experts quant.fp8_gemm; do
  timeout 60 "$AA" bench --op "$op" --json > "$OUT/bench-$op.json" || status=1
done

timeout 90 "$AA" run --dtype bfloat16 --compare-transformers --json > "$OUT/run-smollm2.json" || status=1
"$PY" -c "from anyaccel.models.testing import tiny_checkpoint; import torch; \
tiny_checkpoint('Qwen3MoeForCausalLM', '$OUT/qwen3-moe', dtype=torch.bfloat16, head_dim=64, seed=2)"
timeout 90 "$AA" run --model "$OUT/qwen3-moe" --dtype bfloat16 --compare-transformers --json \
  > "$OUT/run-qwen3-moe.json" || status=1

timeout 120 "$PY" -m pytest -q plugins/cuda/tests || status=1

"$PY" - "$OUT" <<'PY' || status=1
import datetime, glob, json, os, subprocess, sys
out = sys.argv[1]
info = json.load(open(f"{out}/info.json"))["platform"]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
rows = [f"### {info['device_name']} (cuda {info['capability']}), {datetime.date.today()}, commit {commit}", "",
        "| check | result |", "|---|---|"]
for path in sorted(glob.glob(f"{out}/conformance-*.json")):
    for k in json.load(open(path))["kernels"]:
        rows.append(f"| {k['name']} ({k['op']}) | {k['passed']} passed, {k['failed']} failed, {k['skipped']} skipped |")
for path in sorted(glob.glob(f"{out}/run-*.json")):
    cmp = json.load(open(path)).get("compare_transformers") or {}
    rows.append(f"| {os.path.basename(path)} vs transformers | ok={cmp.get('ok')} max abs diff "
                f"{cmp.get('max_abs_logit_diff')} of {cmp.get('max_abs_logit')} |")
open(f"{out}/results.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY

echo "results in $OUT/ (append $OUT/results.md to docs/hardware-results.md)"
exit $status
