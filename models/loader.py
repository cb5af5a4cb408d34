"""Loading a Hugging Face checkpoint directory: config.json plus one or more *.safetensors files (sharded
checkpoints have model.safetensors.index.json). safetensors only: nothing is ever unpickled.

Each layer declares the checkpoint tensors it reads (`weight_slots`), with their full shapes and how this
rank takes its shard, so only this rank's part is read from disk (safetensors slices are lazy). Every
problem is reported before or while reading, naming the file and the tensor.
"""

from __future__ import annotations

import json
import stat
import sys
from collections import defaultdict
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from .layers.weights import WeightSlot, model_slots

INDEX = "model.safetensors.index.json"
ALWAYS_IGNORED = (".rotary_emb.inv_freq",)  # buffers that old checkpoints saved and every model recomputes


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed or does not match the model (the message names file and tensor)."""


def tensor_files(model_dir: Path) -> dict[str, Path]:
    """Tensor name -> the safetensors file holding it."""
    index = model_dir / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise CheckpointError(f"{index}: not a safetensors index with a 'weight_map' ({exc})") from None
        located = {name: model_dir / file for name, file in weight_map.items()}
        for file in sorted(set(located.values())):
            if not file.exists():
                raise CheckpointError(f"{index} names {file.name}, which does not exist")
            _regular(file)
        return located
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        others = sorted(p.name for p in model_dir.glob("*.bin")) + sorted(
            p.name for p in model_dir.glob("*.pt")
        )
        extra = f" (found {', '.join(others)}: pickled checkpoints are never loaded)" if others else ""
        raise CheckpointError(f"{model_dir}: no *.safetensors files{extra}")
    located = {}
    for file in files:
        with _open(file) as f:
            located.update(dict.fromkeys(f.keys(), file))
    return located


def tensor_shapes(located: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> stored shape, from the files' headers (no tensor data is read)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted(set(located.values())):
        with _open(file) as f:
            names = f.keys()  # a safe_open handle is not iterable
            shapes.update((name, tuple(f.get_slice(name).get_shape())) for name in names)
    return shapes


def _regular(file: Path) -> None:
    """Refuses a FIFO, device or socket by its type (stat only): opening one could block for ever."""
    if not stat.S_ISREG(file.stat().st_mode):
        raise CheckpointError(f"{file}: not a regular file (a FIFO, device or socket cannot hold tensors)")


def _open(file: Path):
    _regular(file)
    try:
        return safe_open(str(file), framework="pt", device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{file}: not a readable safetensors file ({exc})") from None


def _check_names(
    model: nn.Module, model_dir: Path, slots: dict[str, WeightSlot], located: dict[str, Path]
) -> None:
    ignored = tuple(getattr(model, "ignored", ()))
    missing = [name for name, slot in slots.items() if name not in located and not slot.optional]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CheckpointError(
            f"{model_dir}: missing tensor{'s' if len(missing) > 1 else ''} {shown} "
            f"(needed by {type(model).__name__})"
        )
    for name, file in located.items():
        if (
            name not in slots
            and not name.startswith(ignored or ("\0",))
            and not name.endswith(ALWAYS_IGNORED)
        ):
            raise CheckpointError(
                f"{file}: unexpected tensor {name} ({type(model).__name__} has no such weight)"
            )


def load_weights(
    model: nn.Module, model_dir: Path | str, *, progress: bool = True, allow_nonfinite: bool = False
) -> None:
    """Fill every parameter of `model` from the checkpoint in `model_dir`, then let layers post-process.
    A tensor holding NaN or an infinity is refused unless allow_nonfinite; integer values where the model
    holds floats always are (each error names the file and the tensor)."""
    model_dir = Path(model_dir)
    slots = {slot.name: slot for slot in model_slots(model)}
    located = tensor_files(model_dir)
    _check_names(model, model_dir, slots, located)
    by_file: dict[Path, list[str]] = defaultdict(list)
    for name in slots:
        if name in located:
            by_file[located[name]].append(name)
    bar = progress_bar(sum(map(len, by_file.values())), enabled=progress)
    for file, names in sorted(by_file.items()):
        with _open(file) as f, torch.no_grad():
            for name in names:
                _load_one(file, f, slots[name], allow_nonfinite)
                bar.update(1)
    bar.close()
    del slots  # their load closures hold the loaded parameters, which post-processing may replace
    process_after_loading(model, model_dir)


def process_after_loading(model: nn.Module, source: Path) -> None:
    """Let every layer convert what it loaded and bind its kernels (errors name the checkpoint and layer)."""
    for name, module in model.named_modules():
        process = getattr(module, "process_weights_after_loading", None)
        if callable(process):
            try:
                process()
            except ValueError as exc:  # a scheme refusing what it loaded: say which layer of which checkpoint
                raise CheckpointError(f"{source}: {name}: {exc}") from None


class _FiniteSource:
    """A safetensors slice whose float reads are checked for NaN and infinities (fp8 through float32, which
    has no isfinite of its own)."""

    def __init__(self, src) -> None:
        self.src = src

    def __getattr__(self, name: str):
        return getattr(self.src, name)

    def __getitem__(self, index) -> torch.Tensor:
        t = self.src[index]
        if t.is_floating_point() and not bool(torch.isfinite(t if t.element_size() > 1 else t.float()).all()):
            raise ValueError("holds NaN or infinite values (allow_nonfinite_weights=True accepts them)")
        return t


def _load_one(file: Path, f, slot: WeightSlot, allow_nonfinite: bool = False) -> None:
    try:
        src = f.get_slice(slot.name)
        shape = tuple(src.get_shape())
    except SafetensorError as exc:
        raise CheckpointError(f"{file}: cannot read tensor {slot.name} ({exc})") from None
    if shape != slot.shape and not (slot.shape == () and shape == (1,)):  # scalars are also stored as [1]
        raise CheckpointError(
            f"{file}: tensor {slot.name} has shape {list(shape)}, expected {list(slot.shape)}"
        )
    if slot.load is None:
        return
    try:
        slot.load(src if allow_nonfinite else _FiniteSource(src))
    except ValueError as exc:  # the values themselves: non-finite, or integers where floats belong
        raise CheckpointError(f"{file}: tensor {slot.name} {exc}") from None
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise CheckpointError(f"{file}: cannot read tensor {slot.name} ({exc})") from None


class _NoBar:
    def update(self, n: int) -> None:
        return None

    def close(self) -> None:
        return None


def progress_bar(total: int, *, enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc="loading weights", unit="tensor", file=sys.stderr, leave=False)
