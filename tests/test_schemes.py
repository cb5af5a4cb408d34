"""Quantization schemes: each linear/MoE scheme against the float computation on dequantized weights."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import anyaccel
from anyaccel.models.layers.linear import RowParallelLinear
from anyaccel.models.parallel import Parallel
from anyaccel.ops.base import ContractError
from anyaccel.ops.quant import W4A16_GEMM, W4A16Spec
from anyaccel.providers.reference import moe as ref_moe
from anyaccel.schemes import linear_scheme, moe_scheme, packing

G = 64  # w4 group size used below


def rms_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.double() - want.double()).pow(2).mean().sqrt() / want.double().pow(2).mean().sqrt())


def fp8_tiles(w: torch.Tensor, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fp8 weight, scale per rows x cols tile) of a float weight whose sizes are tile multiples."""
    n, k = w.shape
    tiles = w.reshape(n // rows, rows, k // cols, cols)
    scale = tiles.abs().amax(dim=(1, 3)) / 448.0
    q = (tiles / scale[:, None, :, None]).reshape(n, k).to(torch.float8_e4m3fn)
    return q, scale


def dequant_tiles(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    rows, cols = q.shape[0] // scale.shape[0], q.shape[1] // scale.shape[1]
    return q.float() * scale.repeat_interleave(rows, 0).repeat_interleave(cols, 1)


def build(config, sizes, k, dtype=torch.float32, platform=None):
    layer = torch.nn.Module()
    scheme = linear_scheme(config, platform)
    scheme.create_weights(layer, k, sizes, dtype)
    return scheme, layer


def test_unquantized_linear():
    scheme, layer = build(None, [48], 32)
    layer.weight.data.normal_()
    x = torch.randn(2, 3, 32)
    want = x @ layer.weight.T
    scheme.process_weights_after_loading(layer)  # the weight may now be in the selected kernel's layout
    torch.testing.assert_close(scheme.apply(layer, x), want)


@pytest.mark.parametrize("fnuz", [False, True])
def test_fp8_block_linear(fnuz):
    platform = anyaccel.get_platform()
    if fnuz:
        platform = platform.replace(fp8_dtype="float8_e4m3fnuz")
    scheme, layer = build(
        {"quant_method": "fp8", "weight_block_size": [128, 128]}, [256, 128], 256, torch.bfloat16, platform
    )
    w = torch.randn(384, 256) / 16
    layer.weight.data, layer.weight_scale_inv.data = fp8_tiles(w, 128, 128)
    want_w = dequant_tiles(layer.weight.data, layer.weight_scale_inv.data)
    scheme.process_weights_after_loading(layer)
    assert layer.weight.dtype == (torch.float8_e4m3fnuz if fnuz else torch.float8_e4m3fn)
    x = torch.randn(5, 256).to(torch.bfloat16)
    bias = torch.randn(384).to(torch.bfloat16)
    got = scheme.apply(layer, x, bias)
    assert got.dtype == torch.bfloat16 and got.shape == (5, 384)
    assert rms_error(got, x.float() @ want_w.T + bias.float()) < 0.06  # per-token-group fp8 activations


@pytest.mark.parametrize("activation_scheme", ["dynamic", "static"])
def test_fp8_per_tensor_linear_with_merged_shards(activation_scheme):
    scheme, layer = build({"quant_method": "fp8", "activation_scheme": activation_scheme}, [64, 32], 96)
    shards = [torch.randn(64, 96), torch.randn(32, 96) * 8]  # very different shard scales
    qs = [fp8_tiles(s, s.shape[0], 96) for s in shards]
    layer.weight.data = torch.cat([q for q, _ in qs])
    layer.weight_scale.data = torch.cat([s.flatten() for _, s in qs])
    want_w = torch.cat([dequant_tiles(q, s) for q, s in qs])
    x = torch.randn(7, 96)
    if activation_scheme == "static":
        layer.input_scale.data = torch.tensor([x.abs().max() / 448.0, 0.0])
    scheme.process_weights_after_loading(layer)
    assert rms_error(scheme.apply(layer, x), x @ want_w.T) < 0.06


def test_fp8_needs_a_platform_with_fp8():
    platform = anyaccel.get_platform().replace(fp8_dtype=None)
    with pytest.raises(ValueError, match="has no fp8 dtype"):
        linear_scheme({"quant_method": "fp8"}, platform)


def test_int8_linear():
    scheme, layer = build({"quant_method": "w8a8_int8"}, [40], 64)
    w = torch.randn(40, 64)
    scale = w.abs().amax(dim=1, keepdim=True) / 127
    layer.weight.data, layer.weight_scale.data = torch.round(w / scale).to(torch.int8), scale
    scheme.process_weights_after_loading(layer)
    x = torch.randn(9, 64)
    assert rms_error(scheme.apply(layer, x), x @ (layer.weight.float() * scale).T) < 0.01


def w4_weights(n: int, k: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(0, 16, (n, k), generator=g, dtype=torch.int32)
    zeros = torch.randint(1, 16, (k // G, n), generator=g, dtype=torch.int32)
    scales = (torch.rand(k // G, n, generator=g) / 32).to(torch.float16)
    return q, zeros, scales


@pytest.mark.parametrize("fmt, act_order", [("gptq", False), ("gptq", True), ("awq", False)])
def test_w4a16_linear(fmt, act_order):
    n, k = 64, 256
    config = {"quant_method": fmt, "group_size": G, "desc_act": act_order}
    scheme, layer = build(config, [n], k, torch.float16)
    q, zeros, scales = w4_weights(n, k)
    g_idx = torch.randperm(k) // G if act_order else torch.arange(k) // G
    pack = packing.gptq_pack if fmt == "gptq" else packing.awq_pack
    layer.qweight.data, layer.qzeros.data = pack(q, zeros)
    layer.scales.data = scales
    if fmt == "gptq":
        layer.g_idx.data = g_idx.to(torch.int32)
    scheme.process_weights_after_loading(layer)
    assert hasattr(layer, "g_idx") == act_order  # the plain map is dropped
    want_w = (q - zeros[g_idx].T).float() * scales[g_idx].T.float()
    x = torch.randn(3, k).to(torch.float16)
    torch.testing.assert_close(scheme.apply(layer, x).float(), x.float() @ want_w.T, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_row_parallel_shards_sum_to_the_whole_layer(act_order):
    """Two ranks of a row-parallel GPTQ layer, loaded from the whole checkpoint tensors: with act-order each
    keeps every group's scales and zeros (its g_idx names any of them); without, its slice of the groups
    (its g_idx, the plain map from a later group, is dropped)."""
    n, k = 64, 256
    q, zeros, scales = w4_weights(n, k, seed=3)
    order = torch.randperm(k, generator=torch.Generator().manual_seed(4)) if act_order else torch.arange(k)
    g_idx = order // G
    qweight, qzeros = packing.gptq_pack(q, zeros)
    checkpoint = {"layer.qweight": qweight, "layer.qzeros": qzeros, "layer.scales": scales}
    checkpoint["layer.g_idx"] = g_idx.to(torch.int32)
    config = {"quant_method": "gptq", "group_size": G, "desc_act": act_order}
    x = torch.randn(3, k).to(torch.float16)
    partial = []
    for rank in range(2):
        layer = RowParallelLinear(k, n, Parallel(rank, 2), dtype=torch.float16, reduce=False, quant=config)
        for slot in layer.weight_slots("layer"):
            assert tuple(checkpoint[slot.name].shape) == slot.shape, slot.name
            slot.load(checkpoint[slot.name])
        layer.process_weights_after_loading()
        assert layer.scheme.act_order == act_order
        partial.append(layer(x[:, rank * k // 2 : (rank + 1) * k // 2]).float())
    want_w = (q - zeros[g_idx].T).float() * scales[g_idx].T.float()
    torch.testing.assert_close(sum(partial), x.float() @ want_w.T, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("stored", [torch.float32, torch.float16, torch.bfloat16])
def test_w4_affine_linear_reads_its_scales_in_the_width_stored(stored):
    n, k = 40, 128
    name = str(stored).removeprefix("torch.")
    scheme, layer = build({"quant_method": "w4_affine", "group_size": 32, "scales_dtype": name}, [n], k)
    assert layer.scales.dtype == layer.qzeros.dtype == stored
    g = torch.Generator().manual_seed(5)
    q = torch.randint(0, 16, (n, k), generator=g)
    scales = (torch.rand(n, k // 32, generator=g) / 16).to(stored)
    offsets = (-torch.rand(n, k // 32, generator=g) / 2).to(stored)
    layer.qweight.data = packing.pack_rows(q)
    layer.scales.data, layer.qzeros.data = scales, offsets
    scheme.process_weights_after_loading(layer)
    want_w = q.float() * scales.float().repeat_interleave(32, 1) + offsets.float().repeat_interleave(32, 1)
    x = torch.randn(3, k)
    torch.testing.assert_close(scheme.apply(layer, x), x @ want_w.T, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="scales_dtype must be one of"):
        linear_scheme({"quant_method": "w4_affine", "scales_dtype": "float8_e4m3fn"})


def test_the_affine_scales_dtype_is_checked_by_the_contract():
    spec = W4A16Spec(torch.float32, "affine", 32, n=8, k=64, scales_dtype=torch.float16)
    W4A16_GEMM.check_spec(spec)
    with pytest.raises(ContractError, match="quant.w4a16_gemm: scales_dtype must be one of"):
        W4A16_GEMM.check_spec(replace(spec, scales_dtype=torch.int8))
    with pytest.raises(ContractError, match="scales_dtype is the affine format's"):
        W4A16_GEMM.check_spec(replace(spec, format="gptq", dtype=torch.float16))
    x, q = torch.randn(2, 64), torch.zeros(8, 8, dtype=torch.int32)
    halves = torch.ones(8, 2, dtype=torch.float16)
    W4A16_GEMM.check_args(spec, x, q, halves, halves)
    with pytest.raises(ContractError, match="qzeros.*float16"):
        W4A16_GEMM.check_args(spec, x, q, halves, halves.float())


def test_gptq_v2_and_bad_group_sizes_are_rejected():
    with pytest.raises(ValueError, match="checkpoint_format 'gptq_v2'"):
        linear_scheme({"quant_method": "gptq", "checkpoint_format": "gptq_v2"})
    with pytest.raises(ValueError, match="group_size must be 32, 64 or 128"):
        linear_scheme({"quant_method": "awq", "group_size": -1})
    with pytest.raises(ValueError, match="no linear scheme for quant_method 'bitsandbytes'"):
        linear_scheme({"quant_method": "bitsandbytes"})


E, H, INTER, K, T = 4, 128, 128, 2, 9  # experts, hidden, intermediate, top-k, tokens


def routing(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.stack([torch.randperm(E, generator=g)[:K] for _ in range(T)]).to(torch.int32)
    return torch.randn(T, H, generator=g), torch.rand(T, K, generator=g), ids


def moe_layer(config, dtype=torch.float32):
    layer = torch.nn.Module()
    scheme = moe_scheme(config)
    scheme.create_weights(layer, E, H, INTER, K, dtype)
    return scheme, layer


def test_unquantized_moe():
    scheme, layer = moe_layer(None)
    layer.w13_weight.data.normal_(std=H**-0.5)
    layer.w2_weight.data.normal_(std=INTER**-0.5)
    x, w, ids = routing()
    want = ref_moe.experts(x, layer.w13_weight, layer.w2_weight, w, ids)
    scheme.process_weights_after_loading(layer)  # the weights may now be in the selected kernel's layout
    torch.testing.assert_close(scheme.apply(layer, x, w, ids), want)


@pytest.mark.parametrize("block", [False, True])
def test_fp8_moe(block):
    scheme, layer = moe_layer({"quant_method": "fp8", **({"weight_block_size": [128, 128]} if block else {})})
    floats = {"w13": torch.randn(E, 2 * INTER, H) * H**-0.5, "w2": torch.randn(E, H, INTER) * INTER**-0.5}
    floats["w13"][:, INTER:] *= 8  # up rows much larger than gate rows: per-tensor gate/up scales differ
    dequant = {}
    for name, w in floats.items():
        rows, cols = (128, 128) if block else ((INTER, H) if name == "w13" else (H, INTER))
        pairs = [fp8_tiles(w[e], rows, cols) for e in range(E)]
        getattr(layer, f"{name}_weight").data = torch.stack([q for q, _ in pairs])
        scales = torch.stack([s for _, s in pairs])
        getattr(layer, f"{name}_weight_scale" + ("_inv" if block else "")).data = (
            scales if block else scales.reshape(E, -1) if name == "w13" else scales.reshape(E)
        )
        dequant[name] = torch.stack([dequant_tiles(q, s) for q, s in pairs])
    scheme.process_weights_after_loading(layer)
    x, w, ids = routing()
    want = ref_moe.experts(x, dequant["w13"], dequant["w2"], w, ids)
    # per-tensor: the gate is requantized to the 8x larger up scale, pushing small values into subnormals
    assert rms_error(scheme.apply(layer, x, w, ids), want) < 0.05


@pytest.mark.parametrize("fmt", ["gptq", "awq"])
def test_w4a16_moe(fmt):
    scheme, layer = moe_layer({"quant_method": fmt, "group_size": G}, torch.float16)
    pack = packing.gptq_pack if fmt == "gptq" else packing.awq_pack
    dequant = {}
    for prefix, n, k in (("w13_", 2 * INTER, H), ("w2_", H, INTER)):
        parts = [w4_weights(n, k, seed) for seed in range(E)]
        packed = [pack(q, z) for q, z, _ in parts]
        getattr(layer, prefix + "qweight").data = torch.stack([p[0] for p in packed])
        getattr(layer, prefix + "qzeros").data = torch.stack([p[1] for p in packed])
        getattr(layer, prefix + "scales").data = torch.stack([s for _, _, s in parts])
        if fmt == "gptq":
            plain = (torch.arange(k) // G).to(torch.int32)
            getattr(layer, prefix + "g_idx").data = plain.expand(E, k).clone()
        dequant[prefix] = torch.stack(
            [
                ((q - z.repeat_interleave(G, 0).T).float() * s.repeat_interleave(G, 0).T.float())
                for q, z, s in parts
            ]
        )
    scheme.process_weights_after_loading(layer)
    x, w, ids = routing()
    x = x.to(torch.float16)
    want = ref_moe.experts(x.float(), dequant["w13_"], dequant["w2_"], w, ids)
    got = scheme.apply(layer, x, w, ids)
    assert got.dtype == torch.float16 and rms_error(got, want) < 1e-2
