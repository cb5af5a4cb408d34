"""Rule 3 and rule 1 of the house: importing anyaccel (and everything `anyaccel info` does) imports no vendor
package, and no vendor check appears in the code of core/ or models/."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR_MODULES = (
    "torch_npu",
    "torch_musa",
    "mlx",
    "triton",
    "flashinfer",
    "aiter",
    "pynvml",
    "amdsmi",
    "intel_extension_for_pytorch",
    "flash_attn",
    "vllm",
    "sgl_kernel",
    "deep_gemm",
    "cutlass",
)

PROBE = """
import json, sys
import torch
before = set(sys.modules)
import anyaccel
after_import = set(sys.modules)
from anyaccel.cli.info import report
report()
vendors = {vendors!r}
def loaded(names):
    return sorted(m for m in names if m.split(".")[0] in vendors)
print(json.dumps({{"import": loaded(after_import - before), "info": loaded(set(sys.modules) - before)}}))
"""


def test_import_and_info_resolution_import_no_vendor_module(test_plugins):
    """In a fresh interpreter with the test plugins installed: `import anyaccel`, then detection, plugin
    discovery and resolving every op (what `anyaccel info` does) leave every vendor module unimported."""
    code = PROBE.format(vendors=VENDOR_MODULES)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"import": [], "info": []}


# Vendor checks, matched against code tokens only (comments and strings may name vendors in contracts).
# triton is the portable built-in provider (core/providers/triton), imported by its kernels once selected.
VENDOR_IMPORTS = [m for m in VENDOR_MODULES if m != "triton"]
FORBIDDEN = [
    re.compile(r"\btorch \. (cuda|xpu|npu|musa|mps|hip)\b"),
    re.compile(r"\btorch \. version \. (cuda|hip)\b"),
    re.compile(r"\btorch \. backends \. (cuda|mps|cudnn)\b"),
    re.compile(r"\b(import|from) (" + "|".join(VENDOR_IMPORTS) + r")\b"),
    re.compile(r"\b(get_device_capability|gcnArchName|is_hip|_is_hip|_is_cuda|_is_npu)\b"),
]


def code_tokens(path: Path) -> str:
    """The file's code as space-separated tokens, without comments and string literals."""
    skip = {
        tokenize.COMMENT,
        tokenize.STRING,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
    }
    skip |= {
        getattr(tokenize, n)
        for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
        if hasattr(tokenize, n)
    }
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return " ".join(t.string for t in tokens if t.type not in skip)


def test_no_vendor_checks_in_core_or_models():
    files = [p for folder in ("core", "models") for p in sorted((ROOT / folder).rglob("*.py"))]
    assert files
    hits = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in files
        for rx in FORBIDDEN
        for m in rx.finditer(code_tokens(p))
    ]
    assert hits == [], "vendor knowledge belongs in platforms/ or plugins/"


def test_the_vendor_check_scanner_sees_code_but_not_text(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""torch.cuda in a docstring is fine."""\n# torch.version.hip in a comment too\n'
        "if torch.cuda.is_available():\n    import pynvml\n",
        encoding="utf-8",
    )
    tokens = code_tokens(sample)
    assert [rx.search(tokens) is not None for rx in FORBIDDEN] == [True, False, False, True, False]
