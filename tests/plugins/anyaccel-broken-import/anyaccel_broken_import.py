"""anyaccel-broken-import: a plugin whose module raises while being imported (a missing vendor library,
say). anyaccel must list it as failed and carry on."""

from __future__ import annotations

ANYACCEL_PLUGIN_API = ">=1,<2"

raise RuntimeError("libtestvendor.so: cannot open shared object file\nsecond line that info must not show")
