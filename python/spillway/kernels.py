"""The arithmetic of a split unit, the same on both roads (the GPU part runs these on CUDA views
of the spilled rows, the CPU part on the host tensors of the other rows). Pure torch, and
TorchScript-compatible: the CPU road runs them compiled (spillway.tasks), without the GIL.

Layouts (r = rows of the split dimension one road owns):
  row split   w: [r, in]          y_part = x w^T, the parts are concatenated
  MLP         gate_up: [2r, H]    (the road's gate rows, then its up rows)
              down: [H, r]        (the road's columns of down_proj)
              y_part = (act(x gate^T) * (x up^T)) down^T; the parts are added
  experts     gate_up: [E, 2r, H], down: [E, H, r], per expert as the MLP; a token's
              y_part = sum over its top-k experts e of weight_e * MLP_e(x)

The activation is a code (ACTIVATIONS), not a callable: compiled code can not call Python.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F

ACTIVATIONS: Dict[str, int] = {"silu": 0, "gelu": 1, "gelu_tanh": 2, "relu": 3}


def activate(h: torch.Tensor, act: int) -> torch.Tensor:
    if act == 0:
        return F.silu(h)
    if act == 1:
        return F.gelu(h)
    if act == 2:
        return F.gelu(h, approximate="tanh")
    if act == 3:
        return F.relu(h)
    raise ValueError("unknown activation code")


def act_code(fn: Any) -> Optional[int]:
    """The code of the activation `fn` computes (a module or a function), found by evaluating
    it, so that any wrapper of a known function is recognised; None for anything else."""
    probe = torch.linspace(-6.0, 6.0, 241)
    try:
        with torch.no_grad():
            got = fn(probe)
    except Exception:  # anything that can not take a float32 CPU tensor is unknown
        return None
    if not isinstance(got, torch.Tensor) or got.shape != probe.shape:
        return None
    for code in ACTIVATIONS.values():
        if torch.allclose(got.float(), activate(probe, code), rtol=0.0, atol=1e-6):
            return code
    return None


def rows_part(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # F.linear, the call the calibration times: torch.mm(..., out=) may take another CPU path
    # (bf16 GEMV through mv ran at 18 GB/s against 74 for F.linear, shared/notes/cuda.md).
    return F.linear(x, w)


def mlp_part(x: torch.Tensor, gate_up: torch.Tensor, down: torch.Tensor, act: int) -> torch.Tensor:
    r = gate_up.shape[0] // 2
    gu = F.linear(x, gate_up)
    h = activate(gu[..., :r], act) * gu[..., r:]
    return F.linear(h, down)


def experts_part_loop(x: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor,
                      gate_up: torch.Tensor, down: torch.Tensor, act: int) -> torch.Tensor:
    """One expert at a time (the CPU road: reads each routed expert's rows once, no copies).
    x [M, H], idx [M, k] (int64, on the CPU), weights [M, k]."""
    y = torch.zeros(x.shape[0], down.shape[1], dtype=torch.float32)
    for t in range(x.shape[0]):
        xt = x[t:t + 1]
        for s in range(idx.shape[1]):
            e = int(idx[t, s])
            y[t] += mlp_part(xt, gate_up[e], down[e], act)[0].float() * float(weights[t, s])
    return y.to(x.dtype)


def experts_part_gather(x: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor,
                        gate_up: torch.Tensor, down: torch.Tensor, act: int) -> torch.Tensor:
    """All routed experts at once, without a host synchronisation (the GPU road): gathers the
    routed experts' rows (each read once over PCIe), then batched products."""
    m, k = idx.shape
    flat = idx.reshape(-1)
    gu = torch.index_select(gate_up, 0, flat)              # [m*k, 2r, H]
    dn = torch.index_select(down, 0, flat)                 # [m*k, H, r]
    xs = x.repeat_interleave(k, dim=0).unsqueeze(-1)      # [m*k, H, 1]
    r = gu.shape[1] // 2
    g = torch.bmm(gu, xs).squeeze(-1)                      # [m*k, 2r]
    h = (activate(g[:, :r], act) * g[:, r:]).unsqueeze(-1)  # [m*k, r, 1]
    y = torch.bmm(dn, h).squeeze(-1)                       # [m*k, H]
    y = y.float() * weights.reshape(-1, 1).float()
    return y.view(m, k, -1).sum(1).to(x.dtype)


def mlp_road_blocks(gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor, lo: int, hi: int):
    """One road's blocks of a gated MLP (gate/up [I, H], down [H, I]) for intermediate rows
    lo:hi: (gate_up [2n, H]: its gate rows then its up rows, down [H, n])."""
    return torch.cat([gate[lo:hi], up[lo:hi]], 0), down[:, lo:hi].contiguous()
