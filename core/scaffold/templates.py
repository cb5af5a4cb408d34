# ruff: noqa: E501  (templates of generated files keep their lines as the files will have them)
"""The files `anyaccel new-plugin` writes, rendered from the op contracts (kernel signatures are generated
from each op's signature stub, never typed by hand)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from string import Template
from textwrap import dedent

from anyaccel import context
from anyaccel.hookspecs import PLUGIN_API_VERSION
from anyaccel.providers.reference import FACTORY_OPS, TARGETS

NEW_FAMILY_CAPABILITIES = ("v1", "v2")


@dataclass(frozen=True)
class Spec:
    name: str  # provider and module suffix: anyaccel_<name>, kernels <name>.<op tail>
    family: str  # platform the kernels run on (a new family or an existing one)
    ops: list[str]
    new_family: bool
    examples: tuple[str, ...]  # capabilities the golden plans and the emulated tests use

    @property
    def dist(self) -> str:
        return f"anyaccel-{self.name.replace('_', '-')}"

    @property
    def module(self) -> str:
        return f"anyaccel_{self.name}"


def kernel_function(op: str) -> str:
    """norm.rms_norm -> rms_norm; rope.apply -> rope (the reference's names)."""
    return "rope" if op == "rope.apply" else op.split(".", 1)[1]


def _kernel_source(op: str) -> str:
    opdef = context.get().op(op)
    module, _, attr = TARGETS[op].partition(":")
    alias = f"reference_{module}"
    fn = kernel_function(op)
    if op in FACTORY_OPS:
        return dedent(f'''
            def {fn}(spec, platform):
                """{op}, built once per spec (a factory: the cache layout is not visible from a call).
                Delegates to the torch reference until replaced by the vendor's kernel."""
                return {alias}.{attr}(spec, platform)
            ''')
    sig = inspect.signature(opdef.signature)
    params = []
    for p in sig.parameters.values():
        text = p.name + (f": {p.annotation}" if p.annotation is not p.empty else "")
        params.append(text + (f" = {p.default!r}" if p.default is not p.empty else ""))
    ret = f" -> {sig.return_annotation}" if sig.return_annotation is not sig.empty else ""
    args = ", ".join(
        p.name if p.kind is p.POSITIONAL_OR_KEYWORD else f"{p.name}={p.name}" for p in sig.parameters.values()
    )
    header = f"def {fn}({', '.join(params)}){ret}:"
    if len(header) > 100:
        header = f"def {fn}(\n" + "".join(f"    {p},\n" for p in params) + f"){ret}:"
    body = (
        f'    """{op}; the contract is in anyaccel\'s docs/ops.md.\n\n'
        "    Delegates to the torch reference until replaced by the vendor's kernel. Keep this exact signature:\n"
        '    it is checked when the kernel is bound."""\n'
        f"    return {alias}.{attr}({args})\n"
    )
    return "\n" + header + "\n" + body


def kernels_py(spec: Spec) -> str:
    modules = sorted({TARGETS[op].split(":")[0] for op in spec.ops})
    imports = "\n".join(f"from anyaccel.providers.reference import {m} as reference_{m}" for m in modules)
    bodies = "\n".join(_kernel_source(op) for op in spec.ops)
    return (
        f'"""{spec.dist} kernels. Imported only when one of them is selected, so this module may import the\n'
        f'vendor runtime ({spec.name}_runtime) at the top once the kernels call it."""\n\n'
        f"from __future__ import annotations\n\nimport torch\n\n"
        f"{imports}\n\n{bodies}"
    )


INIT = Template('''"""$dist: $name's kernels for the anyaccel op contracts on the $family platform.

Registration only: kernel records are data whose targets ("module:function") are imported when a kernel is
selected, so importing this module imports no vendor runtime.
"""

from __future__ import annotations

from anyaccel.emulation import Emulator
from anyaccel.hookspecs import hookimpl
$imports
ANYACCEL_PLUGIN_API = "$api"
ANYACCEL_PROVIDERS = ("$name",)  # kernels named $name.* are this plugin's alone
PRIORITY = 10  # above the portable Triton provider and the torch reference


def _kernel(op: str, function: str, **kwargs) -> Kernel:
    return Kernel(
        op=op,
        name=f"$name.{function}",
        target=f"{__name__}.kernels:{function}",
        platforms=frozenset({"$family"}),
        priority=PRIORITY,
        verified="",  # "emulator" once checked through the emulator, "hardware" once on the device
        **kwargs,
    )
$family_hook

@hookimpl
def anyaccel_kernels() -> list[Kernel]:
    return [
$records
    ]


@hookimpl
def anyaccel_emulators() -> list[Emulator]:
    """Installed as `${name}_runtime` only on an emulated platform (ANYACCEL_EMULATE=$family:...)."""
    return [
        Emulator(
            modules={"${name}_runtime": f"{__name__}.emulator"},
            platforms=frozenset({"$family"}),
            provides=("$runtime_dist",),
        )
    ]
''')

FAMILY_HOOK = """

@hookimpl
def anyaccel_platforms() -> list[PlatformFamily]:
    return [FAMILY]
"""


def init_py(spec: Spec) -> str:
    records = "\n".join(
        f'        _kernel("{op}", "{kernel_function(op)}"{", factory=True" if op in FACTORY_OPS else ""}),'
        for op in spec.ops
    )
    imports = ["from anyaccel.registry import Kernel"]
    if spec.new_family:
        imports = [
            "from anyaccel.platforms.base import PlatformFamily",
            *imports,
            "",
            "from .platform import FAMILY",
        ]
    major = int(PLUGIN_API_VERSION.split(".")[0])
    return INIT.substitute(
        dist=spec.dist,
        name=spec.name,
        family=spec.family,
        imports="\n".join(imports) + "\n",
        api=f">={major},<{major + 1}",
        family_hook=FAMILY_HOOK if spec.new_family else "",
        records=records,
        runtime_dist=f"{spec.name.replace('_', '-')}-runtime",
    )


def platform_py(spec: Spec) -> str:
    caps = spec.examples
    return dedent(f'''\
        """The {spec.family} platform family: capabilities, hardware features, detection.

        Capabilities {" < ".join(caps)} (replace with your device generations, oldest first).
        Hardware features (FEATURES): fp16, bf16 (replace with what your kernels need to know).
        """

        from __future__ import annotations

        import importlib.util

        from anyaccel.platforms.base import Capabilities, Platform, PlatformFamily, features_of, ranked_table

        EXAMPLES = {caps!r}
        parse_capability = ranked_table("{spec.family}", {{c: rank for rank, c in enumerate(EXAMPLES, 1)}}, EXAMPLES)

        # feature -> the capabilities that have it (cite the data sheet each entry comes from)
        FEATURES: dict[str, Capabilities] = {{
            "fp16": frozenset(parse_capability(c) for c in EXAMPLES),
            "bf16": frozenset({{parse_capability("{caps[-1]}")}}),
        }}


        def describe(cap, *, device_name: str, device_count: int = 1, simulated: bool = False) -> Platform:
            features = features_of(FEATURES, cap)
            return Platform(
                name="{spec.family}",
                vendor="{spec.name}",
                device_type="{spec.family}",  # torch's name for your device (rename_privateuse1_backend)
                device_name=device_name,
                device_count=device_count,
                capability=cap,
                dispatch_key="PrivateUse1",
                dist_backend="gloo",  # your collective library's torch.distributed backend
                fp8_dtype=None,
                dtypes=("float32", "float16") + (("bfloat16",) if "bf16" in features else ()),
                triton=False,
                features=features,
                simulated=simulated,
            )


        def probe() -> Platform | None:
            """Your devices, or None. Ask the management library; never initialise the device (a forked
            worker would inherit it). Until written, the platform is found only when emulated or simulated."""
            if importlib.util.find_spec("{spec.name}_runtime") is None:
                return None
            return None


        FAMILY = PlatformFamily("{spec.family}", probe, parse_capability, describe, EXAMPLES)
        ''')


def emulator_py(spec: Spec) -> str:
    return dedent(f'''\
        """Emulator of `{spec.name}_runtime`, the vendor library the kernels will call, in plain torch.

        Installed under that name only on an emulated platform (ANYACCEL_EMULATE={spec.family}:<capability>), so
        the kernels really run on the host and the conformance kit checks the plugin's glue against float64
        oracles. For every vendor function a kernel calls, implement its documented semantics and its argument
        checks as strictly as the vendor does (unknown keywords, layouts, dtypes, shapes, documented limits raise
        the vendor's kind of error). This proves the plugin's side, never the vendor kernel itself.
        """

        from __future__ import annotations

        import torch


        class RuntimeError_(RuntimeError):
            """What {spec.name}_runtime raises for arguments it does not accept."""


        def rms_norm(input: torch.Tensor, weight: torch.Tensor, epsilon: float, *, out: torch.Tensor) -> None:
            """An example: [tokens, hidden] rows in float32/float16/bfloat16, written into `out`."""
            if input.dim() != 2 or input.stride(-1) != 1:
                raise RuntimeError_(f"rms_norm: input must be 2-D with contiguous rows, got {{tuple(input.shape)}}")
            if weight.shape != input.shape[-1:] or out.shape != input.shape:
                raise RuntimeError_("rms_norm: weight must be [hidden] and out shaped like input")
            x = input.float()
            out.copy_((x * torch.rsqrt(x.square().mean(-1, keepdim=True) + epsilon)).to(input.dtype) * weight)
        ''')


def tests(spec: Spec) -> dict[str, str]:
    emulate = f"{spec.family}:{spec.examples[-1]}"
    return {
        "tests/conftest.py": dedent('''\
            import pytest


            @pytest.fixture(autouse=True)
            def clean_anyaccel(anyaccel_clean_env):
                """Each test starts with no ANYACCEL_* variables and a rebuilt anyaccel state."""
            '''),
        "tests/test_conformance.py": dedent(f'''\
            """Every kernel of {spec.dist} against the conformance kit's float64 oracles, on the emulated
            {spec.family} platform (on the device itself, run `anyaccel check --provider {spec.name}`)."""

            import pytest


            @pytest.mark.anyaccel_conformance(provider="{spec.name}", emulate="{emulate}")
            def test_conformance(anyaccel_case):
                anyaccel_case.assert_passes()
            '''),
        "tests/test_golden_plan.py": dedent(f'''\
            """The kernel each op binds to per capability, with the plugin's packages and without: a change of
            selection shows up here. ANYACCEL_UPDATE_GOLDEN=1 rewrites the files; review the diff."""

            from pathlib import Path

            import pytest

            from anyaccel.conformance.golden import assert_golden_plan

            GOLDEN = Path(__file__).parent / "golden"


            @pytest.mark.parametrize("capability", {list(spec.examples)!r})
            @pytest.mark.parametrize("packages", ["all", "none"])
            def test_golden_plan(capability, packages):
                assert_golden_plan(
                    GOLDEN / f"{spec.family}-{{capability}}-{{packages}}.json",
                    f"{spec.family}:{{capability}}",
                    with_=packages,
                    plugins=("{spec.dist}",),
                )
            '''),
    }


def pyproject(spec: Spec) -> str:
    return dedent(f'''\
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{spec.dist}"
        version = "0.1.0"
        description = "anyaccel plugin: {spec.name}'s kernels for the anyaccel op contracts."
        readme = "README.md"
        requires-python = ">=3.10"
        dependencies = ["anyaccel>=0.1"]  # never pin or re-pull torch here

        [project.entry-points."anyaccel.plugins"]
        {spec.name} = "{spec.module}"

        [tool.setuptools.packages.find]
        include = ["{spec.module}*"]
        ''')


def readme(spec: Spec) -> str:
    ops = "\n".join(f"| `{op}` | `{spec.name}.{kernel_function(op)}` |" for op in spec.ops)
    emulate = f"{spec.family}:{spec.examples[-1]}"
    return (
        dedent(f"""\
        # {spec.dist}

        {spec.name}'s kernels for the anyaccel op contracts on the `{spec.family}` platform.

        ```
        pip install -e .                                   # beside anyaccel
        pytest tests                                       # conformance on the emulated platform, golden plans
        anyaccel check --provider {spec.name} --emulate {emulate}
        anyaccel explain norm.rms_norm --simulate {emulate}
        ```

        | op | kernel |
        | --- | --- |
        """)
        + ops
        + dedent(f"""

        Each kernel in `{spec.module}/kernels.py` has the op contract's exact signature (docs/ops.md of
        anyaccel) and delegates to the torch reference: replace its body with your library's call, implement
        that call's documented semantics in `{spec.module}/emulator.py`, and set `verified="emulator"` on its
        record. Emulation proves this plugin's glue (argument mapping, layouts, gating), not the vendor kernel:
        run `anyaccel check --provider {spec.name}` on the device and record the results before claiming
        `verified="hardware"`.

        CI: `.github/workflows/{spec.dist}.yml` runs the tests and the kit on any Linux runner (emulated) and on
        a self-hosted runner labelled `{spec.family}` (the device), publishing JUnit and a report.
        """)
    )


def workflow(spec: Spec) -> str:
    emulate = f"{spec.family}:{spec.examples[-1]}"
    install = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && pip install anyaccel -e ."
    return dedent(f'''\
        name: {spec.dist}
        on: [push, pull_request, workflow_dispatch]
        jobs:
          emulated:
            runs-on: ["ubuntu-latest"]
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@v5
                with: {{python-version: "3.11"}}
              - run: "{install}"
              - run: "pytest -q tests"
              - run: "anyaccel check --provider {spec.name} --emulate {emulate} --junit junit.xml --report report"
              - uses: actions/upload-artifact@v4
                if: always()
                with: {{name: conformance-emulated, path: "junit.xml\\nreport/"}}
          hardware:
            runs-on: ["self-hosted", "linux", "{spec.family}"]
            if: github.event_name != 'pull_request'
            steps:
              - uses: actions/checkout@v4
              - run: "pip install anyaccel -e ."
              - run: "ANYACCEL_STRICT=1 anyaccel check --provider {spec.name} --junit junit.xml --report report"
              - uses: actions/upload-artifact@v4
                if: always()
                with: {{name: conformance-hardware, path: "junit.xml\\nreport/"}}
        ''')


def render(spec: Spec) -> dict[str, str]:
    files = {
        "pyproject.toml": pyproject(spec),
        "README.md": readme(spec),
        f"{spec.module}/__init__.py": init_py(spec),
        f"{spec.module}/kernels.py": kernels_py(spec),
        f"{spec.module}/emulator.py": emulator_py(spec),
        f".github/workflows/{spec.dist}.yml": workflow(spec),
        **tests(spec),
    }
    if spec.new_family:
        files[f"{spec.module}/platform.py"] = platform_py(spec)
    return files
