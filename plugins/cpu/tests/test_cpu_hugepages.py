"""Weights the C GEMV streams are moved into transparent huge pages at load: same values, memory advised
MADV_HUGEPAGE, small tensors and a switched-off machine left alone, and a tied head still one copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from anyaccel_cpu import hugepages, native

from anyaccel.models import LLM
from anyaccel.models.testing import tiny_checkpoint

pytestmark = pytest.mark.skipif(hugepages.available() is not None, reason=str(hugepages.available()))


def _advised_huge(address: int) -> bool:
    """The mapping holding `address` carries MADV_HUGEPAGE ("hg" in its VmFlags, /proc/self/smaps)."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:
            low, high = (int(x, 16) for x in head[0].split("-"))
            inside = low <= address < high
        elif inside and line.startswith("VmFlags:"):
            return "hg" in head[1:]
    return False


def test_large_tensors_move_into_huge_pages_with_their_values():
    big, small = torch.randn(512, 1024), torch.randn(64, 64)
    moved = hugepages.prepare(None, {"weight": big, "bias": None})["weight"]
    assert moved.data_ptr() != big.data_ptr() and torch.equal(moved, big)
    assert (moved.shape, moved.dtype, moved.is_contiguous()) == (big.shape, big.dtype, True)
    # Only the copy is checked: where the allocator put the original (and whether the machine's malloc
    # advises its own heap huge, as glibc.malloc.hugetlb does) is not this module's doing.
    assert _advised_huge(moved.data_ptr()) and moved.data_ptr() % hugepages.ALIGN == 0
    assert hugepages.in_huge_pages(small) is small
    again = hugepages.in_huge_pages(torch.ones(300, 1024))  # the same arena, on its own cache line
    assert again.data_ptr() % hugepages.ALIGN == 0 and torch.equal(moved, big)


def test_switched_off_by_the_environment(monkeypatch):
    monkeypatch.setenv("ANYACCEL_CPU_HUGEPAGES", "0")
    big = torch.randn(512, 1024)
    assert hugepages.in_huge_pages(big) is big


@pytest.mark.skipif(native.native_missing() is not None, reason="no C compiler")
def test_a_tied_head_keeps_one_copy_in_huge_pages(tmp_path, monkeypatch):
    monkeypatch.setattr(hugepages, "MIN_BYTES", 1)  # the tiny model's tensors count as large
    path = tiny_checkpoint("LlamaForCausalLM", tmp_path / "tied", tie_word_embeddings=True)
    model = LLM(path, progress=False).model
    head, embed = model.lm_head, model.model.embed_tokens
    assert head._gemm_weight.data_ptr() == embed.weight.data_ptr() == head.weight.data_ptr()
    assert _advised_huge(embed.weight.data_ptr())
    qkv = model.model.layers[0].self_attn.qkv_proj.weight
    assert _advised_huge(qkv.data_ptr())
