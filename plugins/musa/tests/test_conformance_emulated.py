"""The conformance kit against every kernel of the plugin through the MATE and torch_musa emulators: one item
per (kernel, case) on an emulated S5000 (mp_31), and the fused ops MP22 has on an emulated S4000. Cases a
kernel rejects at bind time (float32 attention, fp8 caches, HND caches, tensor scales) are skipped with the
rejection reason, as the kit does for every plugin; `anyaccel check --emulate musa:mp_31 --plugin
anyaccel-musa` runs the same."""

from __future__ import annotations

import pytest

CONFORMANCE = pytest.mark.anyaccel_conformance


@CONFORMANCE(plugin="anyaccel-musa", emulate="musa:mp_31")
def test_mp31(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(plugin="anyaccel-musa", op="norm.rms_norm", emulate="musa:mp_22")
def test_mp22_rms_norm(anyaccel_case):
    anyaccel_case.assert_passes()
