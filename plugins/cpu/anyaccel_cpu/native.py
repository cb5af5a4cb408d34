"""The provider's C kernels (csrc/): compiled on first use for this machine, cached, loaded with ctypes.

They are plain C with portable vector types and OpenMP, built by the system C compiler (`$CC`, else `cc`)
with -march=native into ~/.cache/anyaccel/cpu-kernels/<hash>.so, the hash covering the sources, the
compiler and its flags and the CPU's model and features, so an edit, a new compiler or a home directory
shared with another kind of CPU rebuilds (a -march=native build can fault on an older CPU), and concurrent
builds never see a partial file. They link the OpenMP runtime torch has already loaded (the same
libgomp.so.1), so they share torch's threads and follow torch.set_num_threads. ctypes releases the GIL for
the duration of a call.

Without a compiler, or when the build fails, `native_missing()` says why and the kernels that need it
decline every spec, leaving the op to the next kernel.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shlex
import subprocess
import tempfile
from pathlib import Path

import torch

from anyaccel.env import cache_dir
from anyaccel.graphs import register_foreign

from . import replay

SOURCES = Path(__file__).parent / "csrc"
FLAGS = ("-O3", "-march=native", "-std=gnu11", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno")

_p, _i64, _f32, _int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_int
SIGNATURES: dict[str, tuple] = {
    "anyaccel_moe_experts_f32": (
        (_p, _i64, _i64, _p, _p, _i64, _i64, _p, _p, _i64, _p, _i64, _int, _p),
        _int,
    ),
    "anyaccel_paged_decode_f32": (
        (_p, _i64, _i64, _i64, _i64, _i64, _p, _p, _i64, _i64, _i64, _p, _i64, _p, _f32, _i64, _f32, _p, _p),
        _int,
    ),
    "anyaccel_rms_norm_f32": ((_p, _i64, _i64, _i64, _i64, _i64, _p, _f32, _p, _p, _i64, _i64), None),
    "anyaccel_rope_f32": (
        (_p, _i64, _i64, _i64, _p, _i64, _i64, _i64, _i64, _i64, _p, _p, _i64, _i64, _int, _p, _p),
        _int,
    ),
    "anyaccel_write_kv_f32": ((_p, _i64, _i64, _p, _i64, _i64, _i64, _i64, _i64, _p, _p, _i64, _p), _int),
    "anyaccel_topk_f32": ((_p, _i64, _i64, _i64, _int, _p, _int, _f32, _p, _p), _int),
    "anyaccel_gemm_f32": ((_p, _i64, _i64, _i64, _p, _i64, _p, _p), None),
    "anyaccel_silu_and_mul_f32": ((_p, _i64, _i64, _i64, _p), None),
    "anyaccel_w4_affine_f32": ((_p, _i64, _i64, _i64, _p, _i64, _p, _p, _int, _i64, _p, _p), _int),
    "anyaccel_w8_group_f32": ((_p, _i64, _i64, _i64, _p, _i64, _p, _i64, _p, _p), None),
    "anyaccel_w4_affine_dequant_f32": ((_p, _i64, _i64, _p, _p, _int, _i64, _p), None),
    "anyaccel_w8_group_dequant_f32": ((_p, _i64, _i64, _p, _i64, _p), None),
    "anyaccel_q8_available": ((), _int),
    "anyaccel_w4_affine_q8": ((_p, _i64, _i64, _i64, _p, _i64, _p, _p, _int, _i64, _p, _p), _int),
    "anyaccel_w8_group_q8": ((_p, _i64, _i64, _i64, _p, _i64, _p, _i64, _p, _p), _int),
    "anyaccel_mx_gemm_f32": ((_p, _i64, _i64, _i64, _p, _int, _p, _i64, _p, _p), None),
    "anyaccel_mx_dequant_f32": ((_p, _i64, _i64, _int, _p, _i64, _p), None),
}


class NativeBuildError(RuntimeError):
    pass


def _compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc"))


def _cpu_signature() -> str:
    """What -march=native compiles for: the CPU model and feature flags (Linux), else what Python knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    keys = ("model name", "flags", "Features", "CPU implementer", "CPU part")
    return "\n".join(sorted({line for line in lines if line.split(":")[0].strip() in keys}))


def _build_key(cc: list[str], generated: str) -> str:
    version = subprocess.run([*cc, "--version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256("\0".join([*cc, version, *FLAGS, platform.machine(), _cpu_signature()]).encode())
    for source in sorted(SOURCES.iterdir()):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    digest.update(b"replay.c\0" + generated.encode())
    return digest.hexdigest()[:16]


def _build() -> Path:
    cc = _compiler()
    generated = replay.source(SIGNATURES)  # anyaccel_replay, built with the kernels it calls
    try:
        key = _build_key(cc, generated)
    except (OSError, subprocess.CalledProcessError) as err:
        raise NativeBuildError(f"no C compiler to build the CPU kernels ({shlex.join(cc)}: {err})") from err
    target = cache_dir() / "cpu-kernels" / f"{key}.so"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        replay_c = Path(scratch) / "replay.c"
        replay_c.write_text(generated)
        sources = [*sorted(str(p) for p in SOURCES.glob("*.c")), str(replay_c)]
        build = subprocess.run([*cc, *FLAGS, "-o", staging, *sources, "-lm"], capture_output=True, text=True)
    if build.returncode:
        os.unlink(staging)
        raise NativeBuildError(f"building the CPU kernels failed ({shlex.join(cc)}):\n{build.stderr[-2000:]}")
    os.replace(staging, target)  # atomic: a concurrent build of the same key writes the same bytes
    return target


@functools.cache
def _load() -> ctypes.CDLL | NativeBuildError:
    try:
        lib = ctypes.CDLL(str(_build()))
    except NativeBuildError as err:
        return err
    except OSError as err:
        return NativeBuildError(f"loading the CPU kernels failed: {err}")
    for name, (args, result) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    # decode steps captured in host graphs replay these calls, each run of them in one anyaccel_replay
    register_foreign(lib, SIGNATURES, batch=replay.batcher(lib, SIGNATURES))
    return lib


def native_missing() -> str | None:
    """None when the C kernels are built and loaded, else why not (building them on first call)."""
    lib = _load()
    return str(lib) if isinstance(lib, NativeBuildError) else None


def native() -> ctypes.CDLL:
    """The loaded library; call native_missing() first (the kernels' `supports` do)."""
    lib = _load()
    if isinstance(lib, NativeBuildError):
        raise lib
    return lib


def ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def as_dtype(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """t in `dtype`, contiguous (no copy when it already is both)."""
    return (t if t.dtype == dtype else t.to(dtype)).contiguous()


def ids_as(op: str, name: str, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integer ids (block ids, lengths, expert ids) in the `dtype` a C kernel reads, contiguous. Ids of
    another width are range-checked in their own width before they are narrowed: an int64 id of 2**32 + 1
    must not become id 1. The contract's dtype costs nothing (no check, no copy)."""
    if t.dtype == dtype:
        return t.contiguous()
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{op}: {name} must hold integer ids, got {t.dtype}")
    info = torch.iinfo(dtype)
    if t.numel():
        low, high = (int(v) for v in torch.aminmax(t))
        if low < info.min or high > info.max:
            raise ValueError(f"{op}: {name} holds {low if low < info.min else high}, outside {dtype}'s range")
    return t.to(dtype).contiguous()
