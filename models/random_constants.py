"""Random values for the tensors transformers initialises to a constant, in the random-weight checkpoints
built here (the demo, testing.tiny_checkpoint).

transformers sets RMSNorm weights (q_norm and k_norm included) to 1, biases to 0 and DeepSeek-V3's
e_score_correction_bias to 0. Saved like that, a checkpoint cannot tell a model or kernel that ignores such a
tensor from one that applies it: parity with transformers would hold either way. The tensors are found by
their values, not by name, so every architecture's (and any future one's) constants are covered.
"""

from __future__ import annotations

import torch
from torch import nn

# A constant c != 0 becomes c * U(SCALE_RANGE): norm weights in 0.5..1.5, far enough from 1 that a kernel
# ignoring them moves every activation by tens of percent, near enough that no channel is silenced.
SCALE_RANGE = (0.5, 1.5)
# A constant 0 becomes U(-ZERO_SPREAD, ZERO_SPREAD): small next to the activations a bias is added to (of
# order 1 here), large next to any parity tolerance.
ZERO_SPREAD = 0.1


def constant_tensors(model: nn.Module) -> dict[str, float]:
    """The floating-point tensors of `model.state_dict()` (parameters and persistent buffers) whose elements
    all hold one value, by name, with that value. Empty tensors are not constant."""
    found = {}
    for name, t in model.state_dict().items():
        if t.is_floating_point() and t.numel() and bool((t == t.reshape(-1)[0]).all()):
            found[name] = float(t.reshape(-1)[0])
    return found


@torch.no_grad()
def randomize_constants(model: nn.Module, gen: torch.Generator) -> set[str]:
    """Give every tensor of `constant_tensors(model)` random values around its constant, drawn from `gen`
    in name order (the same generator state gives the same values), and return their names.

    c != 0 -> c * U(SCALE_RANGE); 0 -> U(-ZERO_SPREAD, ZERO_SPREAD). A tensor under two names (tied
    weights) is drawn once per name; the last draw stays."""
    constants = constant_tensors(model)
    state = model.state_dict()
    low, high = SCALE_RANGE
    for name in sorted(constants):
        t, c = state[name], constants[name]
        u = torch.rand(t.shape, generator=gen, dtype=torch.float32)
        t.copy_(c * (low + (high - low) * u) if c else ZERO_SPREAD * (2 * u - 1))
    return set(constants)
