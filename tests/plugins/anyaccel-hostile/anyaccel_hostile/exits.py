"""Calls sys.exit while being imported."""

import sys

from . import hostile

ANYACCEL_PLUGIN_API = ">=1,<2"

if hostile():
    sys.exit(3)


def anyaccel_available() -> str | None:
    return "set ANYACCEL_TEST_HOSTILE=1 to make this plugin exit while it is imported"
