#!/usr/bin/env bash
# GPU lane (H100/H200/B200/MI300X/MI355X runners): the Triton provider compiled for the real device.
#   1. the whole conformance kit on the device (large cases included), and the Triton provider on its own;
#   2. benchmarks of the Triton kernels: decode HBM bandwidth (batch >= 32, 4k context) as a fraction of
#      the device's peak, prefill against torch SDPA's flash backend, moe.experts against the reference and
#      its roofline, fp8/int8 GEMMs against torch;
#   3. gpu-results.md: rows for docs/hardware-results.md (device, date, commit, figures).
# PEAK_HBM_GBPS / PEAK_BF16_TFLOPS override the built-in peak table for devices it does not know.
set -euo pipefail
PY=.venv/bin/python
OUT=${GPU_LANE_OUT:-gpu-lane}
mkdir -p "$OUT"

.venv/bin/anyaccel info --json > "$OUT/info.json"
status=0
.venv/bin/anyaccel check --json > "$OUT/conformance.json" || status=1
.venv/bin/anyaccel check --provider triton --json > "$OUT/conformance-triton.json" || status=1
.venv/bin/anyaccel bench --json > "$OUT/bench.json" || status=1

"$PY" - "$OUT" <<'PYTHON' || status=1
import datetime, json, os, subprocess, sys

import torch
import triton.testing
from torch.nn.attention import SDPBackend, sdpa_kernel

from anyaccel import context
from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import layout
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import GemmSpec
from anyaccel.providers.reference import moe as reference_moe
from anyaccel.providers.triton.decode import paged_decode
from anyaccel.providers.triton.moe_experts import fused_moe
from anyaccel.providers.triton.prefill import varlen_prefill
from anyaccel.providers.triton.scaled_gemm import fp8_gemm, int8_gemm

out_dir = sys.argv[1]
platform = context.get().platform
dev = platform.device_type
name = platform.device_name
# (HBM GB/s, dense bf16 TFLOP/s) from the vendors' data sheets
PEAKS = {"H100": (3350, 989), "H200": (4800, 989), "B200": (8000, 2250), "MI300X": (5300, 1307),
         "MI355X": (8000, 2500)}
known = next((v for k, v in PEAKS.items() if k in name.upper().replace(" ", "")), (None, None))
peak_bw = float(os.environ.get("PEAK_HBM_GBPS", known[0] or 0)) * 1e9
peak_flops = float(os.environ.get("PEAK_BF16_TFLOPS", known[1] or 0)) * 1e12
ms = lambda fn: triton.testing.do_bench(fn, warmup=25, rep=100)
results = {"device": name, "platform": platform.name, "capability": str(platform.capability),
           "date": datetime.date.today().isoformat(),
           "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip(), "peak_hbm_gbps": peak_bw / 1e9,
           "peak_bf16_tflops": peak_flops / 1e12, "figures": []}
bf16 = torch.bfloat16


def record(label, **figures):
    results["figures"].append({"label": label, **figures})
    print(label, figures, flush=True)


# attention.decode: bytes moved are the K/V pages read (plus q and out), at 4k context
for batch in (32, 64):
    ctx, hq, hkv, d, bs = 4096, 32, 8, 128, 16
    spec = AttentionSpec(bf16, hq, hkv, d, block_size=bs)
    blocks = batch * ctx // bs
    k_cache, v_cache = layout("NHD").allocate(blocks, bs, hkv, d, bf16, dev)
    k_cache.normal_(), v_cache.normal_()
    tables = torch.randperm(blocks, device=dev, dtype=torch.int32).view(batch, ctx // bs)
    lens = torch.full((batch,), ctx, dtype=torch.int32, device=dev)
    q = torch.randn(batch, hq, d, dtype=bf16, device=dev)
    fn = paged_decode(spec, platform)
    t = ms(lambda: fn(q, k_cache, v_cache, tables, lens, ctx, d ** -0.5)) / 1e3
    moved = 2 * k_cache.numel() * k_cache.element_size() + 2 * q.numel() * q.element_size()
    record(f"attention.decode B={batch} ctx={ctx} Hq={hq} Hkv={hkv} D={d} bf16", ms=t * 1e3,
           gbps=moved / t / 1e9, fraction_of_peak=moved / t / peak_bw if peak_bw else None)

# attention.prefill against SDPA's flash backend on the same shapes (GQA expanded for SDPA)
for batch, seq in ((4, 4096), (1, 8192)):
    hq, hkv, d = 32, 8, 128
    spec = AttentionSpec(bf16, hq, hkv, d, block_size=16)
    q = torch.randn(batch * seq, hq, d, dtype=bf16, device=dev)
    k = torch.randn(batch * seq, hkv, d, dtype=bf16, device=dev)
    v = torch.randn_like(k)
    cu = torch.arange(0, batch + 1, dtype=torch.int32, device=dev) * seq
    lens = torch.full((batch,), seq, dtype=torch.int32, device=dev)
    k_cache, v_cache = layout("NHD").allocate(1, 16, hkv, d, bf16, dev)
    tables = torch.zeros(batch, 1, dtype=torch.int32, device=dev)
    fn = varlen_prefill(spec, platform)
    t_triton = ms(lambda: fn(q, k, v, k_cache, v_cache, tables, cu, lens, seq, seq, d ** -0.5))
    qs = q.view(batch, seq, hq, d).transpose(1, 2)
    ks = k.view(batch, seq, hkv, d).transpose(1, 2).repeat_interleave(hq // hkv, 1)
    vs = v.view(batch, seq, hkv, d).transpose(1, 2).repeat_interleave(hq // hkv, 1)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        t_sdpa = ms(lambda: torch.nn.functional.scaled_dot_product_attention(qs, ks, vs, is_causal=True))
    record(f"attention.prefill B={batch} S={seq} Hq={hq} Hkv={hkv} D={d} causal bf16", ms=t_triton,
           sdpa_flash_ms=t_sdpa, speed_vs_sdpa=t_sdpa / t_triton)

# moe.experts (Qwen3-30B-A3B-like) against the torch reference and the roofline
for tokens in (16, 256, 4096):
    e, k, h, i = 128, 8, 2048, 768
    spec = MoESpec(bf16, e, k, h, i)
    hidden = torch.randn(tokens, h, dtype=bf16, device=dev)
    w13 = torch.randn(e, 2 * i, h, dtype=bf16, device=dev) / h ** 0.5
    w2 = torch.randn(e, h, i, dtype=bf16, device=dev) / i ** 0.5
    weights = torch.softmax(torch.randn(tokens, k, device=dev), -1)
    ids = torch.stack([torch.randperm(e, device=dev)[:k] for _ in range(tokens)]).to(torch.int32)
    fn = fused_moe(spec, platform)
    t = ms(lambda: fn(hidden, w13, w2, weights, ids)) / 1e3
    t_ref = ms(lambda: reference_moe.experts(hidden, w13, w2, weights, ids)) / 1e3
    active = int(ids.unique().numel())
    flops = 6 * tokens * k * h * i
    moved = active * 3 * h * i * 2 + 2 * tokens * h * 2
    roof = max(flops / peak_flops, moved / peak_bw) if peak_bw and peak_flops else None
    record(f"moe.experts T={tokens} E={e} k={k} H={h} I={i} bf16", ms=t * 1e3, reference_ms=t_ref * 1e3,
           speedup_vs_reference=t_ref / t, fraction_of_roofline=roof / t if roof else None)

# fp8 (block scales) and int8 (channel scales) GEMMs against torch's own kernels
for m in (16, 256, 4096):
    n = kk = 4096
    a16, b16 = torch.randn(m, kk, device=dev), torch.randn(n, kk, device=dev)
    fp8 = getattr(torch, platform.fp8_dtype) if platform.fp8_dtype else None
    if fp8 is not None:
        a, b = a16.to(fp8), b16.to(fp8)
        fn = fp8_gemm(GemmSpec(bf16, "block", platform.fp8_dtype, n, kk), platform)
        a_s = torch.ones(m, kk // 128, device=dev)
        b_s = torch.ones(n // 128, kk // 128, device=dev)
        one = torch.ones((), device=dev)
        t = ms(lambda: fn(a, b, a_s, b_s, bf16))
        t_torch = ms(lambda: torch._scaled_mm(a, b.t(), one, one, out_dtype=bf16))
        record(f"quant.fp8_gemm M={m} N={n} K={kk} block", ms=t, torch_scaled_mm_tensor_ms=t_torch,
               tflops=2 * m * n * kk / t / 1e9, speed_vs_torch=t_torch / t)
    a8 = torch.randint(-127, 127, (m, kk), dtype=torch.int8, device=dev)
    b8 = torch.randint(-127, 127, (n, kk), dtype=torch.int8, device=dev)
    fn = int8_gemm(GemmSpec(bf16, "channel", n=n, k=kk), platform)
    a_s, b_s = torch.rand(m, 1, device=dev), torch.rand(n, 1, device=dev)
    t = ms(lambda: fn(a8, b8, a_s, b_s, bf16))
    t_torch = ms(lambda: (torch._int_mm(a8, b8.t()) * a_s * b_s.t()).to(bf16))
    record(f"quant.int8_gemm M={m} N={n} K={kk} channel", ms=t, torch_int_mm_ms=t_torch,
           tops=2 * m * n * kk / t / 1e9, speed_vs_torch=t_torch / t)

with open(f"{out_dir}/bench-triton.json", "w") as f:
    json.dump(results, f, indent=2)
with open(f"{out_dir}/gpu-results.md", "w") as f:
    f.write(f"### {name} ({platform.name} {platform.capability}), {results['date']}, commit {results['commit']}\n\n")
    f.write("| benchmark | figures |\n|---|---|\n")
    for row in results["figures"]:
        figs = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in row.items() if k != "label")
        f.write(f"| {row['label']} | {figs} |\n")
PYTHON

echo "results in $OUT/ (append $OUT/gpu-results.md to docs/hardware-results.md)"
exit $status
