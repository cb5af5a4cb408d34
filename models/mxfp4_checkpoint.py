"""GPT-OSS-shaped MXFP4 test checkpoints (safetensors only), written from a dense GPT-OSS checkpoint the way
OpenAI's released ones store their experts, plus the dense twin holding exactly the dequantized weights.

Packed here from the documented format (OCP Microscaling Formats v1.0: e2m1 elements, blocks of 32 sharing
one e8m0 scale 2^(s - 127); GPT-OSS's `*_blocks` [E, N, K/32, 16] with element 2i of a block in the low nibble
of byte i, `*_scales` [E, N, K/32]), not with the code that loads them, so that the loader is checked against
the format. Each block's scale is OCP's floor(log2(amax)) - 2 (e2m1's largest binade) and elements round to
the nearest e2m1 value, saturating at 6.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # codes 0..7; code | 8 is the negative
BLOCK = 32
E8M0_BIAS = 127
E2M1_EMAX = 2
# what openai/gpt-oss-20b's config.json writes: only the experts are quantized
QUANTIZATION_CONFIG: dict[str, Any] = {
    "quant_method": "mxfp4",
    "modules_to_not_convert": [
        "model.layers.*.self_attn",
        "model.layers.*.mlp.router",
        "model.embed_tokens",
        "lm_head",
    ],
}
# the expert projections, stored input-major ([E, K, N]: x @ w[e]) in the dense checkpoint
EXPERT_WEIGHTS = ("gate_up_proj", "down_proj")


def quantize_mxfp4(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rows [..., K] (K a multiple of 32) -> (blocks uint8 [..., K/32, 16], scales uint8 [..., K/32])."""
    x = rows.float().unflatten(-1, (-1, BLOCK))
    amax = x.abs().amax(-1)
    exponent = torch.where(amax > 0, torch.floor(torch.log2(amax)) - E2M1_EMAX, torch.full_like(amax, -127))
    exponent = exponent.clamp(-127, 127)
    scaled = (x / torch.exp2(exponent)[..., None]).clamp(-6.0, 6.0)
    grid = torch.tensor(E2M1)
    magnitude = (scaled.abs()[..., None] - grid).abs().argmin(-1)  # nearest e2m1 magnitude (ties: the lower)
    codes = (magnitude | ((scaled < 0) & (magnitude > 0)).long() << 3).to(torch.uint8)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return blocks.contiguous(), (exponent + E8M0_BIAS).to(torch.uint8)


def dequantize_mxfp4(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Inverse of quantize_mxfp4: float32 [..., K]."""
    grid = torch.tensor(E2M1 + tuple(-v for v in E2M1))
    codes = torch.stack((blocks & 0x0F, blocks >> 4), dim=-1).flatten(-2).long()
    values = grid[codes] * torch.exp2(scales.float() - E8M0_BIAS)[..., None]
    return values.flatten(-2)


def _spread_blocks(rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """rows [..., K] with each 32-element block multiplied by a random power of two in [1/4, 4]: the blocks'
    scales then differ, so a scale applied to the wrong block, row or expert shows."""
    factors = 2.0 ** torch.randint(-2, 3, (*rows.shape[:-1], rows.shape[-1] // BLOCK, 1), generator=gen)
    return (rows.float().unflatten(-1, (-1, BLOCK)) * factors).flatten(-2)


def gpt_oss_mxfp4_checkpoint(
    model_dir: Path | str, mxfp4_dir: Path | str, dequantized_dir: Path | str, *, seed: int = 0
) -> Path:
    """From a dense GPT-OSS checkpoint in `model_dir` (model.safetensors), write its MXFP4 version to
    `mxfp4_dir` (every expert projection as `<name>_blocks` / `<name>_scales`, quantization_config
    QUANTIZATION_CONFIG) and, to `dequantized_dir`, the dense checkpoint holding the very weights the MXFP4
    one encodes (exact in bfloat16 and float32). Everything else is copied unchanged into both."""
    from safetensors.torch import load_file, save_file

    model_dir, mxfp4_dir, dequantized_dir = Path(model_dir), Path(mxfp4_dir), Path(dequantized_dir)
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("architectures") != ["GptOssForCausalLM"]:
        raise ValueError(
            f"{model_dir}: not a GPT-OSS checkpoint (architectures {config.get('architectures')})"
        )
    gen = torch.Generator().manual_seed(seed)
    quantized, dense = {}, {}
    for name, t in sorted(load_file(model_dir / "model.safetensors").items()):
        base, _, proj = name.rpartition(".")
        if not (base.endswith("mlp.experts") and proj in EXPERT_WEIGHTS):
            quantized[name] = dense[name] = t
            continue
        rows = t.transpose(1, 2)  # [E, N, K]: one row per output feature, as *_blocks store them
        blocks, scales = quantize_mxfp4(_spread_blocks(rows, gen))
        quantized[f"{name}_blocks"], quantized[f"{name}_scales"] = blocks, scales
        dense[name] = dequantize_mxfp4(blocks, scales).transpose(1, 2).to(t.dtype).contiguous()
    for path, weights, extra in (
        (mxfp4_dir, quantized, {"quantization_config": QUANTIZATION_CONFIG}),
        (dequantized_dir, dense, {}),
    ):
        path.mkdir(parents=True, exist_ok=True)
        save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        (path / "config.json").write_text(json.dumps({**config, **extra}, indent=2))
    return mxfp4_dir


def main(argv: list[str] | None = None) -> int:
    """python -m anyaccel.models.mxfp4_checkpoint DIR [--seed N]: a tiny random GPT-OSS (testing.TINY's) in
    DIR/dense-source, its MXFP4 version in DIR/mxfp4 and the dequantized twin in DIR/dequantized; then
    `anyaccel run --model DIR/mxfp4 --compare-transformers` runs it against transformers."""
    import argparse

    from .testing import tiny_checkpoint

    parser = argparse.ArgumentParser(prog="python -m anyaccel.models.mxfp4_checkpoint")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    source = tiny_checkpoint("GptOssForCausalLM", args.dir / "dense-source", seed=args.seed)
    print(gpt_oss_mxfp4_checkpoint(source, args.dir / "mxfp4", args.dir / "dequantized", seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
