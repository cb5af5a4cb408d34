"""npu_format_cast(self, acl_format) -> Tensor and get_npu_format(self) -> int (torch_npu 2.14 docs).

A format cast changes how the NPU stores a tensor (FRACTAL_NZ tiles instead of row-major ND), not its
values; torch operators on the NPU read either. The emulator returns a copy with the same values and records
the format so that get_npu_format reads it back. Formats accepted: the ACL ids torch_npu documents and uses
(0 NCHW, 1 NHWC, 2 ND, 3 NC1HWC0, 4 FRACTAL_Z, 29 FRACTAL_NZ); FRACTAL_NZ needs at least 2 dims.
"""

from __future__ import annotations

import torch

from ._checks import require, unused

ACL_FORMATS = frozenset({0, 1, 2, 3, 4, 29})
FRACTAL_NZ = 29
_FORMAT = "_anyaccel_npu_format"


def npu_format_cast(self: torch.Tensor, acl_format: int, customize_dtype=None) -> torch.Tensor:
    fn = "npu_format_cast"
    unused(fn, customize_dtype=customize_dtype)
    require(acl_format in ACL_FORMATS, fn, f"acl_format {acl_format} is not one of {sorted(ACL_FORMATS)}")
    require(acl_format != FRACTAL_NZ or self.dim() >= 2, fn, "FRACTAL_NZ needs a tensor of at least 2 dims")
    out = self.clone()
    setattr(out, _FORMAT, acl_format)
    return out


def get_npu_format(self: torch.Tensor) -> int:
    return getattr(self, _FORMAT, 2)
