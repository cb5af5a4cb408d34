"""Benchmarks of the NVIDIA lane (ci/lanes/cuda.sh): every kernel anyaccel can bind on this device for
attention.decode, attention.prefill, moe.experts and quant.fp8_gemm (the plugin's, Triton's and the
reference), timed on the same inputs and set against
- the device's measured copy bandwidth and its data-sheet HBM peak (decode; the goal: paged decode at batch
  >= 32 and 4k context reads K/V at >= 80% of the measured copy bandwidth),
- torch SDPA's flash backend on equal shapes (prefill; the goal: at least as fast),
- the roofline max(FLOPs / peak FLOP/s, bytes / copy bandwidth) (MoE and fp8 GEMMs), and torch._scaled_mm
  with one tensor-wise scale (fp8 GEMMs).

    python ci/lanes/cuda_bench.py OUT.json [--quick]

--quick: tiny shapes and few samples, for the lane's dry run on an emulated device (ANYACCEL_EMULATE); it
exercises this script, and its figures are not measurements.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform as host
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch

from anyaccel import context
from anyaccel.bench.timing import median_seconds, synchronizer
from anyaccel.conformance.runner import kernels_to_check, with_prepared_weights
from anyaccel.conformance.selection import Selection
from anyaccel.dispatch import instantiate, reject_reason
from anyaccel.ops.attention import AttentionMetadata, AttentionSpec
from anyaccel.ops.kv_cache import layout
from anyaccel.ops.moe import MoESpec
from anyaccel.ops.quant import GemmSpec

# (HBM GB/s, dense bf16 TFLOP/s) from the vendors' data sheets; PEAK_* environment variables override.
PEAKS = {"H100": (3350, 989), "H200": (4800, 989), "B200": (8000, 2250), "B300": (8000, 2250)}
BF16 = torch.bfloat16
ctx = context.get()
platform = ctx.platform
dev = platform.torch_device_type
sync = synchronizer(dev)


def seconds(fn: Callable[[], object], quick: bool) -> float:
    if quick:  # a dry run: one sample of one call
        return median_seconds(fn, sync, warmup=1, repeats=1, min_sample_s=0.0, budget_s=0.0)
    return median_seconds(fn, sync, warmup=3, repeats=15, budget_s=0.5)


def copy_gbps(nbytes: int, quick: bool) -> float:
    """Device-to-device copy bandwidth: bytes read plus bytes written per second."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    return 2 * nbytes / seconds(lambda: dst.copy_(src), quick) / 1e9


def bound(op: str, spec: Any) -> Iterator[tuple[str, Callable[..., Any], Any]]:
    """(kernel name, callable, record) for every kernel that can run here and accepts `spec`."""
    for kernel, _ in kernels_to_check(Selection(op=op), platform):
        if reject_reason(kernel, spec, platform, False, ctx.assumed) is None:
            yield kernel.name, instantiate(kernel, spec, platform), kernel


def timed(
    op: str, spec: Any, args: tuple, kwargs: dict, quick: bool, meta: AttentionMetadata | None = None
) -> Iterator[dict[str, Any]]:
    """One row per bound kernel: its median ms, or the error it raised (the sweep goes on). Attention kernels
    with a plan phase are planned once with `meta` first, as the engine does once per forward."""
    for name, fn, kernel in bound(op, spec):
        row: dict[str, Any] = {"op": op, "kernel": name, "provider": kernel.provider}
        try:
            a, kw = args, kwargs
            planner = getattr(fn, "anyaccel_plan", None)
            if planner is not None and meta is not None:
                planner(meta)
            if kernel.prepare is not None:  # load-time conversions are not part of a call
                a, kw = with_prepared_weights(ctx.op(op), kernel, spec, args, kwargs)
            row["ms"] = seconds(lambda fn=fn, a=a, kw=kw: fn(*a, **kw), quick) * 1e3
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        yield row


def metadata(tokens: int, **fields: Any) -> AttentionMetadata:
    """One forward's batch description (prefill-only or decode-only) for the kernels' plan phase."""
    prefill = "cu_seqlens_q" in fields
    empty = torch.zeros(0, dtype=torch.int64, device=dev)
    return AttentionMetadata(tokens if prefill else 0, 0 if prefill else tokens, empty, empty, **fields)


def decode_rows(quick: bool, copy: float, peak_bw: float) -> Iterator[dict[str, Any]]:
    hq, hkv, d, bs = (4, 2, 128, 16) if quick else (32, 8, 128, 16)
    for batch, ctx_len in ((2, 64),) if quick else ((32, 4096), (64, 4096)):
        for kv_layout in ("NHD", "HND"):
            spec = AttentionSpec(BF16, hq, hkv, d, block_size=bs, kv_layout=kv_layout)
            blocks = batch * ctx_len // bs
            k_cache, v_cache = layout(kv_layout).allocate(blocks, bs, hkv, d, BF16, dev)
            k_cache.normal_(), v_cache.normal_()
            tables = torch.randperm(blocks, device=dev).to(torch.int32).view(batch, ctx_len // bs)
            lens = torch.full((batch,), ctx_len, dtype=torch.int32, device=dev)
            q = torch.randn(batch, hq, d, dtype=BF16, device=dev)
            args = (q, k_cache, v_cache, tables, lens, ctx_len, d**-0.5)
            meta = metadata(
                batch, decode_seq_lens=lens, decode_max_seq_len=ctx_len, decode_block_tables=tables
            )
            moved = 2 * k_cache.numel() * k_cache.element_size() + 2 * q.numel() * q.element_size()
            for row in timed("attention.decode", spec, args, {}, quick, meta):
                if "ms" in row:
                    gbps = moved / row["ms"] * 1e3 / 1e9
                    row.update(gbps=gbps, of_copy=gbps / copy, of_peak=gbps / peak_bw if peak_bw else None)
                row["shape"] = f"B={batch} ctx={ctx_len} Hq={hq} Hkv={hkv} D={d} bs={bs} {kv_layout} bf16"
                yield row


def sdpa_ms(q, k, v, batch: int, seq: int, quick: bool) -> float | None:
    """torch SDPA (flash backend where it runs) on the same causal problem, GQA heads expanded."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    hq, hkv, d = q.shape[1], k.shape[1], q.shape[2]
    qs = q.view(batch, seq, hq, d).transpose(1, 2)
    ks = k.view(batch, seq, hkv, d).transpose(1, 2).repeat_interleave(hq // hkv, 1)
    vs = v.view(batch, seq, hkv, d).transpose(1, 2).repeat_interleave(hq // hkv, 1)
    backend = SDPBackend.MATH if dev == "cpu" else SDPBackend.FLASH_ATTENTION
    with sdpa_kernel(backend):
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return seconds(lambda: sdpa(qs, ks, vs, is_causal=True), quick) * 1e3


def prefill_rows(quick: bool) -> Iterator[dict[str, Any]]:
    hq, hkv, d, bs = (4, 2, 128, 16) if quick else (32, 8, 128, 16)
    for batch, seq in ((2, 32),) if quick else ((4, 4096), (1, 8192)):
        q = torch.randn(batch * seq, hq, d, dtype=BF16, device=dev)
        k = torch.randn(batch * seq, hkv, d, dtype=BF16, device=dev)
        v = torch.randn_like(k)
        cu = torch.arange(batch + 1, dtype=torch.int32, device=dev) * seq
        lens = torch.full((batch,), seq, dtype=torch.int32, device=dev)
        tables = torch.arange(batch * seq // bs, dtype=torch.int32, device=dev).view(batch, seq // bs)
        baseline = sdpa_ms(q, k, v, batch, seq, quick)
        for kv_layout in ("NHD", "HND"):
            spec = AttentionSpec(BF16, hq, hkv, d, block_size=bs, kv_layout=kv_layout)
            k_cache, v_cache = layout(kv_layout).allocate(batch * seq // bs, bs, hkv, d, BF16, dev)
            k_cache.normal_(), v_cache.normal_()
            args = (q, k, v, k_cache, v_cache, tables, cu, lens, seq, seq, d**-0.5)
            meta = metadata(
                batch * seq,
                cu_seqlens_q=cu,
                max_seqlen_q=seq,
                prefill_seq_lens=lens,
                prefill_max_seq_len=seq,
                prefill_block_tables=tables,
            )
            for row in timed("attention.prefill", spec, args, {}, quick, meta):
                if "ms" in row and baseline:
                    row.update(sdpa_flash_ms=baseline, speed_vs_sdpa=baseline / row["ms"])
                row["shape"] = f"B={batch} S={seq} Hq={hq} Hkv={hkv} D={d} causal {kv_layout} bf16"
                yield row


def roofline(row: dict[str, Any], flops: float, nbytes: float, peak_flops: float, copy: float) -> None:
    if "ms" in row:
        roof_ms = max(flops / peak_flops if peak_flops else 0.0, nbytes / (copy * 1e9)) * 1e3
        row.update(tflops=flops / row["ms"] / 1e9, roofline_ms=roof_ms, of_roofline=roof_ms / row["ms"])


def moe_rows(quick: bool, copy: float, peak_flops: float) -> Iterator[dict[str, Any]]:
    e, k, h, i = (8, 2, 128, 128) if quick else (128, 8, 2048, 768)
    for tokens in (4,) if quick else (16, 256, 4096):
        spec = MoESpec(BF16, e, k, h, i)
        hidden = torch.randn(tokens, h, dtype=BF16, device=dev)
        w13 = torch.randn(e, 2 * i, h, dtype=BF16, device=dev) / h**0.5
        w2 = torch.randn(e, h, i, dtype=BF16, device=dev) / i**0.5
        weights = torch.softmax(torch.randn(tokens, k, device=dev), -1)
        ids = torch.stack([torch.randperm(e, device=dev)[:k] for _ in range(tokens)]).to(torch.int32)
        active = int(ids.unique().numel())
        flops, moved = 6 * tokens * k * h * i, active * 3 * h * i * 2 + 2 * tokens * h * 2
        for row in timed("moe.experts", spec, (hidden, w13, w2, weights, ids), {}, quick):
            roofline(row, flops, moved, peak_flops, copy)
            row["shape"] = f"T={tokens} E={e} k={k} H={h} I={i} bf16"
            yield row


def fp8_rows(quick: bool, copy: float, peak_flops: float) -> Iterator[dict[str, Any]]:
    fp8 = torch.float8_e4m3fn
    n = kk = 256 if quick else 4096
    for m in (16,) if quick else (16, 256, 4096):
        a = torch.randn(m, kk, device=dev).to(fp8)
        b = torch.randn(n, kk, device=dev).to(fp8)
        one = torch.ones((), device=dev)
        scaled_mm = None
        if dev != "cpu":
            tensorwise = lambda a=a, b=b, one=one: torch._scaled_mm(a, b.t(), one, one, out_dtype=BF16)
            scaled_mm = seconds(tensorwise, quick) * 1e3
        for scales, a_s, b_s in (
            ("block", torch.ones(m, kk // 128, device=dev), torch.ones(n // 128, kk // 128, device=dev)),
            ("channel", torch.ones(m, 1, device=dev), torch.ones(n, 1, device=dev)),
        ):
            spec = GemmSpec(BF16, scales, "float8_e4m3fn", n, kk)
            for row in timed("quant.fp8_gemm", spec, (a, b, a_s, b_s, BF16), {}, quick):
                # fp8 tensor cores run at twice the bf16 rate
                roofline(row, 2 * m * n * kk, m * kk + n * kk + 2 * m * n, 2 * peak_flops, copy)
                if "ms" in row and scaled_mm:
                    row.update(scaled_mm_tensor_ms=scaled_mm, speed_vs_scaled_mm=scaled_mm / row["ms"])
                row["shape"] = f"M={m} N={n} K={kk} {scales} scales"
                yield row


def goals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The lane's targets, from the best kernel at each shape."""

    def best(op: str, key: str, where: Callable[[dict], bool] = lambda r: True) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in rows:
            if r["op"] == op and r.get(key) is not None and where(r):
                out[r["shape"]] = max(out.get(r["shape"], 0.0), r[key])
        return out

    decode = best("attention.decode", "of_copy", lambda r: "ctx=4096" in r["shape"])
    prefill = best("attention.prefill", "speed_vs_sdpa")
    return {
        "decode_of_copy_at_least_0.8": {s: (v, v >= 0.8) for s, v in decode.items()},
        "prefill_vs_sdpa_at_least_1": {s: (v, v >= 1.0) for s, v in prefill.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    name = platform.device_name or ""
    known = next((v for k, v in PEAKS.items() if k in name.upper().replace(" ", "")), (0, 0))
    peak_bw = float(os.environ.get("PEAK_HBM_GBPS", known[0]))
    peak_flops = float(os.environ.get("PEAK_BF16_TFLOPS", known[1])) * 1e12
    copy = copy_gbps(1 << (20 if opts.quick else 30), opts.quick)
    rows: list[dict[str, Any]] = []
    result: dict[str, Any] = {
        "device": name,
        "capability": str(platform.capability),
        "emulated": bool(platform.emulated),
        "torch": torch.__version__,
        "python": host.python_version(),
        "date": datetime.date.today().isoformat(),
        "peak_hbm_gbps": peak_bw or None,
        "peak_bf16_tflops": peak_flops / 1e12 or None,
        "copy_gbps": copy,
        "rows": rows,
    }
    parts = (
        decode_rows(opts.quick, copy, peak_bw),
        prefill_rows(opts.quick),
        moe_rows(opts.quick, copy, peak_flops),
        fp8_rows(opts.quick, copy, peak_flops),
    )
    for part in parts:
        for row in part:
            print(json.dumps(row), flush=True)
            rows.append(row)
            result["goals"] = goals(rows)
            with open(opts.out, "w") as f:  # after every row: a timeout keeps what was measured
                json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
