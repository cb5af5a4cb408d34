"""Huawei Ascend NPU through torch_npu (device type "npu", dispatch key PrivateUse1, HCCL).

Capability is the SoC family: ascend310p < ascend910 < ascend910b (Atlas A2) < ascend910_93 (Atlas A3).
Only the SoC name is read; torch_npu is imported only when its spec is found.

Hardware features (FEATURES below):
    bf16    bfloat16 compute (Atlas A2 = ascend910b, Atlas A3 = ascend910_93; not the 310P or the 910)
Not listed, for want of a public per-SoC source: int8 matrix support, and fp8 / MX formats (vllm-ascend uses
them only on the A5 generation, which this table does not know).
"""

from __future__ import annotations

import importlib
import importlib.util

from .base import Capabilities, Platform, PlatformFamily, features_of, ranked_table

EXAMPLES = ("ascend910b", "ascend910_93", "ascend310p")
SOCS = {"ascend310p": 10, "ascend910": 20, "ascend910b": 30, "ascend910_93": 40}
parse_capability = ranked_table("npu", SOCS, EXAMPLES)

# CANN's operator docs (hicann/ops-nn, ops-transformer: aclnnExpand, aclnnRoll, aclnnGroupedMatmul...) list
# BFLOAT16 among the data types of the Atlas A2 and A3 products and leave it out for the Atlas inference
# series (310P) and the Atlas training series (910).
FEATURES: dict[str, Capabilities] = {
    "bf16": frozenset({parse_capability("ascend910b"), parse_capability("ascend910_93")}),
}


def soc_family(device_name: str) -> str:
    """'Ascend910B2' -> ascend910b, 'Ascend910_9382' -> ascend910_93, 'Ascend310P3' -> ascend310p."""
    n = device_name.strip().lower()
    for prefix in ("ascend910_93", "ascend910b", "ascend310p", "ascend910"):
        if n.startswith(prefix):
            return prefix
    raise ValueError(f"unknown Ascend SoC {device_name!r}; expected one of {', '.join(SOCS)}")


def describe(cap, *, device_name: str, device_count: int = 1, simulated: bool = False) -> Platform:
    features = features_of(FEATURES, cap)
    return Platform(
        name="npu",
        vendor="huawei",
        device_type="npu",
        device_name=device_name,
        device_count=device_count,
        capability=cap,
        dispatch_key="PrivateUse1",
        dist_backend="hccl",
        fp8_dtype=None,  # 910B/910_93 have no fp8 matrix units; int8 (W8A8) is the quantized path
        dtypes=("float32", "float16") + (("bfloat16",) if "bf16" in features else ()),
        triton=False,
        features=features,
        simulated=simulated,
    )


def probe() -> Platform | None:
    if importlib.util.find_spec("torch_npu") is None:
        return None
    importlib.import_module("torch_npu")  # registers the "npu" device with torch
    import torch

    npu = torch.npu  # type: ignore[attr-defined]
    if not npu.is_available() or npu.device_count() == 0:
        return None
    name = npu.get_device_name(0)
    return describe(parse_capability(soc_family(name)), device_name=name, device_count=npu.device_count())


FAMILY = PlatformFamily("npu", probe, parse_capability, describe, EXAMPLES)
