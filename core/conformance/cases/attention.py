"""Cases for attention.prefill, attention.decode and attention.write_kv.

The grid covers odd sequence lengths, GQA ratios 1/4/8 (and 4 with Hq=12), head dims 64/80/96/128/256, block
sizes 16/32/64/128, fp32/fp16/bf16, fp8 e4m3fn and e4m3fnuz caches, NHD and HND (including block_size == Hkv,
where only the spec tells them apart), sliding window, soft-cap, sinks, non-causal prefill, cached prefix
pages, block tables padded with -1, padded slots (-1) in write_kv, zero-length decode rows, and 4k+ token
sequences (large=True).

Caches are filled with random values in every slot and block tables are random permutations, so a kernel
that reads the wrong page or slot fails. For prefill, the new tokens' k/v are read back from the cache, so a
kernel may take them from k/v or from the cache (the contract allows both) with identical results.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.kv_cache import as_nhd, layout

from ..case import Case, Inputs, Tolerance, generator, randn
from ..oracles import attention as oracle
from ..tolerance import for_dtype

E4M3FN, E4M3FNUZ = torch.float8_e4m3fn, torch.float8_e4m3fnuz
# Powers of two: dequantized fp8 values are exact in every compute dtype, and k / k_scale is exact before the
# single rounding to fp8, so write_kv results are bit-exact against the oracle.
K_SCALE, V_SCALE = 0.5, 0.25
# fp8 caches: kernels that run the products on e4m3 tensor cores also round q and P to e4m3 (relative step
# 2^-4), which the compute-dtype table does not cover.
FP8_TOLERANCE = {"*": Tolerance(2.0**-4, 2.0**-4)}


@dataclass(frozen=True)
class Shape:
    """One attention configuration; `spec()` turns it into the bind-time spec."""

    dtype: torch.dtype
    hq: int
    hkv: int
    d: int
    block_size: int
    layout: str = "NHD"
    kv_dtype: torch.dtype | None = None
    window: int = -1
    softcap: float = 0.0
    sinks: bool = False
    causal: bool = True

    def spec(self, prefix: bool = False) -> AttentionSpec:
        return AttentionSpec(
            dtype=self.dtype,
            num_q_heads=self.hq,
            num_kv_heads=self.hkv,
            head_dim=self.d,
            kv_dtype=self.kv_dtype,
            block_size=self.block_size,
            kv_layout=self.layout,
            sliding_window=self.window,
            softcap=self.softcap,
            sinks=self.sinks,
            prefix=prefix,
            causal=self.causal,
        )

    @property
    def label(self) -> str:
        parts = [
            f"Hq={self.hq} Hkv={self.hkv} D={self.d} bs={self.block_size} {self.layout}",
            str(self.dtype).removeprefix("torch."),
        ]
        if self.kv_dtype is not None:
            parts.append("kv=" + str(self.kv_dtype).removeprefix("torch."))
        parts += [f"window={self.window}"] if self.window > 0 else []
        parts += [f"softcap={self.softcap:g}"] if self.softcap > 0 else []
        parts += ["sinks"] if self.sinks else []
        parts += [] if self.causal else ["non-causal"]
        return " ".join(parts)

    def tolerance(self) -> dict[str, Tolerance]:
        return FP8_TOLERANCE if self.kv_dtype is not None else for_dtype(self.dtype)


def _random_cache(g: torch.Generator, s: Shape, num_blocks: int):
    """(k_cache, v_cache, k_scale, v_scale): every slot random, scales [1] float32 for fp8 caches."""
    spec = s.spec()
    caches = layout(s.layout).allocate(num_blocks, s.block_size, s.hkv, s.d, spec.cache_dtype)
    for cache in caches:
        cache.copy_(randn(g, *cache.shape, scale=2.0 if spec.fp8_kv else 1.0).to(cache.dtype))
    scales = (torch.tensor([K_SCALE]), torch.tensor([V_SCALE])) if spec.fp8_kv else (None, None)
    return (*caches, *scales)


def _block_tables(g: torch.Generator, lens: list[int], block_size: int) -> tuple[torch.Tensor, int]:
    """Random distinct pages for each sequence (plus two spare pages nobody owns); unused entries are -1."""
    need = [-(-n // block_size) for n in lens]
    num_blocks = sum(need) + 2
    order = torch.randperm(num_blocks, generator=g)
    table = torch.full((len(lens), max(need, default=0) + 1), -1, dtype=torch.int32)
    used = 0
    for b, n in enumerate(need):
        table[b, :n] = order[used : used + n]
        used += n
    return table, num_blocks


def _read_back(
    cache: torch.Tensor, s: Shape, row: torch.Tensor, start: int, end: int, scale: torch.Tensor | None
) -> torch.Tensor:
    """[end - start, Hkv, D] in s.dtype: what the cache holds at positions start..end-1 of one sequence."""
    positions = torch.arange(start, end)
    tokens = as_nhd(cache, s.layout)[row[positions // s.block_size].long(), positions % s.block_size].float()
    return (tokens * scale if scale is not None else tokens).to(s.dtype)


def _query(g: torch.Generator, s: Shape, tokens: int) -> torch.Tensor:
    """[tokens, Hq, D], a strided view (like q sliced from a fused qkv projection); larger logits under a
    soft-cap so the cap matters."""
    return randn(g, tokens, s.hq + 2 * s.hkv, s.d, dtype=s.dtype, scale=4.0 if s.softcap else 1.0)[:, : s.hq]


def _sinks(g: torch.Generator, s: Shape) -> torch.Tensor | None:
    return randn(g, s.hq, scale=2.0) if s.sinks else None


def _window_args(s: Shape) -> dict:
    return {"sliding_window": s.window, "softcap": s.softcap}


def _make_decode(s: Shape, lens: tuple[int, ...]):
    def make(seed: int) -> Inputs:
        g = generator(seed)
        table, num_blocks = _block_tables(g, list(lens), s.block_size)
        k_cache, v_cache, k_scale, v_scale = _random_cache(g, s, num_blocks)
        args = (
            _query(g, s, len(lens)),
            k_cache,
            v_cache,
            table,
            torch.tensor(lens, dtype=torch.int32),
            max(lens),
            s.d**-0.5,
        )
        return args, {**_window_args(s), "sinks": _sinks(g, s), "k_scale": k_scale, "v_scale": v_scale}

    return make


def _make_prefill(s: Shape, new: tuple[int, ...], cached: tuple[int, ...]):
    def make(seed: int) -> Inputs:
        g = generator(seed)
        totals = [n + c for n, c in zip(new, cached, strict=True)]
        table, num_blocks = _block_tables(g, totals, s.block_size)
        k_cache, v_cache, k_scale, v_scale = _random_cache(g, s, num_blocks)
        k = torch.cat(
            [
                _read_back(k_cache, s, table[b], c, c + n, k_scale)
                for b, (n, c) in enumerate(zip(new, cached, strict=True))
            ]
        )
        v = torch.cat(
            [
                _read_back(v_cache, s, table[b], c, c + n, v_scale)
                for b, (n, c) in enumerate(zip(new, cached, strict=True))
            ]
        )
        cu = torch.tensor([0, *new], dtype=torch.int32).cumsum(0, dtype=torch.int32)
        seq_lens = torch.tensor(totals, dtype=torch.int32)
        args = (
            _query(g, s, sum(new)),
            k,
            v,
            k_cache,
            v_cache,
            table,
            cu,
            seq_lens,
            max(new),
            max(totals),
            s.d**-0.5,
        )
        kwargs = {
            "causal": s.causal,
            **_window_args(s),
            "sinks": _sinks(g, s),
            "k_scale": k_scale,
            "v_scale": v_scale,
        }
        return args, kwargs

    return make


def _make_write_kv(s: Shape, tokens: int, num_blocks: int, padded: int):
    def make(seed: int) -> Inputs:
        g = generator(seed)
        k_cache, v_cache, k_scale, v_scale = _random_cache(g, s, num_blocks)
        slots = torch.randperm(num_blocks * s.block_size, generator=g)[:tokens]
        slots[torch.randperm(tokens, generator=g)[:padded]] = -1
        k, v = randn(g, tokens, s.hkv, s.d, dtype=s.dtype), randn(g, tokens, s.hkv, s.d, dtype=s.dtype)
        if k_scale is not None:  # some values beyond the fp8 range after scaling: they must saturate
            k[::5] *= 600
            v[1::7] *= -900
        return (k, v, k_cache, v_cache, slots), {"k_scale": k_scale, "v_scale": v_scale}

    return make


F32, F16, BF16 = torch.float32, torch.float16, torch.bfloat16
# (shape, decode sequence lengths, large): 0 marks a padded decode row
DECODE = (
    (Shape(F32, 8, 8, 64, 16), (1, 17, 33, 5), False),
    (Shape(F16, 16, 4, 128, 32, "HND"), (40, 0, 3, 64, 65), False),
    (Shape(BF16, 8, 1, 256, 64, window=24), (100, 7, 23), False),
    (Shape(F32, 12, 3, 80, 128, "HND", softcap=5.0), (129, 2, 300), False),
    (Shape(BF16, 8, 1, 96, 16, sinks=True), (31, 0, 16), False),
    # block_size == Hkv: only the spec tells HND from NHD
    (Shape(F32, 16, 16, 64, 16, "HND", window=9, softcap=8.0, sinks=True), (50, 1, 9, 10), False),
    (Shape(F16, 8, 2, 128, 16, "HND", kv_dtype=E4M3FN), (45, 3, 0, 77), False),
    (Shape(BF16, 8, 1, 64, 32, kv_dtype=E4M3FNUZ, window=16, sinks=True), (70, 33), False),
    (Shape(F16, 16, 4, 128, 16, kv_dtype=E4M3FN), (45, 0, 3, 77), False),
    (Shape(F32, 12, 3, 80, 128, window=9), (129, 2, 300), False),
    (Shape(F32, 12, 4, 80, 16, window=20, softcap=6.0, sinks=True), (65, 0, 3, 40), False),
    # 16-bit keys in 128-token pages (some vendors' paged attention reads only those): GQA 8 with a padded
    # row, a window, sinks at head dim 64, HND, and head dim 512
    (Shape(F16, 16, 2, 128, 128), (200, 0, 129, 5), False),
    (Shape(BF16, 8, 1, 64, 128, window=40), (300, 7, 41), False),
    (Shape(BF16, 8, 2, 64, 128, sinks=True), (150, 0, 3), False),
    (Shape(BF16, 16, 4, 128, 128, "HND"), (129, 1, 257), False),
    (Shape(BF16, 8, 1, 512, 128), (130, 5), False),
    (Shape(F16, 8, 8, 64, 128), (1, 300, 128), False),
    (Shape(F32, 8, 1, 128, 128), (4133, 12, 1), True),
    (Shape(BF16, 32, 4, 128, 16, "HND", kv_dtype=E4M3FN), (4099, 250), True),
)
# (shape, new tokens per sequence, cached prefix per sequence, large)
PREFILL = (
    (Shape(F32, 4, 4, 64, 16), (1, 7, 33), (0, 0, 0), False),
    (Shape(F16, 16, 4, 128, 32, "HND"), (5, 19, 40), (0, 16, 45), False),
    (Shape(BF16, 8, 1, 256, 64, window=8), (37, 2), (0, 70), False),
    (Shape(F32, 12, 3, 80, 128, "HND", softcap=5.0), (9, 130), (200, 1), False),
    (Shape(F16, 8, 8, 96, 16, window=5, sinks=True), (21, 1), (0, 3), False),
    # block_size == Hkv: only the spec tells HND from NHD
    (Shape(F32, 16, 16, 64, 16, "HND", softcap=8.0, sinks=True), (13, 4), (6, 30), False),
    (Shape(F32, 4, 1, 64, 32, causal=False), (11, 3, 26), (0, 0, 0), False),
    (Shape(F16, 8, 2, 128, 16, "HND", kv_dtype=E4M3FN), (6, 17), (50, 0), False),
    (Shape(BF16, 8, 1, 64, 32, kv_dtype=E4M3FNUZ, sinks=True, window=12), (10, 3), (40, 64), False),
    # 16-bit keys in 128-token pages: GQA 8 with a cached prefix, a window, sinks, HND, non-causal
    (Shape(F16, 16, 2, 128, 128), (9, 140), (0, 130), False),
    (Shape(BF16, 8, 1, 64, 128, window=24), (37, 2), (0, 170), False),
    (Shape(BF16, 8, 2, 64, 128, sinks=True), (20, 5), (130, 0), False),
    (Shape(F16, 8, 4, 128, 128, "HND"), (33, 4), (100, 0), False),
    (Shape(BF16, 4, 1, 64, 128, causal=False), (11, 26), (0, 0), False),
    (Shape(F16, 4, 4, 64, 128), (1, 7, 130), (0, 128, 5), False),
    (Shape(F32, 4, 1, 64, 128), (1500,), (0,), True),  # more query rows than the reference's query tile
    (Shape(BF16, 8, 1, 128, 64, "HND", window=1024), (9, 1100), (4096, 3), True),
)
# (shape, tokens, cache blocks, padded slots, large)
WRITE_KV = (
    (Shape(F32, 4, 4, 64, 16), 37, 5, 4, False),
    (Shape(F16, 8, 8, 128, 32, "HND"), 19, 3, 0, False),
    (Shape(BF16, 8, 1, 256, 64), 70, 4, 9, False),
    (Shape(F32, 4, 2, 80, 128, "HND"), 33, 2, 5, False),
    (Shape(F32, 16, 16, 96, 16, "HND"), 21, 3, 2, False),  # block_size == Hkv
    (Shape(F16, 8, 2, 128, 16, kv_dtype=E4M3FN), 29, 4, 3, False),
    (Shape(BF16, 8, 2, 64, 32, "HND", kv_dtype=E4M3FNUZ), 41, 3, 6, False),
    (Shape(F16, 8, 2, 128, 128), 45, 3, 4, False),  # 128-token pages of 16-bit keys
    (Shape(BF16, 4, 1, 64, 128), 130, 3, 0, False),
    (Shape(BF16, 8, 1, 128, 128, "HND"), 4100, 40, 17, True),
)


def _decode_cases() -> list[Case]:
    return [
        Case(
            "attention.decode",
            f"B={len(lens)} lens={'/'.join(map(str, lens))} {s.label}",
            s.spec(),
            _make_decode(s, lens),
            functools.partial(oracle.decode, s.layout),
            s.tolerance(),
            large=large,
        )
        for s, lens, large in DECODE
    ]


def _prefill_cases() -> list[Case]:
    cases = []
    for s, new, cached, large in PREFILL:
        prefix = any(cached)
        label = f"new={'/'.join(map(str, new))}" + (f" cached={'/'.join(map(str, cached))}" if prefix else "")
        cases.append(
            Case(
                "attention.prefill",
                f"{label} {s.label}",
                s.spec(prefix),
                _make_prefill(s, new, cached),
                functools.partial(oracle.prefill, s.layout),
                s.tolerance(),
                large=large,
            )
        )
    return cases


def _write_kv_cases() -> list[Case]:
    # the compared outputs are the caches; with power-of-two scales fp8 stores are exact, so the compute
    # dtype's table applies to them too
    return [
        Case(
            "attention.write_kv",
            f"T={t} padded={p} blocks={n} {s.label}",
            s.spec(),
            _make_write_kv(s, t, n, p),
            functools.partial(oracle.write_kv, s.layout),
            for_dtype(s.dtype),
            large=large,
        )
        for s, t, n, p, large in WRITE_KV
    ]


CASES = {
    "attention.decode": _decode_cases,
    "attention.prefill": _prefill_cases,
    "attention.write_kv": _write_kv_cases,
}
