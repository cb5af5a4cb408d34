"""Emulated `vllm_xpu_kernels` (vllm-project/vllm-xpu-kernels @ 4543b58): the Python modules the plugin
imports. The package itself only holds them."""
