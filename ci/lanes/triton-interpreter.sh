#!/usr/bin/env bash
# Triton kernels executed by the interpreter on CPU tensors: correctness of the portable provider.
set -euo pipefail
TRITON_INTERPRET=1 .venv/bin/anyaccel check --provider triton --json > conformance-triton-interpreter.json
