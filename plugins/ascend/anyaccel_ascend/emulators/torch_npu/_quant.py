"""Quantized GEMMs (torch_npu 2.14 _op_plugin_docs.py and meta registrations; the signatures are the
registered schemas of Ascend/op-plugin @ 517f2e7 op_plugin/config/op_plugin_functions.yaml).

npu_dynamic_quant(input, *, smooth_scales=None, group_index=None, dst_type=None, quant_mode="pertoken",
                  dst_type_max=0.0) -> (y, scale)
    Per-token symmetric int8: scale = amax(|x|, last dim) / 127 (float32, x.shape[:-1]); y = round(x / scale)
    as int8. x float16/bfloat16. dst_type None or torch.int8, quant_mode "pertoken" (int4, other modes and
    smoothing not emulated).
npu_quant_matmul(x1, x2, scale, *, offset=None, pertoken_scale=None, bias=None, output_dtype=None,
                 x1_dtype=None, x2_dtype=None, pertoken_scale_dtype=None, scale_dtype=None, group_sizes=None,
                 y_scale=None) -> Tensor
    x1 int8 [M, K]; x2 int8 [K, N]; scale [N] or [1] (float32, or bfloat16 for a bfloat16 output);
    pertoken_scale float32 [M] (needs output_dtype float16 or bfloat16); bias [N] float32 or the output dtype.
    out = (x1 @ x2 exact in int32) * scale * pertoken_scale (+ bias), rounded once to output_dtype. The
    dtype overrides, group_sizes and y_scale (int4 / fp8 / MX paths) are not emulated.
npu_weight_quant_batchmatmul(x, weight, antiquant_scale, antiquant_offset=None, quant_scale=None,
                             quant_offset=None, bias=None, antiquant_group_size=0, inner_precise=0,
                             weight_dtype=None)
    x [M, K] float16/bfloat16; weight int8 [K, N], or int32 [K, N/8] holding signed int4 (see below);
    antiquant_scale in x's dtype: [N] per channel, or [ceil(K/G), N] per group with antiquant_group_size G
    (a multiple of 32); antiquant_offset shaped like it, or None. weight_deq = (w + offset) * scale;
    out = x @ weight_deq (+ bias) in x's dtype, float32 accumulation. quant_scale/quant_offset: NotEmulated.
npu_convert_weight_to_int4pack(weight, inner_k_tiles=0) -> Tensor
    weight int32 [K, N] holding values in [-8, 7], N a multiple of 8 -> int32 [K, N/8]. The packed order is
    opaque to callers (only npu_weight_quant_batchmatmul reads it); the emulator packs value 8j+i of a row
    into bits 4i..4i+3 of word j.
"""

from __future__ import annotations

import torch

from ._checks import HALF, NotEmulated, dtype_of_soc, require, unused


def npu_dynamic_quant(
    input: torch.Tensor,  # noqa: A002 - the registered schema's name
    *,
    smooth_scales=None,
    group_index=None,
    dst_type=None,
    quant_mode: str = "pertoken",
    dst_type_max: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_dynamic_quant"
    unused(fn, smooth_scales=smooth_scales, group_index=group_index)
    require(quant_mode == "pertoken", fn, f"quant_mode {quant_mode!r}: only 'pertoken' is emulated")
    require(dst_type_max == 0.0, fn, "dst_type_max applies to other output types (pass 0.0 for int8)")
    require(dst_type in (None, torch.int8), fn, "only int8 output (dst_type None or torch.int8) is emulated")
    require(input.dtype in HALF, fn, f"input dtype {input.dtype}: float16 or bfloat16")
    dtype_of_soc(fn, input.dtype)
    xf = input.float()
    scale = xf.abs().amax(-1) / 127.0
    y = torch.round(xf / scale.clamp_min(1e-30).unsqueeze(-1)).clamp(-127, 127).to(torch.int8)
    return y, scale


def npu_quant_matmul(
    x1: torch.Tensor,
    x2: torch.Tensor,
    scale: torch.Tensor,
    *,
    offset=None,
    pertoken_scale: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    output_dtype: torch.dtype | None = None,
    x1_dtype=None,
    x2_dtype=None,
    pertoken_scale_dtype=None,
    scale_dtype=None,
    group_sizes=None,
    y_scale=None,
) -> torch.Tensor:
    fn = "npu_quant_matmul"
    unused(
        fn,
        offset=offset,
        x1_dtype=x1_dtype,
        x2_dtype=x2_dtype,
        pertoken_scale_dtype=pertoken_scale_dtype,
        scale_dtype=scale_dtype,
        group_sizes=group_sizes,
        y_scale=y_scale,
    )
    require(
        x1.dtype == torch.int8 and x2.dtype == torch.int8,
        fn,
        "x1 and x2 must be int8 (int4/fp8 not emulated)",
    )
    require(x1.dim() == 2 and x2.dim() == 2 and x1.shape[1] == x2.shape[0], fn, "x1 [M, K] @ x2 [K, N]")
    m, n = x1.shape[0], x2.shape[1]
    out_dtype = output_dtype or torch.int8
    require(out_dtype in (torch.float16, torch.bfloat16), fn, "emulated outputs: float16 or bfloat16")
    dtype_of_soc(fn, out_dtype)
    require(scale.dim() == 1 and scale.shape[0] in (1, n), fn, f"scale must be [1] or [{n}]")
    require(
        scale.dtype == torch.float32 or (scale.dtype == torch.bfloat16 and out_dtype == torch.bfloat16),
        fn,
        "scale: float32, or bfloat16 with a bfloat16 output",
    )
    if pertoken_scale is not None:
        require(
            pertoken_scale.dtype == torch.float32 and tuple(pertoken_scale.shape) == (m,), fn, "pertoken [M]"
        )
    if bias is not None:
        require(tuple(bias.shape) == (n,) and bias.dtype in (torch.float32, out_dtype), fn, "bias [N]")
    acc = (x1.to(torch.int64) @ x2.to(torch.int64)).double()  # exact int32 products and sums
    out = acc * scale.double()
    if pertoken_scale is not None:
        out = out * pertoken_scale.double().unsqueeze(1)
    if bias is not None:
        out = out + bias.double()
    return out.to(out_dtype)


def npu_convert_weight_to_int4pack(weight: torch.Tensor, inner_k_tiles: int = 0) -> torch.Tensor:
    fn = "npu_convert_weight_to_int4pack"
    require(weight.dtype == torch.int32 and weight.dim() == 2, fn, "weight must be 2-D int32")
    require(weight.shape[1] % 8 == 0, fn, "the last dim must be a multiple of 8")
    require(bool(((weight >= -8) & (weight <= 7)).all()), fn, "values must lie in the int4 range [-8, 7]")
    nibbles = (weight & 0xF).view(weight.shape[0], -1, 8)
    packed = torch.zeros(nibbles.shape[:2], dtype=torch.int64)
    for i in range(8):
        packed |= nibbles[..., i].to(torch.int64) << (4 * i)
    return torch.where(packed >= 2**31, packed - 2**32, packed).to(torch.int32)


def _unpack_int4(packed: torch.Tensor) -> torch.Tensor:
    words = packed.to(torch.int64) & 0xFFFFFFFF
    nibbles = torch.stack([(words >> (4 * i)) & 0xF for i in range(8)], dim=-1)
    return torch.where(nibbles >= 8, nibbles - 16, nibbles).reshape(packed.shape[0], -1)


def npu_weight_quant_batchmatmul(
    x: torch.Tensor,
    weight: torch.Tensor,
    antiquant_scale: torch.Tensor,
    antiquant_offset: torch.Tensor | None = None,
    quant_scale=None,
    quant_offset=None,
    bias: torch.Tensor | None = None,
    antiquant_group_size: int = 0,
    inner_precise: int = 0,
    weight_dtype=None,
) -> torch.Tensor:
    fn = "npu_weight_quant_batchmatmul"
    unused(fn, weight_dtype=weight_dtype)
    if quant_scale is not None or quant_offset is not None:
        raise NotEmulated(f"torch_npu.{fn}: output quantization is not emulated")
    require(x.dtype in HALF and x.dim() == 2, fn, "x must be 2-D float16 or bfloat16")
    dtype_of_soc(fn, x.dtype)
    if weight.dtype == torch.int8:
        w = weight.to(torch.int64)
    else:
        require(weight.dtype == torch.int32, fn, "weight must be int8 or int32 (packed int4)")
        w = _unpack_int4(weight)
    require(w.dim() == 2 and w.shape[0] == x.shape[1], fn, f"weight [K={x.shape[1]}, N] expected")
    k, n = w.shape
    require(antiquant_scale.dtype == x.dtype, fn, "antiquant_scale must have x's dtype")
    if antiquant_group_size:
        g = antiquant_group_size
        require(g % 32 == 0, fn, f"antiquant_group_size {g} must be a multiple of 32")
        require(
            tuple(antiquant_scale.shape) == (-(-k // g), n),
            fn,
            f"per-group scale must be [{-(-k // g)}, {n}]",
        )
        rows = torch.arange(k) // g
        scale = antiquant_scale.float()[rows]
    else:
        require(tuple(antiquant_scale.shape) in ((n,), (1, n)), fn, f"per-channel scale must be [{n}]")
        scale = antiquant_scale.float().reshape(1, n).expand(k, n)
        rows = torch.zeros(k, dtype=torch.long)
    offset = torch.zeros(k, n)
    if antiquant_offset is not None:
        require(
            antiquant_offset.shape == antiquant_scale.shape,
            fn,
            "antiquant_offset must be shaped like the scale",
        )
        require(antiquant_offset.dtype == x.dtype, fn, "antiquant_offset must have x's dtype")
        offset = (
            antiquant_offset.float().reshape(-1, n)[rows]
            if antiquant_group_size
            else antiquant_offset.float().reshape(1, n).expand(k, n)
        )
    if bias is not None:
        require(tuple(bias.shape) == (n,), fn, "bias must be [N]")
    deq = (w.float() + offset) * scale
    out = x.float() @ deq
    if bias is not None:
        out = out + bias.float()
    return out.to(x.dtype)
