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
    return make() if make else []
