"""Machine-readable conformance results: JUnit XML, the published report (markdown, heat map, JSON) and the
provenance header every result carries."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from anyaccel.cli.main import main


def test_junit_and_report_of_a_run_with_a_wrong_kernel(test_plugins, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ANYACCEL_TEST_WRONG", "1")
    monkeypatch.setenv("ANYACCEL_COMMIT", "0123456789abcdef")
    junit, report = tmp_path / "ci" / "junit.xml", tmp_path / "report"
    code = main(["check", "--op", "norm.rms_norm", "--junit", str(junit), "--report", str(report), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["header"]["commit"] == "0123456789abcdef" and data["header"]["platform"]["name"] == "cpu"
    assert data["header"]["versions"]["torch"].startswith("2.13")

    suite = ET.parse(junit).getroot()
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases) == data["passed"] + data["failed"] + data["skipped"]
    failed = [c for c in cases if c.find("failure") is not None]
    assert int(suite.get("failures")) == len(failed) == data["failed"] > 0
    assert {c.get("classname") for c in failed} == {"norm.rms_norm.wrongkernel.rms_norm"}
    assert "got " in failed[0].find("failure").get("message")
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert len(skipped) == data["skipped"] and "not supported" in skipped[0].find("skipped").get("message")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["commit"] == "0123456789abcdef" and props["platform"] == "cpu"

    md = (report / "report.md").read_text()
    assert md.startswith("# Conformance: cpu ")
    assert "commit: 0123456789abcdef" in md and "`wrongkernel.rms_norm`" in md and "## Failures" in md
    assert "## Skipped cases, by reason" in md
    assert (report / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((report / "results.json").read_text())
    assert saved["failed"] == data["failed"] and saved["header"]["commit"] == "0123456789abcdef"


def test_the_heat_map_groups_cases_by_family():
    from anyaccel.conformance.report import FAILED, PASSED, SKIPPED, cell, families
    from anyaccel.conformance.runner import CaseResult, KernelReport
    from anyaccel.registry import Kernel

    report = KernelReport(Kernel("norm.rms_norm", "x.k", "m:f"), "cpu")
    report.results = [
        CaseResult("a", "passed", family="float32"),
        CaseResult("b", "skipped", family="float16"),
        CaseResult("c", "failed", family="bfloat16 large"),
        CaseResult("d", "passed", family="bfloat16 large"),
    ]
    assert families([report]) == ["float16", "float32", "bfloat16 large"]
    assert cell(report, "float32") == (PASSED, "1/0/0")
    assert cell(report, "float16") == (SKIPPED, "0/0/1")
    assert cell(report, "bfloat16 large") == (FAILED, "1/1/0")
