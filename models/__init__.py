"""Models written once on anyaccel ops: layers, architectures, the safetensors loader and a paged-KV engine.

from anyaccel.models import LLM, SamplingParams
llm = LLM("path/to/hf-checkpoint")
outputs = llm.generate(["Hello"], SamplingParams(max_tokens=32))
"""

from __future__ import annotations

from .engine.llm import LLM, RequestOutput
from .engine.sampling import SamplingParams
from .registry import supported_architectures

__all__ = ["LLM", "RequestOutput", "SamplingParams", "supported_architectures"]
