"""The torch reference provider: a clear, vectorised implementation of every op contract, registered
through the same hook as any plugin. It runs on every platform and always ranks last."""

from __future__ import annotations

from anyaccel.hookspecs import hookimpl
from anyaccel.ops.kv_cache import NHD_VIEWABLE
from anyaccel.registry import ANY, Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("reference",)  # kernels named reference.* are this plugin's alone

# op -> "module:function" below anyaccel.providers.reference
TARGETS: dict[str, str] = {
    "attention.prefill": "attention:prefill",  # attention targets are factories, see FACTORY_OPS
    "attention.decode": "attention:decode",
    "attention.write_kv": "attention:write_kv",
    "norm.rms_norm": "norm:rms_norm",
    "norm.add_rms_norm": "norm:add_rms_norm",
    "rope.apply": "rope:apply",
    "activation.silu_and_mul": "activation:silu_and_mul",
    "activation.gelu_and_mul": "activation:gelu_and_mul",
    "linear.gemm": "linear:gemm",
    "moe.topk": "moe:topk",
    "moe.experts": "moe:experts",
    "quant.quantize_fp8": "quant:quantize_fp8",
    "quant.quantize_int8": "quant:quantize_int8",
    "quant.fp8_gemm": "quant:fp8_gemm",
    "quant.int8_gemm": "quant:int8_gemm",
    "quant.w4a16_gemm": "quant:w4a16_gemm",
    "quant.w8a16_gemm": "quant:w8a16_gemm",
    "quant.w4a8_gemm": "a8:w4a8_gemm",
    "quant.w8a8_gemm": "a8:w8a8_gemm",
    "quant.quantize_mx": "mx:quantize_mx",
    "quant.mx_gemm": "mx:mx_gemm",
    "comm.all_reduce": "comm:all_reduce",
    "comm.all_gather": "comm:all_gather",
    "comm.reduce_scatter": "comm:reduce_scatter",
    "comm.all_to_all": "comm:all_to_all",
    "comm.broadcast": "comm:broadcast",
}


# Pure torch with no host reads of tensor data: host graphs may record them (Kernel.capturable).
CAPTURABLE = frozenset(
    {
        "norm.rms_norm",
        "norm.add_rms_norm",
        "rope.apply",
        "activation.silu_and_mul",
        "activation.gelu_and_mul",
        "linear.gemm",
    }
)

# Built per spec (target(spec, platform) returns the kernel): the cache layout is not visible from the call.
FACTORY_OPS = frozenset({"attention.prefill", "attention.decode", "attention.write_kv"})


def _reads_layout(spec, platform) -> str | None:
    if spec.kv_layout in NHD_VIEWABLE:
        return None
    return f"reads KV layouts {', '.join(NHD_VIEWABLE)} only; the cache is {spec.kv_layout}"


def kernel_name(op: str) -> str:
    """reference.<op tail>: reference.rms_norm, reference.decode; rope.apply is reference.rope."""
    tail = op.split(".", 1)[1]
    return "reference." + ("rope" if op == "rope.apply" else tail)


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return [
        Kernel(
            op=op,
            name=kernel_name(op),
            target=f"{__name__}.{target}",
            platforms=frozenset({ANY}),
            verified="oracle",
            factory=op in FACTORY_OPS,
            supports=_reads_layout if op in FACTORY_OPS else None,
            capturable=op in CAPTURABLE,
        )
        for op, target in TARGETS.items()
    ]
