"""Modules that replace the spilled parts of a model: each computes its unit partly on the GPU
(zero-copy over the spilled rows) and partly on the CPU (the other rows, same host memory), at
the same time, and joins the parts on the GPU. Large batches (prefill) stream the blocks into
VRAM instead (spillway.engine.PrefillStreamer)."""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from . import kernels as K
from .engine import Engine
from .memory import HostArena


# Decode gathers the routed experts' rows for up to this many (token, expert) pairs; more
# tokens read each routed expert once instead.
GATHER_MAX_PAIRS = 4


def _to_host(dst: torch.Tensor, src: torch.Tensor) -> None:
    # From VRAM straight into the registered pages (one DMA), else through the CPU.
    src = src.detach()
    if src.dtype != dst.dtype:
        src = src.to(dst.dtype)
    dst.copy_(src)


def _pinned(shape: Tuple[int, ...], dtype: torch.dtype, pin: bool) -> torch.Tensor:
    return torch.zeros(shape, dtype=dtype, pin_memory=pin)


class _Split(nn.Module):
    """Common state: the engine, the streamer (set later) and the staging of one decode input."""

    def __init__(self, engine: Engine, in_features: int, out_cpu: int, dtype: torch.dtype):
        super().__init__()
        self.engine = engine
        rows = engine.decode_max_rows
        self.x_host = _pinned((rows, in_features), dtype, engine.on_gpu)
        self.y_host = _pinned((rows, max(out_cpu, 1)), dtype, engine.on_gpu)

    def blocks(self) -> List[torch.Tensor]:
        raise NotImplementedError

    def _stage(self, x2: torch.Tensor) -> torch.Tensor:
        m = x2.shape[0]
        xh = self.x_host[:m]
        xh.copy_(x2, non_blocking=True)
        return xh

    def _cpu_result(self, m: int) -> torch.Tensor:
        return self.y_host[:m].to(self.engine.device, non_blocking=True, copy=True)


class RowSplitLinear(_Split):
    """y = x W^T, W's first gpu_rows rows read by the GPU, the rest by the CPU."""

    def __init__(self, weights: List[torch.Tensor], gpu_rows: int, arena: HostArena,
                 engine: Engine):
        n = sum(w.shape[0] for w in weights)
        k = weights[0].shape[1]
        dtype = weights[0].dtype
        super().__init__(engine, k, n - gpu_rows, dtype)
        self.out_features, self.in_features, self.gpu_rows = n, k, gpu_rows
        self.w_host = arena.carve((n, k), dtype)
        r = 0
        for w in weights:
            _to_host(self.w_host[r:r + w.shape[0]], w)
            r += w.shape[0]
        self.w_gpu = engine.gpu_view(self.w_host[:gpu_rows]) if gpu_rows else None
        self.w_cpu = self.w_host[gpu_rows:]

    def blocks(self) -> List[torch.Tensor]:
        return [self.w_host]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.in_features)
        m = x2.shape[0]
        if m > self.engine.decode_max_rows:
            y = nn.functional.linear(x2, self.engine.fetch(self.w_host))
        elif self.gpu_rows == self.out_features:
            y = nn.functional.linear(x2, self.w_gpu)
        else:
            xh, yh, w = self._stage(x2), self.y_host[:m], self.w_cpu
            seq = self.engine.submit("rows", xh, w, yh)
            yg = nn.functional.linear(x2, self.w_gpu) if self.gpu_rows else None
            self.engine.join(seq)
            yc = self._cpu_result(m)
            y = torch.cat([yg, yc], -1) if yg is not None else yc
        return y.view(*shape[:-1], self.out_features)


class FusedProjection(nn.Module):
    """Stands in for one of several projections of the same input (q/k/v): the first call
    computes all of them in one split unit, the others return their slice."""

    def __init__(self, group: "ProjectionGroup", start: int, end: int):
        super().__init__()
        self.group, self.start, self.end = [group], start, end  # list: not a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The first projection (q) always computes: a new layer's input can reuse a freed
        # tensor's address, so a cached result is only trusted for the ones after it.
        return self.group[0].output(x, fresh=self.start == 0)[..., self.start:self.end]


class ProjectionGroup(nn.Module):
    def __init__(self, linear: RowSplitLinear):
        super().__init__()
        self.linear = linear
        self._key: Optional[Tuple[int, int, int]] = None
        self._y: Optional[torch.Tensor] = None

    def output(self, x: torch.Tensor, fresh: bool) -> torch.Tensor:
        # Inference tensors keep no version counter (torch.inference_mode, as decode loops
        # run): there the key is the tensor and its address; q, k and v read the same input
        # one after the other, and q always recomputes.
        key = (id(x), x.data_ptr(), 0 if x.is_inference() else x._version)
        if fresh or self._key != key or self._y is None:
            self._y = self.linear(x)
            self._key = key
        return self._y


class SplitMLP(_Split):
    """A gated MLP (gate/up/down) split along its intermediate size: each road computes
    act(gate) * up for its rows and its partial down projection; the join adds them."""

    def __init__(self, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor, act: int,
                 gpu_rows: int, arena: HostArena, engine: Engine):
        inter, hidden = gate.shape
        dtype = gate.dtype
        super().__init__(engine, hidden, hidden, dtype)
        self.act, self.hidden, self.g, self.c = act, hidden, gpu_rows, inter - gpu_rows
        g = gpu_rows
        self.gu_g = arena.carve((2 * g, hidden), dtype) if g else None
        self.gu_c = arena.carve((2 * self.c, hidden), dtype) if self.c else None
        self.dn_g = arena.carve((hidden, g), dtype) if g else None
        self.dn_c = arena.carve((hidden, self.c), dtype) if self.c else None
        for gu, dn, lo, hi in ((self.gu_g, self.dn_g, 0, g), (self.gu_c, self.dn_c, g, inter)):
            if gu is not None:
                a, b = K.mlp_road_blocks(gate, up, down, lo, hi)
                _to_host(gu, a)
                _to_host(dn, b)
        self.gu_g_dev = engine.gpu_view(self.gu_g) if g else None
        self.dn_g_dev = engine.gpu_view(self.dn_g) if g else None

    def blocks(self) -> List[torch.Tensor]:
        return [b for b in (self.gu_g, self.gu_c, self.dn_g, self.dn_c) if b is not None]

    def _prefill(self, x2: torch.Tensor) -> torch.Tensor:
        get = self.engine.fetch
        hs = []
        for gu, n in ((self.gu_g, self.g), (self.gu_c, self.c)):
            if gu is not None:
                a = nn.functional.linear(x2, get(gu))
                hs.append(K.activate(a[:, :n], self.act) * a[:, n:])
        y = None
        for h, dn in zip(hs, [d for d in (self.dn_g, self.dn_c) if d is not None]):
            part = nn.functional.linear(h, get(dn))
            y = part if y is None else y + part
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, self.hidden)
        m = x2.shape[0]
        if m > self.engine.decode_max_rows:
            y = self._prefill(x2)
        elif not self.c:
            y = K.mlp_part(x2, self.gu_g_dev, self.dn_g_dev, self.act)
        else:
            xh, yh = self._stage(x2), self.y_host[:m]
            seq = self.engine.submit("mlp", xh, self.gu_c, self.dn_c, self.act, yh)
            yg = K.mlp_part(x2, self.gu_g_dev, self.dn_g_dev, self.act) if self.g else None
            self.engine.join(seq)
            yc = self._cpu_result(m)
            y = yg + yc if yg is not None else yc
        return y.view(shape)


class SplitExperts(_Split):
    """Routed experts (transformers' 3D gate_up_proj [E, 2I, H] / down_proj [E, H, I]) split
    along I like SplitMLP. Decode: the GPU gathers its rows of the routed experts (no host
    synchronisation), the CPU loops over them. Large batches: every routed expert is read
    zero-copy by the GPU, both roads' rows (one host synchronisation per layer, as eager)."""

    def __init__(self, gate_up: torch.Tensor, down: torch.Tensor, act: int, top_k: int,
                 gpu_rows: int, arena: HostArena, engine: Engine):
        e, two_i, hidden = gate_up.shape
        inter = two_i // 2
        dtype = gate_up.dtype
        super().__init__(engine, hidden, hidden, dtype)
        self.num_experts, self.hidden, self.top_k = e, hidden, top_k
        self.act, self.g, self.c = act, gpu_rows, inter - gpu_rows
        g = gpu_rows
        rows = engine.decode_max_rows
        self.idx_host = _pinned((rows, top_k), torch.int64, engine.on_gpu)
        self.w_host = _pinned((rows, top_k), torch.float32, engine.on_gpu)
        self.gu_g = arena.carve((e, 2 * g, hidden), dtype) if g else None
        self.gu_c = arena.carve((e, 2 * self.c, hidden), dtype) if self.c else None
        self.dn_g = arena.carve((e, hidden, g), dtype) if g else None
        self.dn_c = arena.carve((e, hidden, self.c), dtype) if self.c else None
        for j in range(e):
            for gu, dn, lo, hi in ((self.gu_g, self.dn_g, 0, g), (self.gu_c, self.dn_c, g, inter)):
                if gu is not None:
                    a, b = K.mlp_road_blocks(gate_up[j, :inter], gate_up[j, inter:], down[j],
                                             lo, hi)
                    _to_host(gu[j], a)
                    _to_host(dn[j], b)
        self.dev = {k: (engine.gpu_view(v) if v is not None else None) for k, v in
                    dict(gu_g=self.gu_g, gu_c=self.gu_c, dn_g=self.dn_g, dn_c=self.dn_c).items()}

    def blocks(self) -> List[torch.Tensor]:
        return []  # read zero-copy at prefill (each expert sees a fraction of the tokens)

    def _all_experts_gpu(self, x: torch.Tensor, idx: torch.Tensor,
                         weights: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        mask = nn.functional.one_hot(idx, num_classes=self.num_experts).permute(2, 1, 0)
        hit = torch.greater(mask.sum(dim=(-1, -2)), 0).nonzero()
        d = self.dev
        for e in hit.flatten().tolist():
            pos, tok = torch.where(mask[e])
            xe = x[tok]
            y = None
            for gu, dn in ((d["gu_g"], d["dn_g"]), (d["gu_c"], d["dn_c"])):
                if gu is not None:
                    part = K.mlp_part(xe, gu[e], dn[e], self.act)
                    y = part if y is None else y + part
            y = y * weights[tok, pos, None]
            out.index_add_(0, tok, y.to(out.dtype))
        return out

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        m = hidden_states.shape[0]
        # The GPU road gathers its rows of every routed (token, expert) pair: worth it for a
        # token or two; more tokens read each routed expert once, zero-copy, on the GPU.
        if m * self.top_k > GATHER_MAX_PAIRS or not self.c:
            return self._all_experts_gpu(hidden_states, top_k_index, top_k_weights)
        xh, yh = self._stage(hidden_states), self.y_host[:m]
        ih, wh = self.idx_host[:m], self.w_host[:m]
        ih.copy_(top_k_index, non_blocking=True)
        wh.copy_(top_k_weights.float(), non_blocking=True)
        seq = self.engine.submit("experts", xh, ih, wh, self.gu_c, self.dn_c, self.act, yh)
        d = self.dev
        yg = None
        if self.g:
            yg = K.experts_part_gather(hidden_states, top_k_index, top_k_weights, d["gu_g"],
                                       d["dn_g"], self.act)
        self.engine.join(seq)
        yc = self._cpu_result(m)
        return yg + yc if yg is not None else yc


class ResidentExperts(nn.Module):
    """Routed experts kept in VRAM, with the same decode path as the GPU road of SplitExperts:
    the routed experts' weights gathered on the GPU, no host synchronisation. transformers'
    eager experts loop synchronises with the host at every layer (to list the experts hit),
    which stops the thread that queues the GPU's work from getting ahead of the GPU across
    these layers. Larger batches run the original module."""

    def __init__(self, experts: nn.Module, act: int, top_k: int):
        super().__init__()
        self.inner, self.act, self.top_k = experts, act, top_k

    def forward(self, hidden_states: torch.Tensor, top_k_index: torch.Tensor,
                top_k_weights: torch.Tensor) -> torch.Tensor:
        if hidden_states.shape[0] * self.top_k > GATHER_MAX_PAIRS:
            return self.inner(hidden_states, top_k_index, top_k_weights)
        return K.experts_part_gather(hidden_states, top_k_index, top_k_weights,
                                     self.inner.gate_up_proj, self.inner.down_proj, self.act)
