"""Provider names are owned. A plugin declares the providers it owns in its module:

    ANYACCEL_PROVIDERS = ("cpu",)          # kernels named cpu.* are this plugin's alone

A plugin registering a kernel under a provider another plugin owns is the intruder: it is disabled, with a
reason naming both, whatever order the plugins load in, so it can neither replace nor knock out the owner's
kernels. Two plugins declaring the same provider: the second (in load order: built-ins, then entry points by
name) is disabled. Providers nobody declares go to the first plugin that registers a kernel under them.
"""

from __future__ import annotations

from .plugins import PluginInfo, PluginSet


def declared_owners(plugins: PluginSet) -> dict[str, PluginInfo]:
    """{provider: the plugin that declares it}; a second declarer is failed."""
    owners: dict[str, PluginInfo] = {}
    for info in plugins.infos:
        if info.status != "active" or info.module is None:
            continue
        declared = getattr(info.module, "ANYACCEL_PROVIDERS", ())
        if isinstance(declared, str) or not all(isinstance(p, str) for p in declared):
            bad = TypeError("ANYACCEL_PROVIDERS must be a tuple of provider names")
            plugins.fail(info, "registration", bad)
            continue
        taken = [p for p in declared if p in owners and owners[p] is not info]
        if taken:
            first = owners[taken[0]]
            why = f"declares provider {taken[0]}, which {first.name} declared first"
            plugins.fail(info, "registration", ValueError(why))
            continue
        owners.update(dict.fromkeys(declared, info))
    return owners


def disable_intruders(plugins: PluginSet) -> None:
    """Fail every plugin that registers a kernel under a provider another plugin declares."""
    owners = declared_owners(plugins)
    for info, kernel in list(plugins.items("anyaccel_kernels")):
        owner = owners.get(kernel.provider)
        if owner is not None and owner is not info and info.status == "active":
            why = (
                f"registers kernel {kernel.name} under provider {kernel.provider}, which {owner.name} owns; "
                f"{info.name} is disabled"
            )
            plugins.fail(info, "registration", ValueError(why))
