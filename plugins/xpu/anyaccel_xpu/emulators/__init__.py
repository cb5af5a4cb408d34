"""Plain-torch stand-ins for the Intel APIs the plugin's kernels call, installed only on an emulated xpu
platform (ANYACCEL_EMULATE=xpu:<arch>).

    vllm_xpu_kernels        flash_attn_interface.flash_attn_varlen_func, fused_moe_interface.XpuFusedMoe
    anyaccel_xpu.vendor_ops the torch.ops namespaces vllm-xpu-kernels registers (_C, _C_cache_ops, _moe_C,
                            _xpu_C): the ops the kernels call, with their schemas' arguments
    intel_extension_for_pytorch  ipex.llm.modules.PagedAttention, declaring the version it stands for
                            (2.8.10+xpu, IPEX's last release), so that the torch-version gate is exercised

Each function keeps the library's signature, computes its documented result in float32 on the host and
raises the library's kind of error for what it rejects: dtypes, strides, page sizes, head dims, scale
shapes, and the architectures it has no device code for (read from the emulated capability). They prove
the plugin's glue (argument mapping, layouts, weight preparation, planning, gating), never the vendor
kernels' numerics or speed.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator

_VXK = f"{__name__}.vllm_xpu_kernels"

EMULATORS = (
    Emulator(
        modules={
            "vllm_xpu_kernels": _VXK,
            "vllm_xpu_kernels.flash_attn_interface": f"{_VXK}.flash_attn_interface",
            "vllm_xpu_kernels.fused_moe_interface": f"{_VXK}.fused_moe_interface",
            # the torch.ops entry points do not exist on a host without the extension: the kernels reach
            # them through anyaccel_xpu.vendor_ops, which this emulates
            "anyaccel_xpu.vendor_ops": f"{__name__}.vendor_ops",
        },
        platforms=frozenset({"xpu"}),
        provides=("vllm-xpu-kernels",),
    ),
    Emulator(
        modules={"intel_extension_for_pytorch": f"{__name__}.ipex"},
        platforms=frozenset({"xpu"}),
        provides=("intel-extension-for-pytorch",),
    ),
)
