"""Emulator of MATE's DeepGEMM-compatible fp8 GEMMs (MooreThreads/mate @ 3f58cc3, mate/deep_gemm.py over
mate/gemm.py's gemm_fp8_nt_groupwise and ragged_m_moe_gemm_8bit).

fp8_gemm_nt((a, sfa), (b, sfb), d, c=None, recipe=None, compiled_dims="nk", disable_ue8m0_cast=True):
    d [m, n] = (a * sfa) @ (b * sfb).T with a [m, k] and b [n, k] fp8 (e4m3 / e5m2), contiguous; scales
    float32 per the granularity (1, 128, 128): sfa [m, ceil(k/128)], sfb [ceil(n/128), ceil(k/128)],
    contiguous (K-major); d bf16 or fp16, last dim contiguous. MATE asserts c is None.
m_grouped_fp8_gemm_nt_contiguous((a, sfa), (b, sfb), d, m_indices, recipe=None, compiled_dims="nk",
    disable_ue8m0_cast=True, alignment_m=128):
    a [M, k] fp8 with sfa [M, k/128]; b [E, n, k] fp8 with sfb [E, n/128, k/128]; m_indices [M] int32, the
    expert of each row or -1 for a padding row; each expert's rows contiguous in segments that start at
    multiples of alignment_m (128 or 256); d [M, n] bf16 or fp16 (padding rows are left as they were).
    UE8M0 casts raise, as MATE does.
MATE ships these kernels for mp31 only: any other emulated architecture raises.
"""

from __future__ import annotations

import torch

from .._arch import arch

FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)
OUT = (torch.bfloat16, torch.float16)
BLOCK = 128


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise RuntimeError(f"MATE: {message}")


def _check_arch() -> None:
    _check(arch() == 31, f"no fp8 GEMM kernel for mp_{arch()}: MATE ships them for MP31 only")


def _expand(scale: torch.Tensor, rows: int, cols: int, tile_rows: int) -> torch.Tensor:
    return scale.repeat_interleave(tile_rows, dim=0)[:rows].repeat_interleave(BLOCK, dim=1)[:, :cols]


def _operand(x: torch.Tensor, scale: torch.Tensor, tile_rows: int, name: str) -> torch.Tensor:
    _check(x.dtype in FP8, f"{name} must be float8 e4m3 or e5m2, got {x.dtype}")
    _check(x.is_contiguous(), f"{name} must be contiguous")
    _check(scale.dtype == torch.float32 and scale.is_contiguous(), f"{name} scales: contiguous float32")
    rows, cols = x.shape
    want = (-(-rows // tile_rows), -(-cols // BLOCK))
    _check(tuple(scale.shape) == want, f"{name} scales of shape {tuple(scale.shape)}, expected {want}")
    return x.float() * _expand(scale.float(), rows, cols, tile_rows)


def fp8_gemm_nt(
    a: tuple[torch.Tensor, torch.Tensor],
    b: tuple[torch.Tensor, torch.Tensor],
    d: torch.Tensor,
    c: torch.Tensor | None = None,
    recipe: tuple[int, int, int] | None = None,
    compiled_dims: str = "nk",
    disable_ue8m0_cast: bool = True,
) -> torch.Tensor:
    assert c is None, "Not support GEMM with C"
    _check_arch()
    _check(recipe in (None, (1, BLOCK, BLOCK)), f"recipe {recipe}: the emulator takes (1, 128, 128)")
    (qa, sfa), (qb, sfb) = a, b
    _check(qa.dim() == 2 and qb.dim() == 2 and qa.shape[1] == qb.shape[1], "a [m, k] and b [n, k]")
    if d.dtype not in OUT:
        raise ValueError("Only bf16 and fp16 are supported for out_type!")
    if tuple(d.shape) != (qa.shape[0], qb.shape[0]):
        raise ValueError(f"out must have shape {(qa.shape[0], qb.shape[0])}, got {tuple(d.shape)}")
    if d.stride(-1) != 1:
        raise ValueError("out must be contiguous at the last dimension")
    af, bf = _operand(qa, sfa, 1, "a"), _operand(qb, sfb, BLOCK, "b")
    d.copy_(af @ bf.T)
    return d


def m_grouped_fp8_gemm_nt_contiguous(
    a: tuple[torch.Tensor, torch.Tensor],
    b: tuple[torch.Tensor, torch.Tensor],
    d: torch.Tensor,
    m_indices: torch.Tensor,
    recipe: tuple[int, int, int] | None = None,
    compiled_dims: str = "nk",
    disable_ue8m0_cast: bool = True,
    alignment_m: int = 128,
) -> None:
    if not disable_ue8m0_cast:
        raise Exception("m_grouped_fp8_gemm_nt_contiguous UE8M0 cast is not supported!")
    _check_arch()
    _check(recipe in (None, (1, BLOCK, BLOCK)), f"recipe {recipe}: the emulator takes (1, 128, 128)")
    _check(alignment_m in (128, 256), f"alignment_m must be 128 or 256, got {alignment_m}")
    (qa, sfa), (qb, sfb) = a, b
    _check(qb.dim() == 3 and qa.dim() == 2 and qa.shape[1] == qb.shape[2], "a [M, k] and b [E, n, k]")
    rows, experts, n = qa.shape[0], qb.shape[0], qb.shape[1]
    _check(rows % alignment_m == 0, f"M = {rows} must be a multiple of alignment_m {alignment_m}")
    _check(m_indices.dtype == torch.int32 and m_indices.shape == (rows,), "m_indices: int32 [M]")
    _check(d.dtype in OUT and tuple(d.shape) == (rows, n), f"d: bf16/fp16 [{rows}, {n}]")
    _check(tuple(sfb.shape[:1]) == (experts,), "b scales: [E, n/128, k/128]")
    af = _operand(qa, sfa, 1, "a")
    groups = m_indices.view(-1, alignment_m)
    for g, block in enumerate(groups):
        expert = int(block[0])
        _check(bool((block[block >= 0] == expert).all()), "an aligned block of rows mixes experts")
        _check(bool((block[: int((block >= 0).sum())] >= 0).all()), "padding rows must end their block")
        if expert < 0:
            continue
        _check(expert < experts, f"expert index {expert} out of range [0, {experts})")
        used = int((block >= 0).sum())
        rows_of = slice(g * alignment_m, g * alignment_m + used)
        bf = _operand(qb[expert], sfb[expert], BLOCK, "b")
        d[rows_of] = (af[rows_of] @ bf.T).to(d.dtype)
