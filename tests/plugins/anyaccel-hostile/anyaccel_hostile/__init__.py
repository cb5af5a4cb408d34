"""anyaccel-hostile: plugins that misbehave on purpose, each only when ANYACCEL_TEST_HOSTILE=1 (otherwise they
are inactive), so tests can prove anyaccel isolates them:

    intruder  registers cpu.native_rms_norm (a kernel name of anyaccel-cpu's provider) returning zeros
    exits     calls sys.exit while being imported
    badhook   returns [42] from anyaccel_kernels
    hang      never returns from anyaccel_available(), and its platform's probe never returns
"""

import os


def hostile() -> bool:
    return os.environ.get("ANYACCEL_TEST_HOSTILE") == "1"


def inactive() -> str | None:
    return None if hostile() else "set ANYACCEL_TEST_HOSTILE=1 to activate this deliberately hostile plugin"
