"""Microscaling (block-scaled floating-point) formats: mxfp8, mxfp4 and nvfp4, defined once for every op,
kernel and checkpoint scheme.

A tensor [..., K] in one of these formats is a pair (elements, scales), plus one float32 global scale for
nvfp4; real = element * scale(block) (* global). K is split into blocks of `block` consecutive elements
along the last dim, each with one scale:

  format  elements                              block  scales                           global
  mxfp8   float8_e4m3fn [..., K]                32     uint8 e8m0 [..., K/32]           -
  mxfp4   uint8 [..., K/2], two e2m1 per byte   32     uint8 e8m0 [..., K/32]           -
  nvfp4   uint8 [..., K/2], two e2m1 per byte   16     float8_e4m3fn [..., K/16]        float32 [1]

- e2m1 (OCP MX v1.0, section 5.3.3): sign bit 3, 2 exponent bits (bias 1), 1 mantissa bit; the 8
  magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6 (codes 0..7), code | 8 is the negative. No inf or NaN.
- Packing: element 2i in the LOW nibble of byte i, element 2i+1 in the high nibble (the order of the OCP
  spec's packed fp4, GPT-OSS's `*_blocks` tensors, NVIDIA ModelOpt and compressed-tensors).
- e8m0 (OCP MX v1.0, section 5.4.1): an unsigned biased exponent, value 2^(s - 127); 255 is NaN.
- nvfp4 (NVIDIA's NVFP4, as ModelOpt writes it: `weight_scale` = the e4m3 block scales, `weight_scale_2` =
  the global): real = e2m1 * e4m3 block scale * global.

Quantization (what the reference does and every quantize kernel must match):
- mx formats: the block's shared exponent is OCP's floor(log2(amax)) - emax_elem (OCP MX v1.0, section
  6.3, "Conversion from vector of scalar floats"), emax_elem = 8 for e4m3 (max 448 = 1.75 * 2^8) and 2 for
  e2m1 (max 6 = 1.5 * 2^2), clamped to e8m0's [-127, 127]; an all-zero block takes 2^-127 (byte 0).
  Elements are x / 2^exp rounded to nearest, ties to even, onto the element grid, saturating at +-max
  (OCP leaves overflow handling to the implementation; the floor rule lets x / 2^exp reach just under
  2 * 2^emax_elem, so saturation is needed).
- nvfp4: block scale = e4m3(amax / (6 * global)) (round to nearest even, saturating at 448), elements
  e2m1(x / (block scale * global)) (nearest even, saturating at 6); a block whose scale is 0 is all zeros.
  The global is an input (static, like ModelOpt's `input_scale` / `weight_scale_2` = amax / (6 * 448)).

Vendor GEMMs read the scales in a swizzled layout (see anyaccel.ops.mx_swizzle); kernels make it once in
their `prepare`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .base import expect


@dataclass(frozen=True)
class MXFormat:
    """name: "mxfp8" | "mxfp4" | "nvfp4"; block: elements per scale; packed: two e2m1 elements per byte;
    scale_dtype: uint8 (e8m0) or float8_e4m3fn; has_global: a float32 global scale [1] multiplies all;
    elem_max / emax: the element type's largest finite value and the exponent of its binade."""

    name: str
    block: int
    packed: bool
    scale_dtype: torch.dtype
    has_global: bool
    elem_max: float
    emax: int

    @property
    def element_dtype(self) -> torch.dtype:
        return torch.uint8 if self.packed else torch.float8_e4m3fn

    def element_cols(self, k: int) -> int:
        """Columns of the element tensor for K values."""
        return k // 2 if self.packed else k

    def scale_cols(self, k: int) -> int:
        return k // self.block


MXFP8 = MXFormat("mxfp8", 32, False, torch.uint8, False, 448.0, 8)
MXFP4 = MXFormat("mxfp4", 32, True, torch.uint8, False, 6.0, 2)
NVFP4 = MXFormat("nvfp4", 16, True, torch.float8_e4m3fn, True, 6.0, 2)
FORMATS: dict[str, MXFormat] = {f.name: f for f in (MXFP8, MXFP4, NVFP4)}
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
E8M0_BIAS = 127
E4M3_MAX = 448.0


def get_format(op: str, name: str) -> MXFormat:
    """The format called `name`, or a ContractError naming `op` and the formats that exist."""
    expect(op, name in FORMATS, f"format must be one of {tuple(FORMATS)}, got {name!r}")
    return FORMATS[name]


def infer_format(elements: torch.Tensor, scales: torch.Tensor) -> MXFormat:
    """The format of an (elements, scales) pair, told by their dtypes: e4m3 scales are nvfp4's, e8m0 scales
    with e4m3 elements mxfp8's, with packed uint8 elements mxfp4's."""
    if scales.dtype == torch.float8_e4m3fn:
        return NVFP4
    return MXFP8 if elements.dtype == torch.float8_e4m3fn else MXFP4


def check_k(op: str, fmt: MXFormat, k: int) -> None:
    expect(op, k > 0 and k % fmt.block == 0, f"{fmt.name} needs K a multiple of {fmt.block}, got K={k}")


def e2m1_table(device: torch.device | str | None = None) -> torch.Tensor:
    """float32 [16]: the value of each e2m1 code (codes 8..15 are the negatives of 0..7)."""
    pos = torch.tensor(E2M1_VALUES, dtype=torch.float32, device=device)
    return torch.cat([pos, -pos])


def unpack_e2m1(packed: torch.Tensor) -> torch.Tensor:
    """uint8 [..., K/2] -> codes uint8 [..., K]: the low nibble of byte i is element 2i."""
    low, high = packed & 0xF, packed >> 4
    return torch.stack([low, high], dim=-1).flatten(-2)


def pack_e2m1(codes: torch.Tensor) -> torch.Tensor:
    """codes (0..15) [..., K] with K even -> uint8 [..., K/2], element 2i in the low nibble."""
    pairs = codes.to(torch.uint8).unflatten(-1, (-1, 2))
    return pairs[..., 0] | (pairs[..., 1] << 4)


def e2m1_decode(packed: torch.Tensor) -> torch.Tensor:
    """Packed e2m1 uint8 [..., K/2] -> float32 [..., K] (a 16-entry table lookup)."""
    return e2m1_table(packed.device)[unpack_e2m1(packed).long()]


# Rounding onto e2m1: the midpoints between consecutive magnitudes. A tie goes to the even code, so the
# magnitude must pass midpoint i strictly when code i is even and may equal it when code i + 1 is even.
_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)


def e2m1_encode(x: torch.Tensor) -> torch.Tensor:
    """float x (already divided by its scale) -> e2m1 codes uint8: nearest, ties to even, saturating at 6."""
    mag = x.float().abs()
    code = torch.zeros(x.shape, dtype=torch.uint8, device=x.device)
    for i, mid in enumerate(_MIDPOINTS):
        code += (mag > mid if i % 2 == 0 else mag >= mid).to(torch.uint8)
    return code | (torch.signbit(x).to(torch.uint8) << 3)


def e8m0_decode(scales: torch.Tensor) -> torch.Tensor:
    """uint8 e8m0 -> float32 2^(s - 127); 255 is NaN."""
    value = torch.exp2(scales.float() - E8M0_BIAS)
    return torch.where(scales == 255, torch.full_like(value, float("nan")), value)


def mx_exponent(amax: torch.Tensor, fmt: MXFormat) -> torch.Tensor:
    """OCP's shared exponent floor(log2(amax)) - emax_elem (int32), clamped to e8m0's [-127, 127]; an
    all-zero block gets -127. frexp makes floor(log2) exact (amax = m * 2^e with m in [0.5, 1))."""
    _, e = torch.frexp(amax.float())
    exp = torch.where(amax > 0, e.to(torch.int32) - 1 - fmt.emax, -E8M0_BIAS)
    return exp.clamp(-E8M0_BIAS, E8M0_BIAS)


def encode_elements(fmt: MXFormat, scaled: torch.Tensor) -> torch.Tensor:
    """Scaled float32 values [..., K] -> the format's element tensor (saturating, nearest even)."""
    if fmt.packed:
        return pack_e2m1(e2m1_encode(scaled))
    return scaled.clamp(-fmt.elem_max, fmt.elem_max).to(torch.float8_e4m3fn)


def decode_elements(fmt: MXFormat, q: torch.Tensor) -> torch.Tensor:
    return e2m1_decode(q) if fmt.packed else q.float()


def decode_scales(fmt: MXFormat, scales: torch.Tensor) -> torch.Tensor:
    return scales.float() if fmt.scale_dtype == torch.float8_e4m3fn else e8m0_decode(scales)


def quantize(
    fmt: MXFormat, x: torch.Tensor, global_scale: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., K] (K a multiple of fmt.block) -> (elements, scales) by the rules of the module docstring.
    nvfp4 needs global_scale (float32 [1]); the mx formats take none."""
    blocks = x.float().unflatten(-1, (-1, fmt.block))
    amax = blocks.abs().amax(dim=-1, keepdim=True)
    if fmt.has_global:
        if global_scale is None:
            raise ValueError("nvfp4 quantization needs its float32 global scale")
        g = global_scale.float().reshape(())
        scales = (amax / (6.0 * g)).clamp(max=E4M3_MAX).to(torch.float8_e4m3fn)
        full = scales.float() * g
        scaled = torch.where(full > 0, blocks / full, torch.zeros_like(blocks))
    else:
        exp = mx_exponent(amax, fmt)
        scales = (exp + E8M0_BIAS).to(torch.uint8)
        scaled = torch.ldexp(blocks, (-exp).float())
    return encode_elements(fmt, scaled.flatten(-2)), scales.squeeze(-1)


def dequantize(
    fmt: MXFormat,
    q: torch.Tensor,
    scales: torch.Tensor,
    global_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """(elements [..., K or K/2], scales [..., K/block]) -> float32 [..., K]."""
    values = decode_elements(fmt, q).unflatten(-1, (-1, fmt.block))
    real = (values * decode_scales(fmt, scales).unsqueeze(-1)).flatten(-2)
    return real * global_scale.float().reshape(()) if global_scale is not None else real
