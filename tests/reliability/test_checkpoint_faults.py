"""Hostile and broken checkpoints: a config is checked before anything is built (wrong JSON types, absurd
sizes, layer counts and shapes the tensors contradict); the rotary table holds what the engine holds, not
max_position_embeddings; a FIFO where a tensor file should be is refused without blocking; integer or
non-finite weights are refused with the tensor's name; code a checkpoint ships never runs without
trust_remote_code, whatever stdin says."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from anyaccel.models import LLM
from anyaccel.models.loader import CheckpointError

ARCH = "Qwen3ForCausalLM"


@pytest.fixture
def checkpoint(tiny_checkpoints, tmp_path):
    """A private copy of the tiny checkpoint, to break."""
    return shutil.copytree(tiny_checkpoints(ARCH), tmp_path / "ckpt")


def _edit_config(path, **changes):
    config = json.loads((path / "config.json").read_text())
    config.update(changes)
    (path / "config.json").write_text(json.dumps(config))


def _llm(path, **kwargs):
    return LLM(path, dtype=torch.float32, progress=False, **kwargs)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(num_hidden_layers=5), r"num_hidden_layers is 5, but the checkpoint's tensors hold 2 layers"),
        (dict(hidden_size="64"), r"hidden_size must be an int, got str '64'"),
        (dict(hidden_size=True), r"hidden_size must be an int, got bool"),
        (dict(num_attention_heads=4.0), r"num_attention_heads must be an int, got float"),
        (dict(vocab_size=10**9), r"vocab_size is 1000000000, outside \[1, 2097152\]"),
        (dict(intermediate_size=2**40), r"intermediate_size is 1099511627776, outside"),
        (dict(max_position_embeddings=-1), r"max_position_embeddings is -1, outside"),
        (dict(rms_norm_eps="tiny"), r"rms_norm_eps must be a positive number"),
        (
            dict(vocab_size=1000),
            r"vocab_size/hidden_size \[1000, 64\] disagree with tensor model\.embed_tokens",
        ),
        (dict(intermediate_size=4096), r"disagree with tensor model\.layers\.0\.mlp\.down_proj\.weight"),
    ],
)
def test_a_bad_config_is_refused_before_anything_is_built(checkpoint, changes, message):
    _edit_config(checkpoint, **changes)
    with pytest.raises(ValueError, match=message) as info:
        _llm(checkpoint)
    assert "config.json" in str(info.value)


def test_the_rotary_table_holds_what_the_engine_holds(checkpoint):
    _edit_config(checkpoint, max_position_embeddings=2**26)  # 64M positions: 16 GiB of cos/sin at head dim 16
    llm = _llm(checkpoint, max_model_len=256)
    tables = [m.cos_sin_cache for m in llm.model.modules() if hasattr(m, "cos_sin_cache")]
    assert tables and all(t.shape[0] == 256 for t in tables)


def _refused_without_blocking(make, match: str) -> None:
    """make() must raise `match` within 20 s; a reader blocked on a FIFO would never return."""
    outcome: list[BaseException | None] = []

    def attempt():
        try:
            make()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(20)
    assert outcome, "blocked on a FIFO"
    assert outcome[0] is not None and match in str(outcome[0]), outcome


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_where_a_safetensors_file_should_be_is_refused(checkpoint):
    (checkpoint / "model.safetensors").unlink()
    os.mkfifo(checkpoint / "model.safetensors")
    _refused_without_blocking(lambda: _llm(checkpoint), "model.safetensors: not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_like_a_gguf_file_is_refused(tmp_path):
    os.mkfifo(tmp_path / "model.gguf")
    _refused_without_blocking(lambda: _llm(tmp_path / "model.gguf"), "no config.json")


def _rewrite_tensor(path, name, fn):
    tensors = load_file(path / "model.safetensors")
    tensors[name] = fn(tensors[name])
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})


def test_integer_weights_where_floats_belong_are_refused(checkpoint):
    _rewrite_tensor(checkpoint, "model.norm.weight", lambda t: t.round().to(torch.int64))
    with pytest.raises(CheckpointError, match=r"tensor model\.norm\.weight holds torch\.int64 values"):
        _llm(checkpoint)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_unless_allowed(checkpoint, bad):
    name = "model.layers.1.mlp.up_proj.weight"

    def poison(t):
        t = t.clone()
        t[3, 5] = bad
        return t

    _rewrite_tensor(checkpoint, name, poison)
    with pytest.raises(CheckpointError, match=rf"tensor {name} holds NaN or infinite values"):
        _llm(checkpoint)
    _llm(checkpoint, allow_nonfinite_weights=True)  # the option


def _remote_code_checkpoint(checkpoint, marker):
    """A config type and a tokenizer that only the checkpoint's own modules define; importing either
    writes `marker`. transformers, left to decide (trust_remote_code=None), asks on stdin and runs them."""
    _edit_config(checkpoint, model_type="shipped", auto_map={"AutoConfig": "configuration_shipped.Shipped"})
    for module, base in (
        ("configuration_shipped", "PretrainedConfig"),
        ("tokenization_shipped", "PreTrainedTokenizer"),
    ):
        (checkpoint / f"{module}.py").write_text(
            f"open({str(marker)!r}, 'w').write('ran')\n"
            f"from transformers import {base}\n"
            f"class Shipped({base}):\n    model_type = 'shipped'\n"
        )
    (checkpoint / "tokenizer_config.json").write_text(
        json.dumps({"auto_map": {"AutoTokenizer": ["tokenization_shipped.Shipped", None]}})
    )


def test_code_a_checkpoint_ships_never_runs_because_stdin_says_yes(checkpoint, tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    _remote_code_checkpoint(checkpoint, marker)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\nyes\ny\n"))
    with pytest.raises(ValueError, match="trust_remote_code"):
        _llm(checkpoint)
    assert not marker.exists()


def test_the_cli_refuses_shipped_code_without_its_flag(checkpoint, tmp_path, monkeypatch, capsys):
    from anyaccel.cli.main import main

    marker = tmp_path / "ran"
    _remote_code_checkpoint(checkpoint, marker)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n" * 4))
    code = main(["run", "--model", str(checkpoint), "--prompt", "hi", "--max-tokens", "1", "--json"])
    assert code == 2 and not marker.exists()
    assert "trust_remote_code" in capsys.readouterr().err
