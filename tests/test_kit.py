"""The conformance kit never passes empty, says why cases were skipped, shows values on failure; golden plans;
KV-cache layouts from plugins; `anyaccel explain` with a spec from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import anyaccel
from anyaccel import context
from anyaccel.cli.main import main
from anyaccel.conformance.golden import UPDATE_VARIABLE, assert_golden_plan, plan
from anyaccel.ops.attention import AttentionSpec

GOLDEN = Path(__file__).parent / "golden"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_with_nothing_runnable_exits_nonzero_saying_why(test_plugins, capsys):
    code, out, err = run(capsys, "check", "--provider", "testchip")
    assert code == 1
    assert "nothing to check for provider testchip on cpu" in err
    assert "testchip.rms_norm: runs on testchip; this platform is cpu" in err
    assert "ANYACCEL_EMULATE=testchip:<capability>" in err
    code, _, err = run(capsys, "check", "--provider", "acme")
    assert code == 1 and "no such kernel is registered" in err and "anyaccel-broken-import: failed" in err


def test_check_where_every_case_is_skipped_fails_and_lists_the_skip_reasons(test_plugins, capsys):
    code, out, err = run(capsys, "check", "--kernel", "testchip.silu_tc2", "--emulate", "testchip:tc_1")
    assert code == 1
    assert "nothing to check for kernel testchip.silu_tc2 on testchip (tc_1, emulated)" in err
    assert "every case was skipped" in err
    assert "x needs testchip capability tc_2..tc_3; this device is tc_1" in out
    code, out, err = run(capsys, "check", "--kernel", "testchip.silu_tc2", "--emulate", "testchip:tc_2")
    assert code == 0 and "0 failed" in out, err


def test_failures_show_values_next_to_the_error(test_plugins, monkeypatch, capsys):
    monkeypatch.setenv("ANYACCEL_TEST_WRONG", "1")
    code, out, _ = run(capsys, "check", "--provider", "wrongkernel", "--op", "norm.rms_norm", "--json")
    data = json.loads(out)
    assert code == 1
    detail = data["kernels"][0]["failures"][0]["detail"]
    assert detail.startswith("out of tolerance: out (max abs ")
    assert detail.count("got ") == 3 and detail.count(", expected ") == 3, detail


PYTEST_FILE = """
import pytest

@pytest.mark.anyaccel_conformance(provider="testchip", op="norm.rms_norm"{extra})
def test_conformance(anyaccel_case):
    anyaccel_case.assert_passes()
"""


def test_the_pytest_plugin_never_passes_empty(test_plugins, pytester):
    pytester.makepyfile(PYTEST_FILE.format(extra=""))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # testchip is not detected here: one failing item says why
    result.stdout.fnmatch_lines(["*nothing-to-check*", "*runs on testchip; this platform is cpu*"])


def test_the_pytest_plugin_runs_a_plugin_on_its_emulated_platform(test_plugins, pytester):
    pytester.makepyfile(PYTEST_FILE.format(extra=', emulate="testchip:tc_2"'))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider", "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0 and "failed" not in outcomes, outcomes
    result.stdout.fnmatch_lines(["SKIPPED*dtype float16 not supported (has bfloat16, float32)"])


@pytest.mark.parametrize("capability", ["tc_1", "tc_2", "tc_3"])
@pytest.mark.parametrize("packages", ["all", "none"])
def test_golden_plans_of_the_test_plugin(test_plugins, capability, packages):
    assert_golden_plan(
        GOLDEN / f"testchip-{capability}-{packages}.json",
        f"testchip:{capability}",
        with_=packages,
        plugins=("anyaccel-testchip",),
    )


def test_a_changed_plan_fails_naming_the_op(test_plugins, tmp_path, monkeypatch):
    path = tmp_path / "plan.json"
    monkeypatch.setenv(UPDATE_VARIABLE, "1")
    assert_golden_plan(path, "testchip:tc_2", with_="none", plugins=("anyaccel-testchip",))
    monkeypatch.delenv(UPDATE_VARIABLE)
    saved = json.loads(path.read_text())
    assert saved["plan"]["norm.rms_norm"] == "testchip.rms_norm"
    with pytest.raises(AssertionError, match=r"norm.rms_norm: testchip.rms_norm -> testchip.rt_rms_norm"):
        assert_golden_plan(path, "testchip:tc_2", with_="all", plugins=("anyaccel-testchip",))
    assert plan("cuda:sm_90", plugins=())["plan"]["norm.rms_norm"] == "triton.rms_norm"


def test_plugins_register_kv_layouts_and_reset_forgets_them(test_plugins, monkeypatch):
    assert "TC_HND" in context.get().kv_layouts
    anyaccel.ops.attention  # noqa: B018 - the spec check consults the same table
    assert AttentionSpec(kv_layout="TC_HND").kv_layout == "TC_HND"
    res = anyaccel.resolve("attention.decode", AttentionSpec(kv_layout="TC_HND"), provider="reference")
    assert "reads KV layouts NHD, HND only; the cache is TC_HND" in res.candidates[0].reason
    monkeypatch.setenv("ANYACCEL_PLUGINS", "none")
    anyaccel.reset()
    assert set(context.get().kv_layouts) == {"NHD", "HND"}
    with pytest.raises(ValueError, match="kv_layout must be one of"):
        anyaccel.resolve("attention.decode", AttentionSpec(kv_layout="TC_HND"))


def test_explain_takes_a_spec_from_the_command_line(capsys):
    code, out, _ = run(
        capsys,
        *("explain", "attention.decode", "--dtype", "bfloat16", "--set", "head_dim=256"),
        *("--spec", '{"num_kv_heads": 2, "kv_dtype": "float8_e4m3fn"}', "--json"),
    )
    assert code == 0
    spec = json.loads(out)["spec"]
    assert "dtype=torch.bfloat16" in spec and "head_dim=256" in spec and "num_kv_heads=2" in spec
    assert "kv_dtype=torch.float8_e4m3fn" in spec
    for bad, message in (
        (("--set", "heads=4"), "its spec has no field 'heads'; fields: block_size"),
        (("--set", "head_dim=big"), "head_dim must be int, got 'big'"),
        (("--dtype", "float99"), "dtype must be a torch dtype name"),
        (("--spec", "[1]"), "--spec must be a JSON object"),
    ):
        code, _, err = run(capsys, "explain", "attention.decode", *bad)
        assert code == 2 and message in err, err


def test_the_op_reference_in_the_docs_is_generated_from_the_contracts():
    from anyaccel.ops import CORE_OPS
    from anyaccel.ops.doc import main as doc_main
    from anyaccel.ops.doc import signature

    page = Path(__file__).parents[1] / "docs" / "ops.md"
    assert doc_main(["--check", str(page)]) == 0, (
        "docs/ops.md is stale: python -m anyaccel.ops.doc docs/ops.md"
    )
    text = page.read_text()
    assert all(signature(op) in text for op in CORE_OPS)


def test_explain_gives_a_changed_attention_spec_the_cache_a_model_would_get(capsys):
    # on gfx942 the default head dim 128 reads AITER's assembly layout; head dim 64 is served on NHD pages
    argv = ("explain", "attention.decode", "--emulate", "rocm:gfx942", "--json")
    default = json.loads(run(capsys, *argv)[1])
    changed = json.loads(run(capsys, *argv, "--set", "head_dim=64")[1])
    assert default["selected"] == "aiter.pa_asm_decode" and "AITER_PA_ASM" in default["spec"]
    assert changed["selected"] == "aiter.paged_decode" and "kv_layout='NHD'" in changed["spec"]
