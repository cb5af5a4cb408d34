"""LLM: the Python API. `LLM(model_dir).generate(prompts, SamplingParams(...))`."""

from __future__ import annotations

import time
from collections import abc
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import ModelConfig
from ..config_checks import check_against_tensors, check_config
from ..gguf import GgufCheckpoint, is_gguf
from ..layers.attention import CacheConfig
from ..loader import tensor_files, tensor_shapes
from ..parallel import init_parallel, peer_failure
from .admission import abort, check_requests, rejection
from .block_manager import BlockManager
from .model_runner import ModelRunner
from .sampler import sample
from .sampling import SamplingParams
from .scheduler import Scheduler
from .sequence import Sequence
from .tokenizer import load_tokenizer


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    token_ids: list[int]
    text: str
    logits: torch.Tensor | None  # [len(token_ids), vocab] float32 when SamplingParams.return_logits
    finish_reason: str = "length"  # "length": max_tokens reached; "stop": an end-of-sequence token


@dataclass
class Stats:
    """Tokens and seconds of the steps that prefilled prompts and of the steps that only decoded."""

    prefill_tokens: int = 0
    prefill_s: float = 0.0
    decode_tokens: int = 0
    decode_s: float = 0.0
    steps: list[tuple[int, int, float]] = field(default_factory=list)  # (prefill tokens, decode tokens, s)


class LLM:
    """model_dir: a Hugging Face checkpoint directory or a GGUF file (its quantized layers stay quantized
    unless dequantize=True; activations="int8" multiplies them with activations quantized to int8 per 32
    features, llama.cpp's arithmetic: quant.w4a8_gemm / w8a8_gemm). dtype: "auto" (the checkpoint's, when
    the platform computes in it, else float32), or a torch dtype / its name. block_size: tokens per KV-cache
    block, None for the size the platform's attention kernels read (16 when any will do). Under torchrun the
    model is split across the ranks (tensor parallel; expert_parallel=True splits MoE experts instead).
    trust_remote_code: let transformers run code the checkpoint ships (its tokenizer's); off, such a
    checkpoint is refused and nothing is asked on stdin. allow_nonfinite_weights: accept NaN/inf weights.
    enforce_eager: run every decode step through Python; by default decode steps on the host replay a
    recorded graph of kernel calls where every bound kernel allows it (`llm.runner.graphs_off` says why
    not otherwise; anyaccel.models.engine.decode_graphs); after changing the model in Python (a module or
    a bound kernel replaced), call `llm.runner.reset_graphs()`."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        dtype: str | torch.dtype = "auto",
        block_size: int | None = None,
        kv_cache_dtype: torch.dtype | None = None,
        max_model_len: int | None = None,
        num_blocks: int | None = None,
        kv_cache_bytes: int = 1 << 30,
        max_num_seqs: int = 64,
        max_num_batched_tokens: int = 8192,
        expert_parallel: bool = False,
        compile: bool = False,
        progress: bool = True,
        dequantize: bool = False,
        trust_remote_code: bool = False,
        allow_nonfinite_weights: bool = False,
        activations: str = "float",
        enforce_eager: bool = False,
    ):
        self.model_dir = Path(model_dir)
        self.gguf = GgufCheckpoint(self.model_dir) if is_gguf(self.model_dir) else None
        if self.gguf is not None:
            self.config = ModelConfig(self.gguf.config, self.model_dir)
        else:
            self.config = ModelConfig.from_dir(self.model_dir)
        check_config(self.config)  # before anything is built from it
        check_against_tensors(self.config, self._stored_shapes())
        self.parallel = init_parallel(expert_parallel)
        max_model_len = max_model_len or min(self.config.max_position_embeddings, 4096)
        self.config.max_model_len = max_model_len
        self.runner = ModelRunner(
            self.model_dir,
            self.config,
            self.parallel,
            dtype=dtype,
            cache=CacheConfig(block_size, kv_cache_dtype),
            max_model_len=max_model_len,
            num_blocks=num_blocks,
            kv_cache_bytes=kv_cache_bytes,
            max_num_seqs=max_num_seqs,
            compile=compile,
            progress=progress,
            gguf=self.gguf,
            dequantize=dequantize,
            allow_nonfinite_weights=allow_nonfinite_weights,
            activations=activations,
            enforce_eager=enforce_eager,
        )
        self.max_model_len = max_model_len
        self.blocks = BlockManager(self.runner.num_blocks, self.runner.block_size)
        self.scheduler = Scheduler(
            self.blocks, max_num_seqs, max(max_num_batched_tokens, max_model_len), self._eos_ids()
        )
        self.tokenizer = load_tokenizer(
            self.model_dir,
            self.config.vocab_size,
            self.gguf is None or self.gguf.has_tokenizer,
            trust_remote_code=trust_remote_code,
        )
        self.stats = Stats()

    def _stored_shapes(self) -> dict[str, tuple[int, ...]]:
        """The checkpoint's tensor names and stored shapes, from headers only (GGUF: names only)."""
        if self.gguf is not None:
            return dict.fromkeys(self.gguf.gguf_tensors, ())
        return tensor_shapes(tensor_files(self.model_dir))

    @property
    def model(self) -> torch.nn.Module:
        return self.runner.model

    def _eos_ids(self) -> set[int]:
        eos = self.config.get("eos_token_id")
        return set(eos) if isinstance(eos, list) else ({eos} if eos is not None else set())

    def generate(
        self,
        prompts: abc.Sequence[str | list[int]],
        params: SamplingParams | list[SamplingParams] | None = None,
    ) -> list[RequestOutput]:
        """One output per prompt, in order. A prompt is text (tokenized here) or a list of token ids; `params`
        is one SamplingParams for all prompts or one per prompt."""
        per_prompt = params if isinstance(params, list) else [params or SamplingParams()] * len(prompts)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(per_prompt)} SamplingParams")
        encoded = [self.tokenizer.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        vocab = self.config.vocab_size
        check_requests(
            [
                rejection(ids, p, vocab, self.max_model_len, self.blocks)
                for ids, p in zip(encoded, per_prompt, strict=True)
            ]
        )
        seqs = [Sequence(ids, p, self.blocks.block_size) for ids, p in zip(encoded, per_prompt, strict=True)]
        for seq in seqs:
            self.scheduler.add(seq)
        try:
            while not self.scheduler.done:
                self.step()
        except BaseException as exc:
            abort(self.scheduler, seqs)  # the next generate() starts from a clean scheduler and cache
            failure = peer_failure(self.parallel, exc)
            if failure is not None:
                raise failure from exc
            raise
        return [self._output(seq) for seq in seqs]

    def step(self) -> None:
        prefill, decode = self.scheduler.schedule()
        start = time.perf_counter()
        batch = prefill + decode
        if not batch:  # admission makes this unreachable; never spin on it
            raise RuntimeError("the scheduler has sequences waiting but none it can run")
        logits = self.runner.run(prefill, decode)
        tokens = sample(logits, batch)
        elapsed = time.perf_counter() - start
        new_tokens = sum(len(s) - s.num_cached_tokens for s in prefill)
        self.stats.steps.append((new_tokens, len(decode), elapsed))
        if prefill:
            self.stats.prefill_tokens += new_tokens
            self.stats.prefill_s += elapsed
        else:
            self.stats.decode_tokens += len(decode)
            self.stats.decode_s += elapsed
        for seq, row in zip(batch, logits, strict=True):
            if seq.params.return_logits:
                seq.logits.append(row.cpu())
        self.scheduler.finish_step(batch, tokens)

    def _output(self, seq: Sequence) -> RequestOutput:
        logits = torch.stack(seq.logits) if seq.params.return_logits else None
        completion = seq.completion_token_ids
        reason = "length" if len(completion) >= seq.params.max_tokens else "stop"
        prompt = seq.token_ids[: seq.num_prompt_tokens]
        return RequestOutput(prompt, completion, self.tokenizer.decode(completion), logits, reason)
