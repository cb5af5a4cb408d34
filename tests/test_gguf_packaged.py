"""`anyaccel run` with no model: the packaged SmolLM2-135M-Instruct GGUF (Q4_1), kept quantized, answers the
fixed questions through its chat template and matches transformers on the same file. Loaded once."""

from __future__ import annotations

import json

import pytest

from anyaccel.cli.main import main
from anyaccel.models.packaged import packaged_gguf


@pytest.mark.slow
def test_default_run_answers_with_the_packaged_gguf(capsys):
    try:
        packaged_gguf()
    except FileNotFoundError as exc:  # make install installs it; a bare pip install may not
        pytest.skip(str(exc))
    assert main(["run", "--json", "--max-tokens", "16"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["architecture"] == "LlamaForCausalLM" and data["model"]["chat_template"]
    assert data["model"]["gguf"]["schemes"] == {"w4_affine": 120, "w8_group": 1}  # 30 layers x 4, the head
    assert data["model"]["gguf"]["dequantized_layers"] == []
    kernels = {k["op"]: k["kernel"] for k in data["kernels"]}
    [w4] = [k for k in data["kernels"] if k["op"] == "quant.w4a16_gemm"]
    assert w4["formats"] == ["affine"]
    assert "linear.gemm" not in kernels  # no dense linear layer is left
    assert kernels["quant.w4a16_gemm"] in ("cpu.native_w4a16_affine", "reference.w4a16_gemm")
    first = data["outputs"][0]
    assert first["prompt"] == "What is the capital of France?" and "Paris" in first["completion"]
    cmp = data["compare_transformers"]
    assert cmp["tokens_match"] and cmp["ok"], cmp


@pytest.mark.slow
def test_the_gguf_tokenizer_is_converted_once_and_cached(tmp_path, monkeypatch):
    """The second load reads the saved conversion (no GGUF metadata read) and behaves exactly as the
    converted one: ids, text, chat template, special tokens; a damaged entry is rebuilt from the file."""
    from anyaccel.models.engine import tokenizer as tok

    try:
        path = packaged_gguf()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = tok.load_tokenizer(path, 49152)
    entry = tok.gguf_tokenizer_cache(path)
    assert (entry / "tokenizer.json").is_file() and entry.is_relative_to(tmp_path)

    import transformers

    calls = []
    real = transformers.AutoTokenizer.from_pretrained

    def recorded(*args, **kwargs):
        calls.append(kwargs.get("gguf_file"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", recorded)
    cached = tok.load_tokenizer(path, 49152)
    assert calls == [None]  # read from the cache entry, not converted from the file
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    for t in (fresh, cached):
        assert t.chat(chat) == fresh.chat(chat)
        for text in ("What is the capital of France?", "héllo  wörld\n\t<|im_start|> 123", "日本語"):
            assert t.encode(text) == fresh.encode(text) and t.decode(t.encode(text)) == fresh.decode(
                fresh.encode(text)
            )
    assert cached.hf.special_tokens_map == fresh.hf.special_tokens_map

    (entry / "tokenizer.json").write_text("{ not json")
    calls.clear()
    rebuilt = tok.load_tokenizer(path, 49152)
    assert calls == [None, path.name] and rebuilt.chat(chat) == fresh.chat(chat)
    assert json.loads((entry / "tokenizer.json").read_text())  # the entry is whole again
