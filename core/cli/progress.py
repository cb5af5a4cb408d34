"""A progress bar on stderr for long CLI work (tqdm when installed, silent otherwise or when disabled)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, *, enabled: bool = True) -> Iterable[T]:
    if not enabled or not sys.stderr.isatty():
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    items = list(items)
    return tqdm(items, desc=desc, total=len(items), file=sys.stderr, leave=False)
