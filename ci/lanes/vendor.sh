#!/usr/bin/env bash
# A vendor plugin on its hardware: the platform must be detected (strict mode: no silent fallback),
# every kernel that can run there passes the kit, and the plugin's own tests pass.
set -euo pipefail
platform="$1"
export ANYACCEL_STRICT=1
.venv/bin/anyaccel info --json > "info-$platform.json"
.venv/bin/python - "$platform" <<'PY'
import json, sys
name = json.load(open(f"info-{sys.argv[1]}.json"))["platform"]["name"]
sys.exit(0 if name == sys.argv[1] else f"expected platform {sys.argv[1]}, detected {name}")
PY
.venv/bin/anyaccel check --json > "conformance-$platform.json"
for t in plugins/*/tests; do .venv/bin/python -m pytest -q "$t"; done
