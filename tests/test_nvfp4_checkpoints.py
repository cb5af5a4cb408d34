"""NVFP4 checkpoints (anyaccel.schemes.nvfp4) against their dequantized twins: ModelOpt's form (weight,
weight_scale, weight_scale_2, input_scale; exclude_modules wildcards; hf_quant_config.json) and
compressed-tensors' (weight_packed, weight_scale, the reciprocal weight_global_scale; "re:" ignores).

The checkpoints are written here from the format's definition (e2m1 codes by nearest search, element 2i in
the low nibble), not with anyaccel's encoder. Each 16-value block is first scaled by its own power of two
and every layer has its own global, far from 1, so a dropped or misplaced block scale or global changes the
outputs by far more than the float32 tolerance: the quantized path computes with exactly the twin's
weights. One test drops the globals on purpose and checks that the comparison catches it.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.comm import shutdown_distributed
from anyaccel.models import LLM
from anyaccel.models.layers.linear import LinearBase
from anyaccel.models.testing import exit_rank, tiny_checkpoint

E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0])
MODELOPT = {"quant_method": "modelopt", "quant_algo": "NVFP4", "group_size": 16}
COMPRESSED = {
    "quant_method": "compressed-tensors",
    "format": "nvfp4-pack-quantized",
    "config_groups": {
        "group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16},
        }
    },
}
TOL = 1e-4  # relative: float32, the same weights, another summation order


def encode(w: torch.Tensor, glob: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(packed uint8 [N, K/2], e4m3 block scales [N, K/16], the dequantized weight) of w."""
    n, k = w.shape
    blocks = w.float().reshape(n, k // 16, 16)
    scale = (blocks.abs().amax(-1) / (6 * glob)).clamp(max=448).to(torch.float8_e4m3fn)
    full = scale.float()[..., None] * glob
    scaled = torch.where(full > 0, blocks / full, torch.zeros_like(blocks))
    codes = (scaled[..., None] - E2M1).abs().argmin(-1).reshape(n, k)
    packed = (codes[:, 0::2] | (codes[:, 1::2] << 4)).to(torch.uint8)
    dense = (E2M1[codes].reshape(n, k // 16, 16) * full).reshape(n, k)
    return packed, scale, dense


def quantized_twins(source, qdir, ddir, form: str, dense_names=(), sidecar: bool = False, seed: int = 0):
    """Write `source` as an NVFP4 checkpoint in `form` ("modelopt" or "compressed") and its dequantized
    twin. Linear weights named in dense_names stay dense in both."""
    config = json.loads((source / "config.json").read_text())
    tensors = load_file(source / "model.safetensors")
    gen = torch.Generator().manual_seed(seed)
    quantized, dense = {}, {}
    for name, t in sorted(tensors.items()):
        linear = t.dim() == 2 and not name.endswith(("embed_tokens.weight", "lm_head.weight"))
        if not linear or any(d in name for d in dense_names):
            quantized[name] = dense[name] = t
            continue
        layer = int(name.split(".")[2])
        glob = 0.004 * (layer + 1)  # one per layer: merged q/k/v and gate/up parts share it, as ModelOpt's do
        spread = 2.0 ** torch.randint(-2, 3, (t.shape[0], t.shape[1] // 16), generator=gen).float()
        packed, scale, real = encode(t * spread.repeat_interleave(16, 1), glob)
        base = name.removesuffix(".weight")
        dense[name] = real
        if form == "modelopt":
            quantized |= {
                f"{base}.weight": packed,
                f"{base}.weight_scale": scale,
                f"{base}.weight_scale_2": torch.tensor(glob),
                f"{base}.input_scale": torch.tensor(0.01),
            }
        else:
            quantized |= {
                f"{base}.weight_packed": packed,
                f"{base}.weight_scale": scale,
                f"{base}.weight_global_scale": torch.tensor([1.0 / glob]),
                f"{base}.input_global_scale": torch.tensor([100.0]),
            }
    qconfig = MODELOPT if form == "modelopt" else COMPRESSED
    for path, weights in ((qdir, quantized), (ddir, dense)):
        path.mkdir(parents=True, exist_ok=True)
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        extra = {}
        if path == qdir and not sidecar:
            extra = {"quantization_config": qconfig | (form_excludes(form, dense_names))}
        (path / "config.json").write_text(json.dumps({**config, **extra}))
    if sidecar:
        side = {
            "producer": {"name": "modelopt"},
            "quantization": {**MODELOPT, **form_excludes(form, dense_names)},
        }
        side["quantization"].pop("quant_method")
        (qdir / "hf_quant_config.json").write_text(json.dumps(side))


def form_excludes(form: str, dense_names) -> dict:
    if not dense_names:
        return {}
    if form == "modelopt":  # shell wildcards
        return {"exclude_modules": ["lm_head", *[f"*{d}*" for d in dense_names]]}
    return {"ignore": ["lm_head", *[f"re:.*{d}.*" for d in dense_names]]}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return tiny_checkpoint("LlamaForCausalLM", tmp_path_factory.mktemp("nvfp4") / "source")


def _compare_layers(qdir, ddir) -> tuple[int, float]:
    """(quantized linears compared, worst relative error) of every linear layer against the twin's."""
    quantized = LLM(qdir, dtype=torch.float32, progress=False)
    dense = LLM(ddir, dtype=torch.float32, progress=False)
    gen = torch.Generator().manual_seed(0)
    count, worst = 0, 0.0
    with torch.inference_mode():
        for (_, q), (_, d) in zip(
            quantized.runner.model.named_modules(), dense.runner.model.named_modules(), strict=True
        ):
            if not isinstance(q, LinearBase):
                continue
            x = torch.randn(5, q.in_features, generator=gen)
            got, want = q(x), d(x)
            worst = max(worst, float((got - want).norm() / want.norm()))
            count += type(q.scheme).__name__.endswith("Nvfp4Linear")
    return count, worst


@pytest.mark.parametrize("form", ["modelopt", "compressed"])
def test_every_nvfp4_layer_computes_with_its_dequantized_weights(source, tmp_path, form):
    quantized_twins(source, tmp_path / "q", tmp_path / "d", form)
    count, worst = _compare_layers(tmp_path / "q", tmp_path / "d")
    assert count == 4 * 2 and worst < TOL  # q/k/v, o, gate/up, down in each of the 2 layers


@pytest.mark.parametrize("form", ["modelopt", "compressed"])
def test_excluded_modules_stay_dense(source, tmp_path, form):
    quantized_twins(source, tmp_path / "q", tmp_path / "d", form, dense_names=("layers.1.mlp",))
    count, worst = _compare_layers(tmp_path / "q", tmp_path / "d")
    assert count == 4 * 2 - 2 and worst < TOL


def test_hf_quant_config_json_is_read_when_config_json_has_none(source, tmp_path):
    quantized_twins(source, tmp_path / "q", tmp_path / "d", "modelopt", ("layers.0.self_attn",), sidecar=True)
    count, worst = _compare_layers(tmp_path / "q", tmp_path / "d")
    assert count == 4 * 2 - 2 and worst < TOL


def test_a_dropped_global_would_fail_the_comparison(source, tmp_path):
    quantized_twins(source, tmp_path / "q", tmp_path / "d", "modelopt")
    path = tmp_path / "q" / "model.safetensors"
    tensors = load_file(path)
    tensors = {k: (torch.ones_like(v) if k.endswith("weight_scale_2") else v) for k, v in tensors.items()}
    save_file(tensors, path, metadata={"format": "pt"})
    _, worst = _compare_layers(tmp_path / "q", tmp_path / "d")
    assert worst > 10


def test_merged_parts_with_different_globals_are_rescaled_to_one(source, tmp_path):
    """q, k and v with their own globals: the block scales of the smaller ones are rescaled once (e4m3
    rounding of scale * g / g_max), so the layer stays within the e4m3 step of the twin."""
    quantized_twins(source, tmp_path / "q", tmp_path / "d", "modelopt")
    path = tmp_path / "q" / "model.safetensors"
    tensors = load_file(path)
    for name in [n for n in tensors if n.endswith("k_proj.weight_scale")]:
        base = name.removesuffix(".weight_scale")
        tensors[name] = (tensors[name].float() * 2).to(torch.float8_e4m3fn)  # same weights, global halved
        tensors[base + ".weight_scale_2"] = tensors[base + ".weight_scale_2"] / 2
    save_file(tensors, path, metadata={"format": "pt"})
    _, worst = _compare_layers(tmp_path / "q", tmp_path / "d")
    assert worst < 0.07  # e4m3's relative step is 2^-3; measured well below


PROMPTS = [[3, 14, 15, 92, 65, 35], [89, 79, 32, 38, 46, 26, 43]]


def _logits(model_dir) -> list[torch.Tensor]:
    from anyaccel.models.engine.sampling import SamplingParams

    params = SamplingParams(max_tokens=3, ignore_eos=True, return_logits=True)
    return [o.logits for o in LLM(model_dir, dtype=torch.float32, progress=False).generate(PROMPTS, params)]


def _rank(rank: int, world: int, port: int, model_dir: str, out_dir: str) -> None:
    import os

    import anyaccel

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        ANYACCEL_PLATFORM="cpu",
    )
    anyaccel.reset()
    torch.set_num_threads(1)
    try:
        torch.save(_logits(model_dir), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        shutdown_distributed()
    exit_rank()


@pytest.mark.slow
def test_tp2_shards_the_packed_weights_and_block_scales(source, tmp_path):
    """Column-parallel q/k/v and gate/up split their rows (and scale rows); row-parallel o and down split
    the packed bytes and the 16-value scale columns along K (32 and 48 features per rank): TP=2 logits
    equal the single rank's, which equal the dequantized twin's."""
    import socket

    import torch.multiprocessing as mp

    quantized_twins(source, tmp_path / "q", tmp_path / "d", "modelopt")
    expected = _logits(tmp_path / "q")
    for got, want in zip(_logits(tmp_path / "d"), expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _rank, args=(2, port, str(tmp_path / "q"), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    for rank in range(2):
        for got, want in zip(torch.load(tmp_path / f"rank{rank}.pt"), expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4, msg=f"rank {rank}")
