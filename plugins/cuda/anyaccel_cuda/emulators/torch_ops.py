"""Emulator of anyaccel_cuda.torch_ops: torch 2.13's CUDA entry points in plain torch, with the CUDA
implementation's argument checks (aten/src/ATen/native/cuda/Blas.cpp, ScaledBlas.cpp, GroupedBlas.cpp;
torch/nn/attention/varlen.py) and its architecture limits read from the emulated capability.

    scaled_mm:  tensor-wise (both scales one float32) and row-wise (scale_a [M, 1], scale_b [1, N], bf16
                output only) from sm_89; block-wise (scale_a [M, K/128] per 1x128, scale_b [N/128, K/128]
                per 128x128, bf16 output) on sm_90 only. a row-major, b column-major; K and N multiples
                of 16. No bias with a float32 output.
    grouped_mm: bf16 mat_a [sum M_g, K] and mat_b [G, K, N] (one of its last two dims contiguous), offs [G]
                int32 cumulative row ends; K and N multiples of 8 (16-byte rows). The fast path is built for
                9.x/10.x; other devices run a slow fallback, emulated the same.
    int_mm:     int8 a [M, K] with M > 16, K and N positive multiples of 8; int32 result.
    varlen_attn: fp16/bf16, FlashAttention-2 inside torch (sm_80+); a block_table (paged KV) needs the FA3
                implementation, sm_90 only.
    symmetric memory (torch.distributed._symmetric_memory, torch.ops.symm_mem): sm_90+; the reductions
                take a view of a buffer allocated by symm_mem_empty and rendezvoused on the same group,
                reduce_op "sum", float32/bfloat16; multimem (NVLS) only on 9.0/10.x. Emulated with the
                group's own all_reduce (gloo across the emulating processes).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.distributed.distributed_c10d import GroupName, _resolve_process_group

from . import arch
from .attention_math import attend, gather_pages
from .errors import require

FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    bias: torch.Tensor | None = None,
    scale_result: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
    use_fast_accum: bool = False,
) -> torch.Tensor:
    cc = arch.sm_version()
    require(
        cc >= 89,
        f"torch._scaled_mm is only supported on CUDA devices with compute capability >= 9.0 or 8.9, got {cc}",
        RuntimeError,
    )
    require(scale_result is None, "scale_result is not emulated", NotImplementedError)
    require(
        a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0],
        "mat1 and mat2 shapes cannot be multiplied",
        RuntimeError,
    )
    require(a.dtype in FP8 and b.dtype in FP8, "Expected both inputs to be fp8 types", RuntimeError)
    require(
        not (a.dtype == b.dtype == torch.float8_e5m2),
        "Multiplication of two Float8_e5m2 matrices is not supported",
        RuntimeError,
    )
    require(a.stride(1) == 1, "mat1 must be row-major", RuntimeError)
    require(b.stride(0) == 1, "mat2 must be col_major", RuntimeError)
    m, k = a.shape
    n = b.shape[1]
    require(
        k % 16 == 0 and n % 16 == 0,
        f"Expected both dimensions of mat2 to be divisble by 16 but got {tuple(b.shape)}",
        RuntimeError,
    )
    dtype = out_dtype or a.dtype
    require(
        scale_a.dtype == torch.float32 and scale_b.dtype == torch.float32,
        "scales must be float32",
        RuntimeError,
    )
    if scale_a.numel() == 1 and scale_b.numel() == 1:
        sa, sb = scale_a.reshape(1, 1), scale_b.reshape(1, 1)
    elif scale_a.shape == (m, 1) and scale_b.shape == (1, n):
        require(
            dtype == torch.bfloat16,
            "Only bf16 high precision output types are supported for row-wise scaling.",
            RuntimeError,
        )
        sa, sb = scale_a, scale_b
    elif (
        scale_a.shape == (m, k // 128)
        and scale_b.shape == (n // 128, k // 128)
        and k % 128 == 0
        and n % 128 == 0
    ):
        require(
            cc == 90,
            f"Block-wise scaling (1x128, 128x128) is only supported on sm_90, got sm_{cc}",
            RuntimeError,
        )
        require(dtype == torch.bfloat16, "block-wise scaling writes bf16 only", RuntimeError)
        sa = scale_a.repeat_interleave(128, dim=1)
        sb = scale_b.repeat_interleave(128, dim=0).repeat_interleave(128, dim=1).T
    else:
        raise RuntimeError(
            f"Invalid scaling configuration: scale_a {tuple(scale_a.shape)}, scale_b {tuple(scale_b.shape)}"
        )
    if bias is not None:
        require(
            dtype != torch.float32, "Bias is not supported when out_dtype is set to Float32", RuntimeError
        )
        require(bias.shape == (n,) and bias.dtype == dtype, "bias must be [N] in out_dtype", RuntimeError)
    result = (a.float() * sa) @ (b.float() * sb)
    if bias is not None:
        result = result + bias.float()
    return result.to(dtype)


def grouped_mm(
    mat_a: torch.Tensor,
    mat_b: torch.Tensor,
    offs: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    require(arch.major() >= 8, "grouped gemm needs sm_80 or newer", RuntimeError)
    require(bias is None, "Bias not supported yet", RuntimeError)
    require(
        mat_a.dim() == 2 and mat_b.dim() == 3,
        "the emulator takes 2-D mat_a and 3-D mat_b",
        NotImplementedError,
    )
    require(mat_a.dtype == mat_b.dtype == torch.bfloat16, "Expected inputs of BF16 type", RuntimeError)
    require(out_dtype in (None, torch.bfloat16), "Only bf16 out_dtype is supported", RuntimeError)
    require(
        offs is not None and offs.dtype == torch.int32 and offs.dim() == 1,
        "offs must be a 1-D int32 tensor",
        RuntimeError,
    )
    assert offs is not None
    groups, k, n = mat_b.shape
    require(
        offs.numel() == groups and mat_a.shape[1] == k,
        "offs must have one entry per group; K must match",
        RuntimeError,
    )
    require(k % 8 == 0 and n % 8 == 0, "strides should be multiples of 16 bytes", RuntimeError)
    require(
        mat_a.stride(1) == 1 and (mat_b.stride(1) == 1 or mat_b.stride(2) == 1),
        "inputs must be row or column major",
        RuntimeError,
    )
    ends = offs.long()
    require(
        bool((ends.diff() >= 0).all()) and int(ends[-1]) <= mat_a.shape[0],
        "offs must be non-decreasing row ends",
        RuntimeError,
    )
    out = torch.zeros(mat_a.shape[0], n, dtype=torch.float32)
    start = 0
    for g in range(groups):
        end = int(ends[g])
        out[start:end] = mat_a[start:end].float() @ mat_b[g].float()
        start = end
    return out.to(torch.bfloat16)


def int_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    require(
        a.dim() == 2 and b.dim() == 2 and a.shape[1] == b.shape[0],
        "mat1 and mat2 shapes cannot be multiplied",
        RuntimeError,
    )
    require(a.dtype == torch.int8 and b.dtype == torch.int8, "_int_mm expects int8 inputs", RuntimeError)
    require(a.shape[0] > 16, f"self.size(0) needs to be greater than 16, but got {a.shape[0]}", RuntimeError)
    require(
        a.shape[1] > 0 and a.shape[1] % 8 == 0,
        f"self.size(1) needs to be greater than 0 and a multiple of 8, but got {a.shape[1]}",
        RuntimeError,
    )
    require(
        b.shape[1] > 0 and b.shape[1] % 8 == 0,
        f"mat2.size(1) needs to be greater than 0 and a multiple of 8, but got {b.shape[1]}",
        RuntimeError,
    )
    return (a.long() @ b.long()).to(torch.int32)


def varlen_attn(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cu_seq_q: torch.Tensor,
    cu_seq_k: torch.Tensor | None,
    max_q: int,
    max_k: int,
    *,
    return_aux=None,
    scale: float | None = None,
    window_size: tuple[int, int] = (-1, -1),
    enable_gqa: bool = False,
    seqused_k: torch.Tensor | None = None,
    block_table: torch.Tensor | None = None,
    num_splits: int | None = None,
) -> torch.Tensor:
    require(arch.major() >= 8, "FlashAttention only supports Ampere GPUs or newer.", RuntimeError)
    require(return_aux is None, "return_aux is not emulated", NotImplementedError)
    require(
        query.dtype in (torch.float16, torch.bfloat16),
        "FlashAttention only support fp16 and bf16 data type",
        RuntimeError,
    )
    require(key.dtype == query.dtype == value.dtype, "query and key must have the same dtype", RuntimeError)
    require(
        query.stride(-1) == 1 and key.stride(-1) == 1,
        "Input tensor must have contiguous last dimension",
        RuntimeError,
    )
    hq = query.size(1)
    hkv = key.size(2) if block_table is not None else key.size(1)
    if not enable_gqa and hq != hkv:
        raise ValueError(
            f"Expect query and key/value to have the same number of heads but got Hq={hq} and Hkv={hkv}."
        )
    if enable_gqa and hq % hkv != 0:
        raise ValueError(
            "Expect number of query heads to be a multiple of kv heads for GQA "
            f"but got Hq={hq} and Hkv={hkv}."
        )
    if block_table is not None:
        require(
            arch.sm_version() == 90,
            "paged KV (block_table) needs the FA3 implementation: sm_90 only",
            RuntimeError,
        )
        require(seqused_k is not None, "block_table requires seqused_k", RuntimeError)
    left, right = window_size
    require(right in (-1, 0), "a right window other than 0 is not emulated", NotImplementedError)
    causal = right == 0
    batch = cu_seq_q.numel() - 1
    out = torch.zeros(query.shape, dtype=torch.float32)
    d = query.shape[-1]
    for b in range(batch):
        lo, hi = int(cu_seq_q[b]), int(cu_seq_q[b + 1])
        if block_table is not None:
            length = int(seqused_k[b])  # type: ignore[index]
            keys = gather_pages(key, "NHD", block_table[b], length)
            values = gather_pages(value, "NHD", block_table[b], length)
        else:
            klo, khi = int(cu_seq_k[b]), int(cu_seq_k[b + 1])  # type: ignore[index]
            keys, values = key[klo:khi], value[klo:khi]
        out[lo:hi] = attend(
            query[lo:hi], keys, values, scale=scale or d**-0.5, causal=causal, window_left=left
        )
    return out.to(query.dtype)


# storage pointer -> group names it was rendezvoused on (the buffers symm_mem_empty handed out)
_SYMMETRIC: dict[int, set[str]] = {}


def symm_mem_empty(numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    require(arch.major() >= 9, "symmetric memory needs sm_90 or newer", RuntimeError)
    t = torch.empty(numel, dtype=dtype, device=device)
    _SYMMETRIC[t.untyped_storage().data_ptr()] = set()
    return t


def symm_mem_rendezvous(tensor: torch.Tensor, group_name: str) -> None:
    groups = _SYMMETRIC.get(tensor.untyped_storage().data_ptr())
    require(groups is not None, "rendezvous needs a tensor allocated by symm_mem.empty", RuntimeError)
    _resolve_process_group(GroupName(group_name))  # raises for an unknown group
    groups.add(group_name)  # type: ignore[union-attr]


def _symmetric_reduce(tensor: torch.Tensor, reduce_op: str, group_name: str, multimem: bool) -> torch.Tensor:
    groups = _SYMMETRIC.get(tensor.untyped_storage().data_ptr(), set())
    require(
        group_name in groups,
        "the tensor is not in a symmetric buffer rendezvoused on this group",
        RuntimeError,
    )
    require(reduce_op == "sum", f"reduce_op {reduce_op!r} is not supported", RuntimeError)
    require(
        tensor.dtype in (torch.float32, torch.bfloat16), f"unsupported dtype {tensor.dtype}", RuntimeError
    )
    require(tensor.is_contiguous(), "the tensor must be contiguous", RuntimeError)
    if multimem:
        require(arch.sm_version() in (90, 100, 103), "multimem (NVLS) needs sm_90 or sm_10x", RuntimeError)
    dist.all_reduce(tensor, group=_resolve_process_group(GroupName(group_name)))
    return tensor


def two_shot_all_reduce_(tensor: torch.Tensor, reduce_op: str, group_name: str) -> torch.Tensor:
    require(arch.major() >= 9, "symmetric memory needs sm_90 or newer", RuntimeError)
    return _symmetric_reduce(tensor, reduce_op, group_name, multimem=False)


def multimem_all_reduce_(tensor: torch.Tensor, reduce_op: str, group_name: str) -> torch.Tensor:
    return _symmetric_reduce(tensor, reduce_op, group_name, multimem=True)
