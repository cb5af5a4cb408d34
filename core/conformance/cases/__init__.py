"""Case grids, one module per op family (cases/<family>.py exposes CASES: op -> () -> list[Case])."""

from __future__ import annotations

import importlib

from ..case import Case


def cases_for(op: str) -> list[Case]:
    family = op.split(".", 1)[0]
    try:
        module = importlib.import_module(f"{__name__}.{family}")
    except ModuleNotFoundError:
        return []
    make = getattr(module, "CASES", {}).get(op)
    cases = make() if make else []
    if family == "attention":  # again in each plugin KV layout that converts from NHD
        from .relayout import plugin_layout_cases

        cases += plugin_layout_cases(op, cases)
    return cases
