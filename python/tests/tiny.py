"""A tiny Llama/Mixtral-shaped model in plain torch (no transformers in Debian's archive): the
module names and call order transformers uses, which is what spillway.find_units relies on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, h: int, heads: int, kv_heads: int):
        super().__init__()
        self.hd, self.heads, self.kv = h // heads, heads, kv_heads
        self.q_proj = nn.Linear(h, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(h, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(h, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, h, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, self.kv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, self.kv, self.hd).transpose(1, 2)
        rep = self.heads // self.kv
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = torch.softmax((q.float() @ k.float().transpose(-1, -2)) / self.hd ** 0.5
                          + torch.full((s, s), float("-inf"), device=x.device).triu(1), -1).to(x.dtype) @ v
        return self.o_proj(a.transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, h: int, i: int):
        super().__init__()
        self.gate_proj = nn.Linear(h, i, bias=False)
        self.up_proj = nn.Linear(h, i, bias=False)
        self.down_proj = nn.Linear(i, h, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class Experts(nn.Module):
    """transformers 5's MixtralExperts (3D weights), eager."""

    def __init__(self, h: int, i: int, e: int):
        super().__init__()
        self.num_experts = e
        self.gate_up_proj = nn.Parameter(torch.randn(e, 2 * i, h) / h ** 0.5)
        self.down_proj = nn.Parameter(torch.randn(e, h, i) / i ** 0.5)
        self.act_fn = nn.SiLU()

    def forward(self, x, top_k_index, top_k_weights):
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            for s in range(top_k_index.shape[1]):
                e = int(top_k_index[t, s])
                g, u = F.linear(x[t], self.gate_up_proj[e]).chunk(2, -1)
                y = F.linear(self.act_fn(g) * u, self.down_proj[e])
                out[t] += (y * top_k_weights[t, s]).to(out.dtype)
        return out


class MoE(nn.Module):
    def __init__(self, h: int, i: int, e: int, k: int):
        super().__init__()
        self.gate = nn.Linear(h, e, bias=False)
        self.experts = Experts(h, i, e)
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        p = torch.softmax(self.gate(x).float(), -1)
        w, idx = torch.topk(p, self.k, -1)
        w = w / w.sum(-1, keepdim=True)
        return self.experts(x, idx, w).view(shape)


class Layer(nn.Module):
    def __init__(self, h, i, heads, kv, moe=None):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(h)
        self.self_attn = Attention(h, heads, kv)
        self.post_attention_layernorm = nn.LayerNorm(h)
        self.mlp = MoE(h, i, *moe) if moe else MLP(h, i)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Config:
    num_experts_per_tok = 2


class TinyLM(nn.Module):
    def __init__(self, vocab=97, h=64, i=192, layers=3, heads=4, kv=2, moe=None):
        super().__init__()
        self.config = Config()
        self.embed_tokens = nn.Embedding(vocab, h)
        self.layers = nn.ModuleList([Layer(h, i, heads, kv, moe) for _ in range(layers)])
        self.norm = nn.LayerNorm(h)
        self.lm_head = nn.Linear(h, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def tiny(moe: bool = False, dtype=torch.bfloat16, seed: int = 0) -> TinyLM:
    torch.manual_seed(seed)
    m = TinyLM(moe=(4, 2) if moe else None)
    return m.to(dtype).eval().requires_grad_(False)
