"""Where a result comes from: the header every machine-readable result carries (check --json, --junit and
--report, bench --json), so a published figure names its platform, software and commit."""

from __future__ import annotations

import datetime
import os
import platform as host
import subprocess
from typing import Any

import torch

# CI systems name the commit they build in one of these; otherwise `git rev-parse` in the working directory
COMMIT_VARIABLES = ("ANYACCEL_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT")


def commit() -> str | None:
    for var in COMMIT_VARIABLES:
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def header() -> dict[str, Any]:
    """{date, commit, platform, versions: {anyaccel, torch, python, plugins: {name: version}}}."""
    from anyaccel import __version__, context

    ctx = context.get()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "platform": ctx.platform.to_json(),
        "versions": {
            "anyaccel": __version__,
            "torch": torch.__version__,
            "python": host.python_version(),
            "plugins": {
                i.name: i.version for i in ctx.plugins.infos if not i.builtin and i.status == "active"
            },
        },
    }
