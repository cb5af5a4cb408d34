#!/usr/bin/env bash
# MLX kernels (Metal on Apple silicon, MLX's CPU build elsewhere) and the plugin's own tests.
set -euo pipefail
.venv/bin/anyaccel info
.venv/bin/anyaccel check --provider mlx --json > conformance-mlx.json
.venv/bin/python -m pytest -q plugins/mlx/tests
