"""GPT-OSS's experts: all experts of a layer stacked in one tensor per projection, gate and up interleaved,
biases on both projections, dense or MXFP4, loaded into moe.experts' [gate; up] layout.

Checkpoint tensors below `<layer>.mlp.experts.` (E experts, hidden H, intermediate I):
  dense:  gate_up_proj [E, H, 2I] (input-major: x @ gate_up_proj[e]), down_proj [E, I, H]
  MXFP4:  gate_up_proj_blocks uint8 [E, 2I, H/32, 16], gate_up_proj_scales uint8 [E, 2I, H/32],
          down_proj_blocks uint8 [E, H, I/32, 16], down_proj_scales uint8 [E, H, I/32]: row n of a
          projection is K = H or I values in blocks of 32, each block 16 bytes of two e2m1 values (element
          2i in the low nibble) and one e8m0 scale; blocks concatenated are moe.experts' packed [N, K/2]
  both:   gate_up_proj_bias [E, 2I], down_proj_bias [E, H]
Column / row 2j of gate_up is gate feature j, 2j + 1 up feature j (transformers' GptOssExperts takes
gate_up[..., ::2] and gate_up[..., 1::2]); the loader de-interleaves them into [gate; up].

Tensor parallel gives each rank the intermediate features [i0, i0 + I/world) of every expert: rows
[2 i0, 2 (i0 + I/world)) of the interleaved tensors, and the matching columns (blocks of 32) of down_proj;
MXFP4 then needs I/world to be a multiple of 32. down_proj_bias is added once, by rank 0 (the ranks'
partial outputs are summed). Expert parallel gives each rank whole experts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .config import ModelConfig
from .gpt_oss_schemes import GptOssMoE
from .layers.moe import FusedMoE, Routing
from .layers.weights import WeightSlot, scheme_params
from .parallel import SINGLE, Parallel

# transformers' GptOssConfig swiglu_alpha / swiglu_limit: the values moe.experts' "swiglu_oai" computes with
SWIGLU_ALPHA = 1.702
SWIGLU_LIMIT = 7.0
MXFP4_BLOCK = 32
MXFP4_BYTES = MXFP4_BLOCK // 2  # bytes per block in *_blocks


def experts_quantization(config: ModelConfig) -> str | None:
    """None for a dense GPT-OSS checkpoint, "mxfp4" for an MXFP4 one; other formats are refused."""
    quant = config.quantization
    if not quant:
        return None
    method = quant.get("quant_method")
    if method != "mxfp4":
        raise ValueError(
            f"{config.path}: GPT-OSS checkpoints are read dense or as MXFP4 (quant_method 'mxfp4'); "
            f"quant_method {method!r} is not supported"
        )
    return method


@dataclass(frozen=True)
class Source:
    """Where parameter `param` comes from: checkpoint tensor `<prefix>.<suffix>` of `shape`, split for
    tensor parallelism along `dim` in units of `unit` intermediate features per index. gate_up: rows /
    columns along `dim` interleave gate and up; transpose: the tensor is input-major, swap its last dims."""

    suffix: str
    shape: tuple[int, ...]
    dim: int | None
    unit: int = 1
    gate_up: bool = False
    transpose: bool = False


def sources(e: int, h: int, i: int) -> dict[str, Source]:
    """Scheme parameter -> its checkpoint tensor, for E experts, hidden H and intermediate I."""
    kb, ib = h // MXFP4_BLOCK, i // MXFP4_BLOCK
    return {
        "w13_weight": Source("gate_up_proj", (e, h, 2 * i), 2, gate_up=True, transpose=True),
        "w2_weight": Source("down_proj", (e, i, h), 1, transpose=True),
        "w13_bias": Source("gate_up_proj_bias", (e, 2 * i), 1, gate_up=True),
        "w2_bias": Source("down_proj_bias", (e, h), None),
        "w13_blocks": Source("gate_up_proj_blocks", (e, 2 * i, kb, MXFP4_BYTES), 1, gate_up=True),
        "w13_scales": Source("gate_up_proj_scales", (e, 2 * i, kb), 1, gate_up=True),
        "w2_blocks": Source("down_proj_blocks", (e, h, ib, MXFP4_BYTES), 2, unit=MXFP4_BLOCK),
        "w2_scales": Source("down_proj_scales", (e, h, ib), 2, unit=MXFP4_BLOCK),
    }


def _deinterleave(x: torch.Tensor, dim: int) -> torch.Tensor:
    """[..., 2n, ...] with gate, up alternating along dim -> [gate (n); up (n)] along dim."""
    n = x.shape[dim] // 2
    pairs = x.unflatten(dim, (n, 2))
    return torch.cat((pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)), dim)


class GptOssExperts(FusedMoE):
    """FusedMoE (moe.experts with activation "swiglu_oai", biases on both projections) reading the stacked
    GPT-OSS expert tensors; quant None (dense) or "mxfp4"."""

    def __init__(
        self,
        num_experts: int,
        hidden_size: int,
        intermediate_size: int,
        routing: Routing,
        parallel: Parallel = SINGLE,
        *,
        dtype: torch.dtype,
        quant: str | None = None,
    ):
        super().__init__(
            num_experts,
            hidden_size,
            intermediate_size,
            routing,
            parallel,
            dtype=dtype,
            activation="swiglu_oai",
            scheme=GptOssMoE(quant),
        )

    def _load(self, dst: torch.Tensor, source: Source):
        """A loader copying this rank's experts and features of `source` into `dst`."""
        e0, e_local = self.first_expert, self.local_experts
        start, length = self.i_start, self.local_i
        if source.gate_up:
            start, length = 2 * start, 2 * length
        if start % source.unit or length % source.unit:
            raise ValueError(
                f"{source.suffix}: intermediate features [{start}, {start + length}) of a tensor-parallel "
                f"shard do not fall on whole MXFP4 blocks of {source.unit}"
            )
        first_rank_only = source.dim is None and self.i_start > 0  # down_proj_bias: added once

        def load(src) -> None:
            if first_rank_only:
                dst.zero_()
                return
            index = [slice(e0, e0 + e_local)] + [slice(None)] * (len(source.shape) - 1)
            if source.dim is not None:
                index[source.dim] = slice(start // source.unit, (start + length) // source.unit)
            x = src[tuple(index)]
            if source.gate_up and source.dim is not None:
                x = _deinterleave(x, source.dim)
            if source.transpose:
                x = x.transpose(1, 2)
            dst.copy_(x.reshape(dst.shape))

        return load

    def weight_slots(self, prefix: str) -> Iterator[WeightSlot]:
        table = sources(self.num_experts, self.hidden_size, self.full_intermediate)
        for name, data, _ in scheme_params(self):
            if name not in table:
                raise ValueError(f"{prefix}: GPT-OSS checkpoints have no tensor for the experts' {name}")
            source = table[name]
            yield WeightSlot(f"{prefix}.{source.suffix}", source.shape, self._load(data, source))
