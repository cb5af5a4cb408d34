"""Case grids, one module per op family (cases/<family>.py exposes CASES: op -> () -> list[Case])."""

from __future__ import annotations

import importlib

from ..case import Case

# families whose cases span more than one module: the microscaling quant ops have their own
MODULES = {"quant": ("quant", "mx", "a8")}


def cases_for(op: str) -> list[Case]:
    family = op.split(".", 1)[0]
    cases: list[Case] = []
    for name in MODULES.get(family, (family,)):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError:
            return []
        make = getattr(module, "CASES", {}).get(op)
        cases += make() if make else []
    if family == "attention":  # again in each plugin KV layout that converts from NHD
        from .relayout import plugin_layout_cases

        cases += plugin_layout_cases(op, cases)
    return cases
