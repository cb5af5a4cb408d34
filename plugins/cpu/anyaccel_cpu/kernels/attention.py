"""attention.decode on the CPU through torch's fused scaled_dot_product_attention.

Each sequence's pages are gathered with one index_select per cache into [B, Hkv, L, D] (a view, no further
copy), and SDPA's CPU kernel attends with grouped-query heads and a boolean mask for the sequence lengths and
the sliding window. That is two gathers and one fused call per layer, where the reference's vectorised
softmax runs some twenty separate ops (demo Qwen3-MoE, 8 sequences of ~140 tokens: 0.2-0.4 ms against 3 ms).
SDPA has no logit soft-capping and no sinks: such specs stay with other kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from anyaccel.ops.attention import AttentionSpec
from anyaccel.ops.base import expect_tensor
from anyaccel.ops.kv_cache import check_pages
from anyaccel.platforms.base import Platform

from ..native import as_dtype, ids_as, native, ptr


def _pages(
    cache: torch.Tensor,
    table: torch.Tensor,
    scale: torch.Tensor | None,
    dtype: torch.dtype,
    hidden_rows: torch.Tensor,
):
    """The pages of `table` [B, n] from a [blocks, bs, Hkv, D] view, as [B, Hkv, n * bs, D] in `dtype`, with
    zeros in the slots `hidden_rows` (indices into the B * n * bs slots)."""
    b, n = table.shape
    _, block_size, hkv, d = cache.shape
    # index_select copies, so the pages are ours to zero in place (in `dtype`: fp8 has no index_fill);
    # index_fill touches only the hidden slots, where a masked_fill would pass over every one
    pages = cache.index_select(0, table.flatten()).view(b, n * block_size, hkv, d).to(dtype)
    pages.view(b * n * block_size, hkv * d).index_fill_(0, hidden_rows, 0)
    return (pages if scale is None else pages * scale.to(dtype)).transpose(1, 2)


OP = "attention.decode"


def decode(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    gqa = spec.num_q_heads != spec.num_kv_heads

    def cpu_decode(
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seq_len: int,
        scale: float,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kc, vc = k_cache, v_cache  # NHD: [num_blocks, block_size, Hkv, D]
        (num_blocks, block_size), width = kc.shape[:2], block_tables.shape[1]
        n = min(width, -(-max_seq_len // block_size))
        lens = seq_lens.long().unsqueeze(1)
        # entries past a sequence's last page may be anything (-1): read page 0 there, masked below
        used = torch.arange(n, device=q.device) < (lens + block_size - 1) // block_size
        table = block_tables[:, :n].long().where(used, 0)
        # a block id outside the cache or a sequence longer than its table or max_seq_len is an error, never
        # clamped into another sequence's pages (one host read; check_pages words the error)
        if table.numel() == 0:  # no sequence, or no page to read
            check_pages(OP, block_tables, seq_lens, block_size, num_blocks, max_seq_len)
        else:
            low, high, shortest, longest = torch.stack([*torch.aminmax(table), *torch.aminmax(lens)]).tolist()
            if low < 0 or high >= num_blocks or shortest < 0 or longest > min(n * block_size, max_seq_len):
                check_pages(OP, block_tables, seq_lens, block_size, num_blocks, max_seq_len)
        position = torch.arange(n * block_size, device=q.device)
        hidden = position >= lens
        if sliding_window > 0:
            hidden |= position < lens - sliding_window
        # slots a query must not see are zeroed by selection: SDPA adds its mask to the scores, and a NaN
        # key or value another request left in them would survive NaN + -inf and 0 * NaN
        rows = hidden.view(-1).nonzero().squeeze(1)
        keys = _pages(kc, table, k_scale, q.dtype, rows)
        values = _pages(vc, table, v_scale, q.dtype, rows)
        out = F.scaled_dot_product_attention(
            q.unsqueeze(2), keys, values, attn_mask=~hidden[:, None, None], scale=scale, enable_gqa=gqa
        ).squeeze(2)
        # a row with no key (an empty, padded sequence) returns zeros, as the contract says, not NaN
        return out.masked_fill((lens == 0).unsqueeze(-1), 0.0)

    return cpu_decode


def write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., None]:
    """One index_copy_ per cache into its flat [num_blocks * block_size, Hkv, D] NHD view."""

    def cpu_write_kv(
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> None:
        slots = slot_mapping
        if bool((slot_mapping < 0).any()):  # padded tokens are not stored (a free check on the CPU)
            keep = slot_mapping >= 0
            slots, k, v = slot_mapping[keep], k[keep], v[keep]
        for src, cache, scale in ((k, k_cache, k_scale), (v, v_cache, v_scale)):
            flat = cache.view(-1, *cache.shape[2:])
            if scale is not None:  # fp8: saturate, round, and store the bytes (no fp8 index_copy_ kernel)
                bound = torch.finfo(cache.dtype).max
                src = (src.float() / scale).clamp(-bound, bound).to(cache.dtype)
                flat, src = flat.view(torch.uint8), src.view(torch.uint8)
            flat.index_copy_(0, slots, src.to(flat.dtype))

    return cpu_write_kv


def native_decode(spec: AttentionSpec, platform: Platform) -> Callable[..., torch.Tensor]:
    """float32 query and cache in C (csrc/attention.c): pages read in place, each KV head once for its
    query heads, soft-capping and sinks included."""
    lib = native()
    op, f32 = "attention.decode", torch.float32
    hq, hkv, d, block_size = spec.num_q_heads, spec.num_kv_heads, spec.head_dim, spec.block_size

    def cpu_native_decode(
        q: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        block_tables: torch.Tensor,
        seq_lens: torch.Tensor,
        max_seq_len: int,
        scale: float,
        sliding_window: int = -1,
        softcap: float = 0.0,
        sinks: torch.Tensor | None = None,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # the C kernel trusts these shapes: checked on every call, not only under ANYACCEL_VALIDATE
        b = q.shape[0]
        expect_tensor(op, "q", q, dtype=f32, shape=(b, hq, d))
        # the cache's block size is the spec's, the one it was allocated with (Attention.allocate_cache)
        expect_tensor(op, "k_cache", k_cache, dtype=f32, shape=(None, block_size, hkv, d))
        expect_tensor(op, "v_cache", v_cache, dtype=f32, shape=tuple(k_cache.shape))
        expect_tensor(op, "block_tables", block_tables, shape=(b, None))
        expect_tensor(op, "seq_lens", seq_lens, shape=(b,))
        if sinks is not None:
            expect_tensor(op, "sinks", sinks, shape=(hq,))
            sinks = as_dtype(sinks, f32)
        if q.stride(-1) != 1:
            q = q.contiguous()
        kc, vc = k_cache.contiguous(), v_cache.contiguous()
        tables = ids_as(op, "block_tables", block_tables, torch.int32)
        lens = ids_as(op, "seq_lens", seq_lens, torch.int32)
        out = q.new_empty(b, hq, d)
        status = lib.anyaccel_paged_decode_f32(
            ptr(q), b, hq, d, q.stride(0), q.stride(1), ptr(kc), ptr(vc), kc.shape[0], block_size, hkv,
            ptr(tables), tables.shape[1], ptr(lens), scale, sliding_window, softcap, ptr(sinks), ptr(out),
        )  # fmt: skip
        if status == -2:
            raise MemoryError(f"{op}: no memory for the CPU kernel's scratch")
        if status:
            raise ValueError(
                f"{op}: a block table names a block outside the cache's {kc.shape[0]} or a sequence is "
                f"longer than its table's {tables.shape[1]} blocks of {block_size}"
            )
        return out

    return cpu_native_decode


def native_write_kv(spec: AttentionSpec, platform: Platform) -> Callable[..., None]:
    """float32 caches in C (csrc/kv_cache.c): one call copies every row, skipping padded slots."""
    lib = native()
    op, f32 = "attention.write_kv", torch.float32
    hkv, d = spec.num_kv_heads, spec.head_dim

    def cpu_native_write_kv(
        k: torch.Tensor,
        v: torch.Tensor,
        k_cache: torch.Tensor,
        v_cache: torch.Tensor,
        slot_mapping: torch.Tensor,
        k_scale: torch.Tensor | None = None,
        v_scale: torch.Tensor | None = None,
    ) -> None:
        # the C kernel trusts these shapes: checked on every call, not only under ANYACCEL_VALIDATE
        t = k.shape[0]
        expect_tensor(op, "k", k, dtype=f32, shape=(t, hkv, d))
        expect_tensor(op, "v", v, dtype=f32, shape=(t, hkv, d))
        expect_tensor(op, "k_cache", k_cache, dtype=f32, shape=(None, None, hkv, d))
        expect_tensor(op, "v_cache", v_cache, dtype=f32, shape=tuple(k_cache.shape))
        expect_tensor(op, "slot_mapping", slot_mapping, shape=(t,))
        if not (k_cache.is_contiguous() and v_cache.is_contiguous()):
            raise ValueError(f"{op}: the caches must be contiguous to be written in place")
        k = k if k.stride(-1) == 1 else k.contiguous()
        v = v if v.stride(-1) == 1 else v.contiguous()
        slots = ids_as(op, "slot_mapping", slot_mapping, torch.int64)
        status = lib.anyaccel_write_kv_f32(
            ptr(k), k.stride(0), k.stride(1), ptr(v), v.stride(0), v.stride(1), t, hkv, d,
            ptr(k_cache), ptr(v_cache), k_cache.shape[0] * k_cache.shape[1], ptr(slots),
        )  # fmt: skip
        if status:
            raise ValueError(f"{op}: a slot is outside [-1, {k_cache.shape[0] * k_cache.shape[1]})")

    return cpu_native_write_kv
