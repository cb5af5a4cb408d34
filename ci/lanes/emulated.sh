#!/usr/bin/env bash
# A vendor plugin on emulated platforms (any Linux runner): for each PLATFORM:CAPABILITY, the plugin's kernels
# run through its emulators against the conformance kit's oracles (JUnit and a report per target), then the
# plugin's own tests. Emulation proves the plugin's glue, not the vendor kernels.
#   ci/lanes/emulated.sh PLUGIN_DIR TARGET [TARGET...]      e.g. ci/lanes/emulated.sh cuda cuda:sm_90 cuda:sm_100
set -euo pipefail
plugin="$1"
shift
dist="$(.venv/bin/python -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["name"])' "plugins/$plugin/pyproject.toml")"
out="${LANE_OUT:-lane-$plugin}"
mkdir -p "$out"
for target in "$@"; do
  name="${target/:/-}"
  .venv/bin/anyaccel check --plugin "$dist" --emulate "$target" \
    --junit "$out/junit-$name.xml" --report "$out/report-$name" --json > "$out/conformance-$name.json"
done
.venv/bin/python -m pytest -q "plugins/$plugin/tests"
