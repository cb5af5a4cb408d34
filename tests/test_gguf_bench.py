"""`anyaccel bench model` on a GGUF file: peers, ratios, the bandwidth bound per engine, the chart, and the
profile of a decode step (time per op and outside the kernels)."""

from __future__ import annotations

import pytest
from gguf import GGMLQuantizationType as T

from anyaccel.cli.main import main
from anyaccel.models.bench import bench_model, format_report
from anyaccel.models.gguf import GgufCheckpoint
from anyaccel.models.gguf.testing import LLAMA, write_gguf
from anyaccel.models.llama_cpp_peer import kv_cache_bytes
from anyaccel.models.profile import format_profile, profile_decode


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return str(write_gguf(tmp_path_factory.mktemp("bench") / "llama.gguf", **LLAMA))


def test_bench_model_on_a_gguf_reports_ratios_and_each_engines_bound(model, tmp_path):
    result = bench_model(model, batch_sizes=(1,), input_len=8, output_len=4, repeats=1)
    [run] = result["runs"]
    assert run["ratios"]["transformers"] == run["ours"]["tokens_per_s"] / run["transformers"]["tokens_per_s"]
    bounds = result["bound_batch1"]
    # ours reads the packed 4-bit weights (about 5 bits a weight with scales and offsets) and an int8 head;
    # transformers reads the same weights dequantized to float32
    assert 4 < bounds["transformers"]["bytes_per_token"] / bounds["ours"]["bytes_per_token"] < 7
    assert bounds["ours"]["fraction"] > 0
    report = format_report(result)
    assert "vs transformers" in report and "% of the bandwidth bound" in report
    from anyaccel.models.bench import write_plot

    chart = tmp_path / "chart.png"
    write_plot(result, str(chart))
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_llama_cpp_needs_a_gguf_file(tmp_path, capsys):
    code = main(["bench", "model", "--model", str(tmp_path), "--vs", "llama.cpp"])
    assert code == 2
    assert "llama.cpp reads GGUF files" in capsys.readouterr().err


def test_profile_splits_the_decode_step_by_op(model):
    result = profile_decode(model, batch=2, input_len=8, output_len=6)
    ops = {r["op"]: r for r in result["ops"]}
    assert ops["quant.w4a16_gemm"]["calls_per_step"] == 2 * 4  # 2 layers x (qkv, o, gate_up, down)
    assert ops["quant.w8a16_gemm"]["calls_per_step"] == 1  # the int8 head
    assert result["decode_steps"] == 5
    assert result["kernels_ms"] + result["outside_kernels_ms"] == pytest.approx(result["step_ms"])
    assert 0 < result["kernels_ms"] < result["step_ms"]
    assert "outside kernels" in format_profile(result)
    assert result["graphs_off"] is None and result["graph_step_ms"] > 0  # 5 steps: capture, check, 3 replays
    assert "replayed from host graphs" in format_profile(result)


def test_llama_cpp_is_charged_for_its_kv_cache_as_we_are(model):
    """Bytes per decode token count each engine's KV cache: llama.cpp's in its own types (float16 default)."""
    config = GgufCheckpoint(model).config
    values = 10 * 2 * 2 * 16  # 10 tokens, 2 layers, 2 KV heads of 16
    assert kv_cache_bytes(config, 10, (T.F16, T.F16)) == 2 * values * 2
    assert kv_cache_bytes(config, 10, (T.Q8_0, T.F32)) == values * 34 // 32 + values * 4
