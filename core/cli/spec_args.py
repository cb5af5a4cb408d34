"""Building an op's spec from the command line: `--dtype`, `--set FIELD=VALUE` (repeatable), `--spec JSON`.

Fields not given keep the op's default spec for the platform. Values are converted by the spec field's type:
dtype names (`bfloat16`, `float8_e4m3fn`) for torch.dtype fields, `true`/`false` for booleans, numbers for
ints and floats, JSON for anything else. An unknown field or a bad value is an error naming the field and
what it accepts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from typing import Any

import torch

from anyaccel.ops.base import OpDef


def add_spec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", help="the spec's compute dtype, e.g. bfloat16")
    p.add_argument(
        "--set",
        dest="spec_set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set one spec field, e.g. --set head_dim=256 --set kv_dtype=float8_e4m3fn (repeatable)",
    )
    p.add_argument(
        "--spec", dest="spec_json", metavar="JSON", help="spec fields as JSON, e.g. '{\"top_k\": 2}'"
    )


def spec_from_args(opdef: OpDef, default: Any, args: argparse.Namespace) -> Any:
    """`default` with the fields the arguments name replaced; `default` itself when they name none."""
    given: dict[str, Any] = {}
    if args.spec_json:
        try:
            loaded = json.loads(args.spec_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--spec is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError("--spec must be a JSON object of spec fields")
        given.update(loaded)
    for item in args.spec_set:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE, e.g. head_dim=256")
        given[name.strip()] = value.strip()
    if args.dtype:
        given["dtype"] = args.dtype
    if not given:
        return default
    hints = typing.get_type_hints(opdef.spec_type)
    fields = {f.name for f in dataclasses.fields(opdef.spec_type)}
    changes = {}
    for name, value in given.items():
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ValueError(f"{opdef.name}: its spec has no field {name!r}; fields: {known}")
        changes[name] = _convert(opdef.name, name, value, hints.get(name))
    return dataclasses.replace(default, **changes)


def _convert(op: str, name: str, value: Any, hint: Any) -> Any:
    if not isinstance(value, str):
        return tuple(value) if isinstance(value, list) else value
    kinds = typing.get_args(hint) or (hint,)
    if value.lower() in ("none", "null") and type(None) in kinds:
        return None
    if torch.dtype in kinds:
        dtype = getattr(torch, value.removeprefix("torch."), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{op}: {name} must be a torch dtype name such as bfloat16, got {value!r}")
        return dtype
    if bool in kinds:
        if value.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{op}: {name} must be true or false, got {value!r}")
        return value.lower() in ("true", "1")
    for kind in (int, float):
        if kind in kinds:
            try:
                return kind(value)
            except ValueError:
                raise ValueError(f"{op}: {name} must be {kind.__name__}, got {value!r}") from None
    if str in kinds:
        return value
    try:
        loaded = json.loads(value)
    except json.JSONDecodeError:
        return value
    return tuple(loaded) if isinstance(loaded, list) else loaded
