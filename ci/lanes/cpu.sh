#!/usr/bin/env bash
# CPU lane: the whole suite (what .ci/run does) plus the conformance kit's report as JSON.
set -euo pipefail
make test
.venv/bin/anyaccel check --json > conformance-cpu.json
.venv/bin/anyaccel check --provider cpu --json > conformance-cpu-kernels.json
