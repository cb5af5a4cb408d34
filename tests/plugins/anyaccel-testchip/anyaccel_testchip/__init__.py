"""anyaccel-testchip: a plugin for an emulated accelerator family, used by anyaccel's own tests.

The "testchip" family has capabilities tc_1 < tc_2 < tc_3. Its device computes in host memory (torch device
type "cpu"), so its kernels really run. It is detected only when ANYACCEL_PLATFORM=testchip (the capability
then comes from ANYACCEL_TESTCHIP_CAPABILITY, default tc_2) or simulated with ANYACCEL_SIMULATE=testchip:tc_3.

Kernels:
    testchip.rms_norm       norm.rms_norm on tc_1..tc_3: wins over the torch reference
    testchip.silu_generic   activation.silu_and_mul on tc_1..tc_3
    testchip.silu_tc2       activation.silu_and_mul on tc_2..tc_3, same priority: the narrower range wins on
                            tc_2 and tc_3 although its name sorts after silu_generic's
    testchip.experts_up_gate moe.experts (unquantized) reading w13 as [up; gate], as FlashInfer's MoE does:
                            its prepare hook swaps the halves once at load time
    testchip.decode_bs32    attention.decode reading only 32-token cache blocks, as torch_npu's paged
                            attention reads only 128 (the reference's decode, behind that declaration)
    testchip.rt_rms_norm    norm.rms_norm through the vendor library `testchip_runtime` (float32/bfloat16,
                            hidden % 8 == 0): needs the distribution testchip-runtime, which exists only as
                            this plugin's emulator (emulator.py), installed by ANYACCEL_EMULATE=testchip:tc_2

It also registers a KV-cache layout, "TC_HND", for its (future) attention kernels.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
from anyaccel.ops.kv_cache import KVLayout
from anyaccel.ops.moe import unserved_features
from anyaccel.platforms.base import CapabilityRange, Platform, PlatformFamily, ranked_table
from anyaccel.registry import Kernel

ANYACCEL_PLUGIN_API = ">=1,<2"
ANYACCEL_PROVIDERS = ("testchip",)

EXAMPLES = ("tc_1", "tc_2", "tc_3")
parse_capability = ranked_table("testchip", {name: rank for rank, name in enumerate(EXAMPLES, 1)}, EXAMPLES)


def describe(cap, *, device_name: str, device_count: int = 1, simulated: bool = False) -> Platform:
    return Platform(
        name="testchip",
        vendor="anyaccel-tests",
        device_type="cpu",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="CPU",
        dist_backend="gloo",
        fp8_dtype=None,
        dtypes=("float32", "bfloat16", "float16"),
        triton=False,
        simulated=simulated,
    )


def probe() -> Platform | None:
    if os.environ.get("ANYACCEL_PLATFORM", "").strip().lower() != "testchip":
        return None
    cap = parse_capability(os.environ.get("ANYACCEL_TESTCHIP_CAPABILITY", "tc_2"))
    return describe(cap, device_name=f"testchip {cap}")


FAMILY = PlatformFamily("testchip", probe, parse_capability, describe, EXAMPLES)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    return (xf * (xf.square().mean(-1, keepdim=True) + eps).rsqrt()).to(x.dtype) * weight


def silu_generic(x: torch.Tensor) -> torch.Tensor:
    gate, up = x.float().chunk(2, dim=-1)
    return (F.silu(gate) * up).to(x.dtype)


def silu_tc2(x: torch.Tensor) -> torch.Tensor:
    gate, up = x.float().chunk(2, dim=-1)
    return (gate * torch.sigmoid(gate) * up).to(x.dtype)


def prepare_up_gate(spec, weights: dict) -> dict:
    """Load-time conversion from the contract's [gate; up] w13 to this kernel's [up; gate]."""
    gate, up = weights["w13"].chunk(2, dim=1)
    return weights | {"w13": torch.cat((up, gate), dim=1).contiguous()}


def experts_up_gate(
    hidden,
    w13,
    w2,
    topk_weights,
    topk_ids,
    activation="silu",
    expert_map=None,
    w13_scale=None,
    w2_scale=None,
    w13_zeros=None,
    w2_zeros=None,
    w13_bias=None,
    w2_bias=None,
    w13_global_scale=None,
    w2_global_scale=None,
):
    act = F.silu if activation == "silu" else F.gelu
    ids = topk_ids.long() if expert_map is None else expert_map[topk_ids.long()].long()
    out = torch.zeros(hidden.shape, dtype=torch.float32)
    for e in range(w13.shape[0]):
        tokens, slot = (ids == e).nonzero(as_tuple=True)
        if tokens.numel():
            up, gate = (hidden[tokens].float() @ w13[e].float().T).chunk(2, dim=-1)
            y = (act(gate) * up) @ w2[e].float().T
            out.index_add_(0, tokens, y * topk_weights[tokens, slot, None])
    return out.to(hidden.dtype)


def _range(low: str, high: str) -> CapabilityRange:
    return CapabilityRange(parse_capability(low), parse_capability(high))


@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    return [FAMILY]


def _runtime_supports(spec, platform) -> str | None:
    """testchip_runtime.fused_rms_norm's documented limits (see emulator.py)."""
    if spec.hidden_size % 8 or spec.hidden_size > 8192:
        return f"hidden_size {spec.hidden_size}: fused_rms_norm needs a multiple of 8 <= 8192"
    return None


@hookimpl
def anyaccel_emulators() -> list[Emulator]:
    return [
        Emulator(
            modules={"testchip_runtime": f"{__name__}.emulator"},
            platforms=frozenset({"testchip"}),
            provides=("testchip-runtime",),
        )
    ]


@hookimpl
def anyaccel_kv_layouts() -> list[KVLayout]:
    hnd = lambda n, b, h, d: (n, h, b, d)  # noqa: E731
    return [KVLayout("TC_HND", hnd, hnd)]


@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    on_chip = frozenset({"testchip"})
    return [
        Kernel(
            "norm.rms_norm",
            "testchip.rt_rms_norm",
            f"{__name__}.runtime_kernels:rms_norm",
            on_chip,
            requires=("testchip-runtime",),
            dtypes=frozenset({torch.float32, torch.bfloat16}),
            supports=_runtime_supports,
            priority=20,
            verified="emulator",
        ),
        Kernel(
            "norm.rms_norm",
            "testchip.rms_norm",
            f"{__name__}:rms_norm",
            on_chip,
            _range("tc_1", "tc_3"),
            priority=10,
        ),
        Kernel(
            "activation.silu_and_mul",
            "testchip.silu_generic",
            f"{__name__}:silu_generic",
            on_chip,
            _range("tc_1", "tc_3"),
            priority=5,
        ),
        Kernel(
            "moe.experts",
            "testchip.experts_up_gate",
            f"{__name__}:experts_up_gate",
            on_chip,
            supports=lambda spec, platform: (
                unserved_features(spec) if spec.quant == "none" else "unquantized experts only"
            ),
            prepare=f"{__name__}:prepare_up_gate",
            priority=10,
        ),
        Kernel(
            "attention.decode",
            "testchip.decode_bs32",
            "anyaccel.providers.reference.attention:decode",
            on_chip,
            factory=True,
            kv_layout="NHD",
            kv_block_sizes=frozenset({32}),
            priority=10,
        ),
        Kernel(
            "activation.silu_and_mul",
            "testchip.silu_tc2",
            f"{__name__}:silu_tc2",
            on_chip,
            _range("tc_2", "tc_3"),
            priority=5,
        ),
    ]
