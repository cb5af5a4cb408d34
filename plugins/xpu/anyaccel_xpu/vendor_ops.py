"""The torch.ops entry points of vllm-xpu-kernels, as the kernels call them.

Importing vllm_xpu_kernels' extension modules registers four op namespaces: _C (norms, rope, activations),
_C_cache_ops (KV writes), _moe_C (routing) and _xpu_C (oneDNN GEMMs, arch probes). They exist as one module
so that an emulated xpu platform can replace them: ANYACCEL_EMULATE=xpu:<arch> installs
anyaccel_xpu/emulators/vendor_ops.py in this module's place. Kernel modules import it only when selected.
"""

from __future__ import annotations

import torch
import vllm_xpu_kernels._C  # noqa: F401  registers torch.ops._C and torch.ops._C_cache_ops
import vllm_xpu_kernels._moe_C  # noqa: F401
import vllm_xpu_kernels._xpu_C  # noqa: F401

C = torch.ops._C  # rms_norm(out, x, w, eps); fused_add_rms_norm(x, residual, w, eps); rotary_embedding(...)
cache_ops = torch.ops._C_cache_ops  # reshape_and_cache_flash(k, v, kc, vc, slots, kv_cache_dtype, ks, vs)
moe_C = torch.ops._moe_C  # topk_softmax, topk_sigmoid, grouped_topk
xpu_C = torch.ops._xpu_C  # fp8_gemm, int4_gemm_w4a16
