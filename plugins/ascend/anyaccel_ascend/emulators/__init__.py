"""The plugin's emulators: torch_npu's operator API in plain torch (emulators/torch_npu/)."""

from __future__ import annotations

from anyaccel.emulation import Emulator

EMULATORS = [
    Emulator(
        modules={"torch_npu": f"{__name__}.torch_npu"},
        platforms=frozenset({"npu"}),
        provides=("torch-npu",),
    )
]
