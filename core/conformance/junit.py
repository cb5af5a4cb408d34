"""`anyaccel check --junit FILE`: the kit's results as JUnit XML, one test case per (kernel, case).

CI systems (GitHub, GitLab, Jenkins, Buildkite) render this format natively: a failed case shows the kit's
message (error size and the worst elements), a skipped one the reason it was not run. The platform,
versions and commit are test-suite properties.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import KernelReport


def to_xml(reports: Sequence[KernelReport], header: dict[str, Any]) -> ET.ElementTree:
    results = [(r, c) for r in reports for c in r.results]
    platform = header["platform"]
    suite = ET.Element(
        "testsuite",
        name=f"anyaccel conformance on {platform['name']} {platform['capability']}",
        tests=str(len(results)),
        failures=str(sum(c.status == "failed" for _, c in results)),
        skipped=str(sum(c.status == "skipped" for _, c in results)),
        errors="0",
        time=f"{sum(c.seconds for _, c in results):.3f}",
        timestamp=header["date"],
    )
    props = ET.SubElement(suite, "properties")
    flat = {
        "platform": platform["name"],
        "capability": platform["capability"],
        "device": platform["device_name"],
        "emulated": str(platform.get("emulated", False)).lower(),
        "commit": header["commit"] or "unknown",
        **{f"version.{k}": str(v) for k, v in header["versions"].items() if k != "plugins"},
        **{f"plugin.{k}": v for k, v in header["versions"]["plugins"].items()},
    }
    for name, value in flat.items():
        ET.SubElement(props, "property", name=name, value=value)
    for report, case in results:
        kernel = report.kernel
        tc = ET.SubElement(
            suite,
            "testcase",
            classname=f"{kernel.op}.{kernel.name}",
            name=case.case,
            time=f"{case.seconds:.3f}",
        )
        if case.status == "failed":
            ET.SubElement(tc, "failure", message=case.detail[:500]).text = case.detail
        elif case.status == "skipped":
            ET.SubElement(tc, "skipped", message=case.detail)
    ET.indent(suite)
    return ET.ElementTree(suite)


def write(reports: Sequence[KernelReport], header: dict[str, Any], path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    to_xml(reports, header).write(path, encoding="utf-8", xml_declaration=True)
