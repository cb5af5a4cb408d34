"""Attention kernels, one module per library: FlashInfer's paged wrappers (flashinfer_paged), FlashInfer's
trtllm-gen kernels (trtllm), FlashAttention-4 (fa4) and torch's varlen attention (torch_varlen)."""
