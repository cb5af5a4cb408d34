"""The portable Triton provider: one kernel per op for every platform whose descriptor says Triton runs there
(CUDA, ROCm, XPU, MUSA). Registration is data only: triton is imported when one of these kernels is
selected, never by this module. Every target is a factory (spec, platform) -> kernel, so constexprs and
tuning tables are resolved at bind time. Off their platforms the kernels run under the Triton
interpreter (TRITON_INTERPRET=1, CPU tensors), which is how `anyaccel check --provider triton` verifies them.
"""

from __future__ import annotations

from typing import Any

import torch

from anyaccel.hookspecs import hookimpl
from anyaccel.ops.moe import unserved_features
from anyaccel.platforms.base import Platform
from anyaccel.registry import Kernel

from .launch import interpreting

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("triton",)  # kernels named triton.* are this plugin's alone

FLOATS = frozenset({torch.float32, torch.float16, torch.bfloat16})
HALVES = frozenset({torch.float16, torch.bfloat16})


def interpreter_reason() -> str | None:
    """Triton kernels execute off-GPU only in the interpreter (TRITON_INTERPRET=1), for `anyaccel check`."""
    if not interpreting():
        return "set TRITON_INTERPRET=1 to run Triton kernels on the CPU interpreter"
    return None


def _fp8_on_device(fp8_dtype: Any, platform: Platform) -> str | None:
    """Triton converts to and multiplies fp8 only in the variant the hardware computes in (the platform
    descriptor's fp8_dtype); the interpreter emulates both."""
    name = str(fp8_dtype).removeprefix("torch.")
    if interpreting() or name == platform.fp8_dtype:
        return None
    return f"{name} is not computed by this device (its fp8 type is {platform.fp8_dtype or 'none'})"


def _attention_supports(spec: Any, platform: Platform) -> str | None:
    return _fp8_on_device(spec.cache_dtype, platform) if spec.fp8_kv else None


def _moe_supports(spec: Any, platform: Platform) -> str | None:
    """fp8 experts need a device that computes in some fp8 type (the weights carry which one); mxfp8 and
    nvfp4 convert e4m3 in registers (elements, block scales), which the device must compute in."""
    if spec.quant.startswith("fp8") and not interpreting() and platform.fp8_dtype is None:
        return "fp8 experts need a device with fp8 support"
    if spec.quant in ("mxfp8", "nvfp4"):
        return _fp8_on_device("float8_e4m3fn", platform)
    return unserved_features(spec, ("silu", "gelu", "swiglu_oai"), bias=True)


def _fp8_spec_supports(spec: Any, platform: Platform) -> str | None:
    """quantize_fp8 and fp8_gemm name their fp8 type in the spec."""
    return _fp8_on_device(spec.fp8_dtype, platform)


def _mx_supports(spec: Any, platform: Platform) -> str | None:
    """The mx kernels convert e4m3 (mxfp8 elements, nvfp4 scales) in registers: a device that computes
    e4m3fn, or the interpreter; mxfp4 with unquantized activations needs no fp8 at all."""
    formats = {
        getattr(spec, "format", None),
        getattr(spec, "weight_format", None),
        getattr(spec, "act_format", None),
    }
    if formats & {"mxfp8", "nvfp4"}:
        return _fp8_on_device("float8_e4m3fn", platform)
    return None


# (op, kernel name, "module:factory", dtypes, supports, kv_layout)
_TABLE: tuple[tuple[str, str, str, frozenset[torch.dtype], Any, str | None], ...] = (
    ("norm.rms_norm", "rms_norm", "norm:rms_norm", FLOATS, None, None),
    ("norm.add_rms_norm", "add_rms_norm", "norm:add_rms_norm", FLOATS, None, None),
    ("rope.apply", "rope", "rope:rope", FLOATS, None, None),
    ("activation.silu_and_mul", "silu_and_mul", "activation:silu_and_mul", FLOATS, None, None),
    ("activation.gelu_and_mul", "gelu_and_mul", "activation:gelu_and_mul", FLOATS, None, None),
    ("moe.topk", "topk", "moe_topk:topk", FLOATS, None, None),
    ("moe.experts", "fused_moe", "moe_experts:fused_moe", FLOATS, _moe_supports, None),
    ("quant.quantize_fp8", "quantize_fp8", "quantize:quantize_fp8", FLOATS, _fp8_spec_supports, None),
    ("quant.quantize_int8", "quantize_int8", "quantize:quantize_int8", FLOATS, None, None),
    ("quant.fp8_gemm", "fp8_gemm", "scaled_gemm:fp8_gemm", FLOATS, _fp8_spec_supports, None),
    ("quant.int8_gemm", "int8_gemm", "scaled_gemm:int8_gemm", FLOATS, None, None),
    ("quant.w4a16_gemm", "w4a16_gemm", "w4a16:w4a16_gemm", HALVES, None, None),
    ("quant.w8a16_gemm", "w8a16_gemm", "w8a16:w8a16_gemm", FLOATS, None, None),
    ("quant.w4a8_gemm", "w4a8_gemm", "a8:w4a8_gemm", HALVES, None, None),
    ("quant.w8a8_gemm", "w8a8_gemm", "a8:w8a8_gemm", FLOATS, None, None),
    ("quant.quantize_mx", "quantize_mx", "mx_quantize:quantize_mx", FLOATS, _mx_supports, None),
    ("quant.mx_gemm", "mx_gemm", "mx_gemm:mx_gemm", FLOATS, _mx_supports, None),
    *(
        (op, f"{name}{suffix}", target, FLOATS, _attention_supports, kv_layout)
        for kv_layout, suffix in (("NHD", ""), ("HND", "_hnd"))
        for op, name, target in (
            ("attention.write_kv", "write_kv", "kv_write:write_kv"),
            ("attention.decode", "paged_decode", "decode:paged_decode"),
            ("attention.prefill", "varlen_prefill", "prefill:varlen_prefill"),
        )
    ),
)


def _record(
    op: str, name: str, target: str, dtypes: frozenset[torch.dtype], supports: Any, kv_layout: str | None
) -> Kernel:
    return Kernel(
        op=op,
        name=f"triton.{name}",
        target=f"{__name__}.{target}",
        factory=True,
        needs_triton=True,
        requires=("triton",),
        dtypes=dtypes,
        supports=supports,
        kv_layout=kv_layout,
        off_platform=interpreter_reason,
        verified="interpreter",
    )


KERNELS: list[Kernel] = [_record(*row) for row in _TABLE]


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return list(KERNELS)
