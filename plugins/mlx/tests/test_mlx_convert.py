"""Crossing between torch and MLX: which directions copy, bf16 and fp8 bit-exactness, resident weights."""

from __future__ import annotations

import mlx.core as mx
import torch

from anyaccel_mlx.convert import resident, to_mx, to_torch


def test_mlx_to_torch_is_zero_copy_and_torch_to_mlx_copies():
    a = mx.zeros((4,))
    t = to_torch(a)
    t[0] = 5.0
    assert a.tolist()[0] == 5.0  # the tensor views MLX's buffer
    src = torch.zeros(4)
    b = to_mx(src)
    mx.eval(b)
    src[1] = 7.0
    assert b.tolist()[1] == 0.0  # the MLX array owns a copy


def test_bf16_and_fp8_cross_bit_exactly():
    x = torch.randn(7, 33).to(torch.bfloat16)[:, 1:]  # strided, and values numpy cannot hold
    back = to_torch(to_mx(x))
    assert back.dtype == torch.bfloat16 and torch.equal(back, x)
    f8 = torch.randn(16).to(torch.float8_e4m3fn)
    bits = to_mx(f8)
    assert bits.dtype == mx.uint8
    assert torch.equal(to_torch(mx.from_fp8(bits, mx.float32)), f8.float())


def test_resident_crosses_once_and_follows_in_place_updates():
    calls = []
    w = torch.ones(3)

    def prepare(t):
        calls.append(1)
        return to_mx(t)

    first = resident(w, "test", prepare)
    assert resident(w, "test", prepare) is first and len(calls) == 1
    w.mul_(2)
    assert resident(w, "test", prepare).tolist() == [2.0, 2.0, 2.0] and len(calls) == 2
