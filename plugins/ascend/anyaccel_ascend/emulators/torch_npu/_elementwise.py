"""Norms, rotary embeddings and SwiGLU (torch_npu 2.14 _op_plugin_docs.py and meta registrations).

npu_rms_norm(self, gamma, epsilon=1e-06) -> (y, rstd)
    self float16/bfloat16/float32, 2-8 dims; gamma the same dtype, the trailing dims of self.
    rstd = rsqrt(mean(x^2) + eps) over gamma's dims, float32, shaped like self with those dims set to 1;
    y = x * rstd * gamma. The docs give the formula, not its roundings; emulated as the float32 normalised
    x rounded to the input dtype, then times gamma (the order of the RMSNorm it replaces in vLLM).
npu_add_rms_norm(x1, x2, gamma, epsilon=1e-06) -> (y, rstd, x)
    x = x1 + x2 (rounded to the input dtype: the returned residual stream); y = rms_norm(x) as above.
npu_mrope(positions, query, key, cos_sin_cache, head_size, *, mrope_section=None, rotary_mode='half',
          cache_mode='default') -> (query_out, key_out)
    rope mode (1-D positions, mrope_section None or [0, 0, 0]); query/key 2-D [T, heads*head_size];
    cos_sin_cache 2-D [max_pos, rotary_dim] (cos halves then sin halves); rotary_dim a multiple of 32 for
    16-bit inputs and of 16 for float32, <= head_size (later channels pass through), in the query's dtype
    (SGLang's NPU rope avoids a float32 cache with a bfloat16 query); positions inside the
    cache; rotary_mode "half" (NeoX) or "interleave" (GPT-J). mrope sections and cache_mode "interleave"
    are not emulated.
npu_apply_rotary_pos_emb(query, key, cos, sin, *, layout='BSND', rotary_mode='half') -> (query, key)
    Atlas A2/A3 and inference (310P) products: layout BSND (4-D) or TND (3-D), head dim 64 or 128, cos/sin
    with one head and the full head dim, one dtype for all four, "half" mode only; updates query and key in
    place and returns them.
npu_swiglu(self, dim=-1) -> out
    float32/float16/bfloat16, 1-8 dims; A, B = the halves of `dim`; out = A * sigmoid(A) * B.
"""

from __future__ import annotations

import torch

from ._checks import FLOATS, NotEmulated, dtype_of_soc, require


def _rms(x: torch.Tensor, gamma: torch.Tensor, eps: float, fn: str) -> tuple[torch.Tensor, torch.Tensor]:
    require(x.dtype in FLOATS, fn, f"dtype {x.dtype}: float16, bfloat16 or float32")
    dtype_of_soc(fn, x.dtype)
    require(2 <= x.dim() <= 8, fn, f"input must have 2-8 dims, got {x.dim()}")
    require(gamma.dtype == x.dtype, fn, "gamma must have the input's dtype")
    require(
        tuple(x.shape[x.dim() - gamma.dim() :]) == tuple(gamma.shape), fn, "gamma must be x's trailing dims"
    )
    dims = tuple(range(x.dim() - gamma.dim(), x.dim()))
    xf = x.float()
    rstd = torch.rsqrt(xf.square().mean(dims, keepdim=True) + eps)
    return (xf * rstd).to(x.dtype) * gamma, rstd


def npu_rms_norm(
    self: torch.Tensor, gamma: torch.Tensor, epsilon: float = 1e-06
) -> tuple[torch.Tensor, torch.Tensor]:
    return _rms(self, gamma, epsilon, "npu_rms_norm")


def npu_add_rms_norm(
    x1: torch.Tensor, x2: torch.Tensor, gamma: torch.Tensor, epsilon: float = 1e-06
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    fn = "npu_add_rms_norm"
    require(x1.shape == x2.shape and x1.dtype == x2.dtype, fn, "x1 and x2 must share shape and dtype")
    x = (x1.float() + x2.float()).to(x1.dtype)
    y, rstd = _rms(x, gamma, epsilon, fn)
    return y, rstd, x


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, neox: bool) -> torch.Tensor:
    """x [..., r] float32, cos/sin [..., r/2] -> the rotated x."""
    if neox:
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2)


def npu_mrope(
    positions: torch.Tensor,
    query: torch.Tensor,
    key: torch.Tensor,
    cos_sin_cache: torch.Tensor,
    head_size: int,
    *,
    mrope_section: list[int] | None = None,
    rotary_mode: str | None = "half",
    cache_mode: str | None = "default",
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_mrope"
    if positions.dim() != 1 or (mrope_section is not None and any(mrope_section)):
        raise NotEmulated(f"torch_npu.{fn}: multimodal sections are not emulated (rope mode is)")
    if cache_mode not in (None, "default"):
        raise NotEmulated(f"torch_npu.{fn}: cache_mode {cache_mode!r} is not emulated")
    require(
        rotary_mode in ("half", "interleave"),
        fn,
        f"rotary_mode must be 'half' or 'interleave', got {rotary_mode!r}",
    )
    require(
        query.dim() == 2 and key.dim() == 2 and cos_sin_cache.dim() == 2, fn, "query, key, cache must be 2-D"
    )
    require(
        query.dtype in FLOATS and key.dtype == query.dtype, fn, "query/key: one of float16, bfloat16, float32"
    )
    dtype_of_soc(fn, query.dtype)
    # the docs list the same three dtypes for the cache; SGLang's NPU rope falls back to torch for a
    # bfloat16 query with a float32 cache, so the emulator takes the cache in the query's dtype only
    require(cos_sin_cache.dtype == query.dtype, fn, "cos_sin_cache must have the query's dtype")
    tokens = query.shape[0]
    require(key.shape[0] == tokens and positions.shape[0] == tokens, fn, "one position per token")
    require(
        query.shape[1] % head_size == 0 and key.shape[1] % head_size == 0,
        fn,
        "widths must be heads*head_size",
    )
    rotary = cos_sin_cache.shape[1]
    align = 16 if query.dtype == torch.float32 else 32
    require(rotary % align == 0, fn, f"rotary_dim {rotary} must be a multiple of {align} for {query.dtype}")
    require(rotary <= head_size, fn, f"rotary_dim {rotary} exceeds head_size {head_size}")
    if tokens:
        require(
            int(positions.min()) >= 0 and int(positions.max()) < cos_sin_cache.shape[0],
            fn,
            "positions outside cos_sin_cache",
        )
    cos, sin = cos_sin_cache[positions.long()].float().chunk(2, dim=-1)
    outs = []
    for x in (query, key):
        heads = x.view(tokens, -1, head_size).float()
        rot = _rotate(heads[..., :rotary], cos.unsqueeze(1), sin.unsqueeze(1), rotary_mode == "half")
        outs.append(torch.cat((rot, heads[..., rotary:]), dim=-1).to(x.dtype).view(tokens, -1))
    return outs[0], outs[1]


def npu_apply_rotary_pos_emb(
    query: torch.Tensor,
    key: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    layout: str = "BSND",
    rotary_mode: str = "half",
) -> tuple[torch.Tensor, torch.Tensor]:
    fn = "npu_apply_rotary_pos_emb"
    require(
        rotary_mode == "half", fn, f"rotary_mode {rotary_mode!r}: only 'half' on Atlas A2/A3 and inference"
    )
    require(layout in ("BSND", "TND"), fn, f"layout {layout!r}: BSND or TND on Atlas A2/A3 and inference")
    dims = 4 if layout == "BSND" else 3
    for name, t in (("query", query), ("key", key), ("cos", cos), ("sin", sin)):
        require(t.dim() == dims, fn, f"{name} must be {dims}-D for layout {layout}")
        require(t.numel() > 0, fn, f"{name} must not be empty")
        require(t.shape[-1] in (64, 128), fn, f"{name} head dim must be 64 or 128, got {t.shape[-1]}")
    require(query.dtype in FLOATS, fn, f"dtype {query.dtype}: bfloat16, float16 or float32")
    dtype_of_soc(fn, query.dtype)
    require(
        key.dtype == cos.dtype == sin.dtype == query.dtype, fn, "query, key, cos and sin must share one dtype"
    )
    lead = dims - 2
    require(
        query.shape[:lead] == key.shape[:lead] == cos.shape[:lead] == sin.shape[:lead],
        fn,
        "leading dims (B, S or T) must agree",
    )
    require(query.shape[-1] == key.shape[-1] and cos.shape == sin.shape, fn, "head dims must agree")
    require(cos.shape[-2] == 1, fn, "cos/sin must have one head")
    require(cos.shape[-1] == query.shape[-1], fn, "cos/sin must cover the whole head dim")
    c, s = cos.float(), sin.float()
    for x in (query, key):
        xf = x.float()
        x1, x2 = xf.chunk(2, dim=-1)
        x.copy_((xf * c + torch.cat((-x2, x1), dim=-1) * s).to(x.dtype))  # x*cos + rotate_half(x)*sin
    return query, key


def npu_swiglu(self: torch.Tensor, dim: int = -1) -> torch.Tensor:
    fn = "npu_swiglu"
    require(self.dtype in FLOATS, fn, f"dtype {self.dtype}: float32, float16 or bfloat16")
    dtype_of_soc(fn, self.dtype)
    require(1 <= self.dim() <= 8, fn, "input must have 1-8 dims")
    require(self.shape[dim] % 2 == 0, fn, f"dim {dim} of size {self.shape[dim]} cannot be halved")
    a, b = self.float().chunk(2, dim=dim)
    return (a * torch.sigmoid(a) * b).to(self.dtype)
