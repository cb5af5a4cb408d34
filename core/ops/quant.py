"""quant.quantize_fp8, quant.quantize_int8, quant.fp8_gemm, quant.int8_gemm, quant.w4a16_gemm,
quant.w8a16_gemm.

Weights follow nn.Linear: [N, K] (out, in) unless a packing format says otherwise. Scales are float32
multipliers that map quantized values back to real ones (real = q * scale), the convention of vLLM and of
DeepSeek-V3's `weight_scale_inv`; the 4-bit formats keep the checkpoint's (GPTQ/AWQ: the activations' dtype,
affine: W4A16Spec.scales_dtype).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import OpDef, expect, expect_tensor
from .common import preferred_dtype

FP8_DTYPES = ("float8_e4m3fn", "float8_e4m3fnuz")
FP8_GRANULARITIES = ("tensor", "token", "block")  # block = 1 x 128 groups along K (per token)
GEMM_SCALES = ("tensor", "channel", "block")
W4_FORMATS = ("gptq", "awq", "affine")
W8_GROUPS = (16, 32, 64, 128)
AFFINE_SCALE_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
BLOCK = 128


@dataclass(frozen=True)
class QuantSpec:
    """Spec of quantize_fp8 / quantize_int8: input dtype, target fp8 dtype and scale granularity."""

    dtype: torch.dtype = torch.float32
    fp8_dtype: str = "float8_e4m3fn"
    granularity: str = "token"


@dataclass(frozen=True)
class GemmSpec:
    """Spec of fp8_gemm / int8_gemm. scales: "tensor" (a [1], b [1]), "channel" (a [M, 1] per token,
    b [N, 1] per output channel), "block" (a [M, ceil(K/128)] per 1x128 group, b [ceil(N/128),
    ceil(K/128)] per 128x128 tile)."""

    out_dtype: torch.dtype = torch.float32
    scales: str = "channel"
    fp8_dtype: str = "float8_e4m3fn"
    n: int = 4096
    k: int = 4096


@dataclass(frozen=True)
class W4A16Spec:
    """dtype: the activations' (fp16/bf16; float32 for the affine format too). has_zeros: GPTQ/AWQ qzeros
    given (always true for affine, whose offsets take their place). scales_dtype: the affine format's scales
    and offsets, float32, float16 or bfloat16, as the checkpoint stores them (GGUF Q4_0/Q4_1 and MLX keep
    16 bits)."""

    dtype: torch.dtype = torch.float16
    format: str = "gptq"
    group_size: int = 128
    has_zeros: bool = True
    act_order: bool = False
    n: int = 4096
    k: int = 4096
    scales_dtype: torch.dtype = torch.float32


@dataclass(frozen=True)
class W8A16Spec:
    """Spec of w8a16_gemm: activation dtype, values per scale along K (16, 32, 64 or 128) and the shape."""

    dtype: torch.dtype = torch.float32
    group_size: int = 32
    n: int = 4096
    k: int = 4096


def quantize_fp8(
    x: torch.Tensor, fp8_dtype: torch.dtype, granularity: str, scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x: [M, K] in spec.dtype -> (q [M, K] fp8_dtype, scale float32).

    granularity "tensor": scale [1]; "token": scale [M, 1]; "block": scale [M, ceil(K/128)].
    Dynamic (scale None): scale = max(amax(|x|) over the group, 1e-12) / fp8_max, q = sat(x / scale), where
    fp8_max is 448 for e4m3fn and 240 for e4m3fnuz (gfx942), and sat() clamps to +-fp8_max before rounding
    to nearest. Static (scale given, granularity "tensor" only): q = sat(x / scale), the scale returned.
    """
    raise NotImplementedError


def quantize_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic symmetric per-token int8: x [M, K] -> (q [M, K] int8, scale [M, 1] float32) with
    scale = max(amax(|x_row|), 1e-12) / 127 and q = clamp(round_half_even(x / scale), -127, 127)."""
    raise NotImplementedError


def fp8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """out [M, N] = (a * a_scale) @ (b * b_scale).T + bias, accumulated in fp32, rounded to out_dtype.
    a: [M, K] fp8; b: [N, K] fp8 (weight); scale shapes per spec.scales (see GemmSpec); bias [N] or None."""
    raise NotImplementedError


def int8_gemm(
    a: torch.Tensor,
    b: torch.Tensor,
    a_scale: torch.Tensor,
    b_scale: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """W8A8: out [M, N] = (a @ b.T in exact int32) * a_scale * b_scale.T + bias, rounded to out_dtype.
    a: [M, K] int8, a_scale [M, 1] float32 (per token); b: [N, K] int8, b_scale [N, 1] float32 (per
    channel)."""
    raise NotImplementedError


def w4a16_gemm(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor,
    qzeros: torch.Tensor | None = None,
    g_idx: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """out [M, N] = x @ dequant(qweight).T + bias, with x [M, K] in spec.dtype (fp16/bf16).

    spec.format "gptq" (AutoGPTQ/GPTQModel checkpoints, v1 zero convention):
      qweight [K/8, N] int32: row r, bits 4i..4i+3 hold input channel 8r+i of every output column
      qzeros  [K/G, N/8] int32: column c, bits 4i..4i+3 hold the zero of output channel 8c+i, stored minus 1
      scales  [K/G, N]; g_idx [K] int32 group of each input channel (act-order) or None (k // G). With
              act-order, scales / qzeros have one row per group g_idx names: a tensor-parallel shard of
              the input keeps every group of the whole layer ([K_total/G, ...]) and g_idx holds global ids
      w[n, k] = (q - (z + 1)) * scale[g_idx[k], n]; without qzeros (symmetric) the zero is 8
    spec.format "awq" (AutoAWQ GEMM):
      qweight [K, N/8] int32 packed along N in the order [0, 2, 4, 6, 1, 3, 5, 7]: the nibble at bits 4i
      holds output channel 8c + AWQ_ORDER[i]; qzeros [K/G, N/8] packed the same way; scales [K/G, N]
      w[n, k] = (q - z) * scale[k // G, n]; without qzeros (symmetric) the zero is 8
    spec.format "affine" (GGUF Q4_0 / Q4_1 / Q4_K, MLX's affine 4-bit format, HQQ):
      qweight [N, K/8] int32: row n, word c, bits 4i..4i+3 hold input channel 8c+i (MLX's layout)
      scales  [N, K/G]; qzeros [N, K/G], the per-group offset m (MLX's "biases"); both spec.scales_dtype
      w[n, k] = q * scale[n, k // G] + qzeros[n, k // G]; no g_idx. N need not be a multiple of 8.
    The format is also told by the arguments (GPTQ's qweight has K/8 rows, AWQ's K, and only the affine
    format has floating-point qzeros): one kernel may serve all three.
    Packers and unpackers: anyaccel.schemes.packing; the formats are documented in docs/quantization.md.
    """
    raise NotImplementedError


def w8a16_gemm(
    x: torch.Tensor, qweight: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None = None
) -> torch.Tensor:
    """Weight-only int8 with group scales (GGUF Q8_0 and Q6_K): out [M, N] = x @ w.T + bias in x's dtype,
    w[n, k] = qweight[n, k] * scales[n, k // G]. x [M, K] in spec.dtype; qweight [N, K] int8; scales
    [N, K/G] float32; bias [N] or None. Accumulated in float32."""
    raise NotImplementedError


def _fake_quantize_fp8(x, fp8_dtype, granularity, scale=None):
    m, k = x.shape
    shape = {"tensor": (1,), "token": (m, 1), "block": (m, -(-k // BLOCK))}[granularity]
    return x.new_empty(x.shape, dtype=fp8_dtype), x.new_empty(shape, dtype=torch.float32)


def _fake_quantize_int8(x):
    return x.new_empty(x.shape, dtype=torch.int8), x.new_empty((x.shape[0], 1), dtype=torch.float32)


def _fake_gemm(a, b, a_scale, b_scale, out_dtype, bias=None):
    return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)


def _fake_w4a16(x, qweight, scales, qzeros=None, g_idx=None, bias=None):
    affine = qzeros is not None and qzeros.is_floating_point()
    return x.new_empty((x.shape[0], scales.shape[0] if affine else scales.shape[1]))


def _fake_w8a16(x, qweight, scales, bias=None):
    return x.new_empty((x.shape[0], qweight.shape[0]))


def _check_quant_spec(spec: QuantSpec) -> None:
    op = "quant.quantize_fp8"
    expect(op, spec.fp8_dtype in FP8_DTYPES, f"fp8_dtype must be one of {FP8_DTYPES}, got {spec.fp8_dtype}")
    expect(
        op,
        spec.granularity in FP8_GRANULARITIES,
        f"granularity must be one of {FP8_GRANULARITIES}, got {spec.granularity!r}",
    )


def _check_gemm_spec(op: str):
    def check(spec: GemmSpec) -> None:
        expect(op, spec.scales in GEMM_SCALES, f"scales must be one of {GEMM_SCALES}, got {spec.scales!r}")
        if spec.scales == "block":
            expect(op, op == "quant.fp8_gemm", "block scales exist only for fp8_gemm")

    return check


def _check_w4_spec(spec: W4A16Spec, op: str = "quant.w4a16_gemm") -> None:
    expect(op, spec.format in W4_FORMATS, f"format must be one of {W4_FORMATS}, got {spec.format!r}")
    expect(
        op,
        spec.group_size in (32, 64, 128) and spec.k % spec.group_size == 0,
        f"group_size must be 32, 64 or 128 and divide K={spec.k}, got {spec.group_size}",
    )
    if spec.format == "affine":
        expect(op, spec.k % 8 == 0, f"K must be a multiple of 8, got {spec.k}")
        expect(op, spec.has_zeros, "the affine format always has its offsets (qzeros)")
        expect(
            op,
            spec.scales_dtype in AFFINE_SCALE_DTYPES,
            f"scales_dtype must be one of {AFFINE_SCALE_DTYPES}, got {spec.scales_dtype}",
        )
    else:
        expect(
            op, spec.n % 8 == 0 and spec.k % 8 == 0, f"N and K must be multiples of 8, got {spec.n}, {spec.k}"
        )
    expect(op, not (spec.act_order and spec.format != "gptq"), "act-order (g_idx) exists only for gptq")
    expect(
        op,
        spec.format == "affine" or spec.scales_dtype == torch.float32,
        f"scales_dtype is the affine format's; {spec.format} scales are in the activations' dtype",
    )


def _check_w8_spec(spec: W8A16Spec, op: str = "quant.w8a16_gemm") -> None:
    expect(
        op,
        spec.group_size in W8_GROUPS and spec.k % spec.group_size == 0,
        f"group_size must be one of {W8_GROUPS} and divide K={spec.k}, got {spec.group_size}",
    )


def _check_gemm(op: str, qdtype_names: tuple[str, ...]):
    def check(spec: GemmSpec, a, b, a_scale, b_scale, out_dtype, bias=None) -> None:
        expect_tensor(op, "a", a, dims=2)
        expect_tensor(op, "b", b, shape=(spec.n, a.shape[1]))
        expect(
            op,
            str(a.dtype).removeprefix("torch.") in qdtype_names and a.dtype == b.dtype,
            f"a and b must both be one of {qdtype_names}, got {a.dtype} and {b.dtype}",
        )
        expect(
            op, out_dtype == spec.out_dtype, f"out_dtype {out_dtype} differs from the bound {spec.out_dtype}"
        )
        if bias is not None:
            expect_tensor(op, "bias", bias, shape=(spec.n,))
        m, k, n = a.shape[0], a.shape[1], spec.n
        a_shape, b_shape = {
            "tensor": ((1,), (1,)),
            "channel": ((m, 1), (n, 1)),
            "block": ((m, -(-k // BLOCK)), (-(-n // BLOCK), -(-k // BLOCK))),
        }[spec.scales]
        expect_tensor(op, "a_scale", a_scale, shape=a_shape, dtype=torch.float32)
        expect_tensor(op, "b_scale", b_scale, shape=b_shape, dtype=torch.float32)

    return check


def _check_w4(
    spec: W4A16Spec, x, qweight, scales, qzeros=None, g_idx=None, bias=None, *, op: str = "quant.w4a16_gemm"
) -> None:
    n, k, g = spec.n, spec.k, spec.group_size
    expect_tensor(op, "x", x, shape=(None, k), dtype=spec.dtype)
    if spec.format == "affine":
        expect_tensor(op, "qweight", qweight, shape=(n, k // 8), dtype=torch.int32)
        expect_tensor(op, "scales", scales, shape=(n, k // g), dtype=spec.scales_dtype)
        expect(op, qzeros is not None, "the affine format needs its offsets (qzeros)")
        expect_tensor(op, "qzeros", qzeros, shape=(n, k // g), dtype=spec.scales_dtype)
        expect(op, g_idx is None, "the affine format has no g_idx")
        return
    want = (k // 8, n) if spec.format == "gptq" else (k, n // 8)
    expect_tensor(op, "qweight", qweight, shape=want, dtype=torch.int32)
    expect_tensor(op, "scales", scales, shape=(None, n) if spec.act_order else (k // g, n))
    expect(op, (qzeros is not None) == spec.has_zeros, "qzeros presence differs from the spec")
    expect(op, (g_idx is not None) == spec.act_order, "g_idx presence differs from the spec")


QUANTIZE_FP8 = OpDef(
    "quant.quantize_fp8",
    quantize_fp8,
    QuantSpec,
    _fake_quantize_fp8,
    lambda p: QuantSpec(preferred_dtype(p), p.fp8_dtype or "float8_e4m3fn"),
    check_spec=_check_quant_spec,
)
QUANTIZE_INT8 = OpDef(
    "quant.quantize_int8",
    quantize_int8,
    QuantSpec,
    _fake_quantize_int8,
    lambda p: QuantSpec(preferred_dtype(p)),
)
FP8_GEMM = OpDef(
    "quant.fp8_gemm",
    fp8_gemm,
    GemmSpec,
    _fake_gemm,
    lambda p: GemmSpec(preferred_dtype(p), "block", p.fp8_dtype or "float8_e4m3fn"),
    check_spec=_check_gemm_spec("quant.fp8_gemm"),
    check_args=_check_gemm("quant.fp8_gemm", FP8_DTYPES),
    weights=("b", "b_scale"),
)
INT8_GEMM = OpDef(
    "quant.int8_gemm",
    int8_gemm,
    GemmSpec,
    _fake_gemm,
    lambda p: GemmSpec(preferred_dtype(p)),
    check_spec=_check_gemm_spec("quant.int8_gemm"),
    check_args=_check_gemm("quant.int8_gemm", ("int8",)),
    weights=("b", "b_scale"),
)


def _check_w8(spec: W8A16Spec, x, qweight, scales, bias=None, *, op: str = "quant.w8a16_gemm") -> None:
    expect_tensor(op, "x", x, shape=(None, spec.k), dtype=spec.dtype)
    expect_tensor(op, "qweight", qweight, shape=(spec.n, spec.k), dtype=torch.int8)
    expect_tensor(op, "scales", scales, shape=(spec.n, spec.k // spec.group_size), dtype=torch.float32)
    if bias is not None:
        expect_tensor(op, "bias", bias, shape=(spec.n,))


W4A16_GEMM = OpDef(
    "quant.w4a16_gemm",
    w4a16_gemm,
    W4A16Spec,
    _fake_w4a16,
    lambda p: W4A16Spec(torch.bfloat16 if "bfloat16" in p.dtypes else torch.float16),
    check_spec=_check_w4_spec,
    check_args=_check_w4,
    weights=("qweight", "scales", "qzeros", "g_idx"),
)
W8A16_GEMM = OpDef(
    "quant.w8a16_gemm",
    w8a16_gemm,
    W8A16Spec,
    _fake_w8a16,
    lambda p: W8A16Spec(preferred_dtype(p)),
    check_spec=_check_w8_spec,
    check_args=_check_w8,
    weights=("qweight", "scales"),
)
