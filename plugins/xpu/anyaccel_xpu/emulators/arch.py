"""What the emulated device is, and the errors the Intel stacks raise for an architecture they cannot run."""

from __future__ import annotations

from anyaccel_xpu import gates


def capability():
    from anyaccel import context

    return context.get().platform.capability


def require_device_code(what: str) -> None:
    """vllm-xpu-kernels ships device code for pvc and bmg only (AOT); elsewhere SYCL finds no kernel."""
    cap = capability()
    if cap not in gates.PREBUILT:
        raise RuntimeError(
            f"{what}: no device image for {cap.name} in this vllm-xpu-kernels build (AOT targets pvc, bmg)"
        )


def require_xe2_xe3() -> None:
    """attn_interface.cpp / the grouped GEMM: the cutlass kernels run on Xe2 and Xe3 only."""
    if capability() not in gates.XE2_XE3:
        raise RuntimeError("Only XE2/XE3 cutlass kernel is supported currently.")


def check(ok: bool, message: str) -> None:
    """TORCH_CHECK in the C++ extensions surfaces as a RuntimeError."""
    if not ok:
        raise RuntimeError(message)
