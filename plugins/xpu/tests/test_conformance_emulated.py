"""The conformance kit against the plugin's kernels through its emulators: one item per (kernel, case).
Battlemage runs everything; Ponte Vecchio (the same kernels, other device code) its attention;
`anyaccel check --emulate xpu:pvc --plugin anyaccel-xpu` covers the rest.

Cases a kernel rejects at bind time (float32 flash attention, HND caches, AWQ, IPEX against this torch) are
skipped with the rejection reason, as the kit does for every plugin.
"""

from __future__ import annotations

import pytest

CONFORMANCE = pytest.mark.anyaccel_conformance


@CONFORMANCE(plugin="anyaccel-xpu", emulate="xpu:bmg")
def test_bmg(anyaccel_case):
    anyaccel_case.assert_passes()


@CONFORMANCE(plugin="anyaccel-xpu", op="attention.decode", emulate="xpu:pvc")
def test_pvc_decode(anyaccel_case):
    anyaccel_case.assert_passes()
