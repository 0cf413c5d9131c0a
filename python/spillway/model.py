"""Finds a model's units and places it: spillway.place(model, vram_budget)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch
from torch import nn

from . import kernels as K
from . import plan as P
from .engine import Engine, PrefillStreamer
from .memory import HostArena, arena_bytes
from .units import (FusedProjection, ProjectionGroup, ResidentExperts, RowSplitLinear,
                    SplitExperts, SplitMLP)


@dataclass
class Found:
    unit: P.Unit
    kind: str                      # "qkv", "o", "mlp", "experts"
    module: nn.Module              # the module that owns the weights
    path: str                      # its name in the model
    params: List[nn.Parameter] = field(default_factory=list)
    act: int = -1                  # activation code (spillway.kernels.ACTIVATIONS) of an MLP


def _act(path: str, fn: Any) -> int:
    code = K.act_code(fn)
    if code is None:
        raise ValueError(f"{path}: its activation ({type(fn).__name__}) is none of those the "
                         f"CPU road computes ({', '.join(K.ACTIVATIONS)})")
    return code


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def _is_linear(m: Any) -> bool:
    return isinstance(m, nn.Linear) and m.bias is None


def find_units(model: nn.Module, top_k: Optional[int] = None) -> List[Found]:
    """The units spillway knows how to split, in model order: attention q/k/v and o (modules
    with q_proj, k_proj, v_proj, o_proj linears), gated MLPs (gate_proj, up_proj, down_proj,
    act_fn), and routed experts stored as 3D gate_up_proj / down_proj (transformers 5)."""
    cfg = getattr(model, "config", None)
    found: List[Found] = []
    for path, mod in model.named_modules():
        names = ("q_proj", "k_proj", "v_proj", "o_proj")
        if all(_is_linear(getattr(mod, n, None)) for n in names):
            q, k, v, o = (getattr(mod, n) for n in names)
            qkv = [q.weight, k.weight, v.weight]
            found.append(Found(P.Unit(f"{path}.qkv", sum(map(_nbytes, qkv)), 1.0,
                                      sum(w.shape[0] for w in qkv)), "qkv", mod, path, qkv))
            found.append(Found(P.Unit(f"{path}.o_proj", _nbytes(o.weight), 1.0,
                                      o.weight.shape[0]), "o", mod, path, [o.weight]))
        elif all(_is_linear(getattr(mod, n, None)) for n in ("gate_proj", "up_proj", "down_proj")) \
                and callable(getattr(mod, "act_fn", None)):
            ws = [mod.gate_proj.weight, mod.up_proj.weight, mod.down_proj.weight]
            found.append(Found(P.Unit(path, sum(map(_nbytes, ws)), 1.0, ws[0].shape[0]), "mlp",
                               mod, path, ws, _act(path, mod.act_fn)))
        elif isinstance(getattr(mod, "gate_up_proj", None), nn.Parameter) \
                and isinstance(getattr(mod, "down_proj", None), nn.Parameter) \
                and mod.gate_up_proj.dim() == 3 and callable(getattr(mod, "act_fn", None)):
            e = mod.gate_up_proj.shape[0]
            k = top_k or getattr(cfg, "num_experts_per_tok", None)
            if not k:
                raise ValueError(f"{path}: routed experts, but the number of experts per token "
                                 "is unknown: pass top_k")
            ws = [mod.gate_up_proj, mod.down_proj]
            found.append(Found(P.Unit(path, sum(map(_nbytes, ws)), k / e,
                                      mod.gate_up_proj.shape[1] // 2), "experts", mod, path, ws,
                               _act(path, mod.act_fn)))
    return found


def _max_block_bytes(f: Found, gpu_rows: int) -> int:
    """Largest block the prefill streamer copies for this unit (0: not streamed)."""
    u = f.unit
    if f.kind in ("qkv", "o"):
        return u.nbytes
    if f.kind == "mlp":
        gate = f.params[0]
        hidden, el = gate.shape[1], gate.element_size()
        big = max(gpu_rows, u.split_rows - gpu_rows)
        return max(2 * big * hidden, hidden * big) * el
    return 0


@dataclass
class Placed:
    plan: P.Plan
    engine: Optional[Engine]
    arena: Optional[HostArena]
    calibration: Dict[str, Any]
    setup_s: float
    units: List[str]

    def summary(self) -> Dict[str, Any]:
        p = self.plan
        return dict(vram_weight_bytes=p.vram_weight_bytes, host_bytes=p.host_bytes,
                    staging_bytes=p.staging_bytes, gpu_fraction=p.gpu_fraction,
                    spilled_units=len(p.spilled()), units=len(p.placements),
                    host_source=self.arena.source if self.arena else None,
                    pool_note=self.arena.pool_note if self.arena else None,
                    calibration=self.calibration, setup_s=self.setup_s, notes=p.notes,
                    cpu_threads=self.engine.cpu_threads if self.engine else None,
                    cpu_tasks=self.engine.task_mode if self.engine else None)


def _set(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, name, new)


def place(model: nn.Module, vram_budget: int, reserve: int = 1 << 30,
          device: Any = "cuda", gpu_fraction: Optional[float] = None,
          cpu_threads: Optional[int] = None, use_pool: bool = True,
          decode_max_rows: int = 16, top_k: Optional[int] = None,
          gather_resident_experts: bool = True) -> nn.Module:
    """Places `model` under `vram_budget` bytes of VRAM and returns it (the same object, with
    its spilled parts replaced); run it as before (forward, generate()).

    Everything but the units that spillway splits (embeddings, norms, the output head, routers,
    buffers) stays in VRAM; then units by how much of them a token reads, while the budget
    lasts (minus `reserve` for the KV cache and activations, and the prefill staging); the rest
    goes to host memory (the spillway pool when /dev/spillway is there), split between the GPU
    and the CPU by the measured rates of both roads (or `gpu_fraction`).
    Routed experts that stay in VRAM decode through a gather without host synchronisation
    (units.ResidentExperts) unless `gather_resident_experts` is False.
    `model.spillway` holds the plan and the measurements.
    """
    t0 = time.perf_counter()
    device = torch.device(device)
    if device.type not in ("cuda", "cpu"):
        raise ValueError(f"spillway places models on a CUDA device (or 'cpu' to simulate), not {device}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("spillway.place: no CUDA device is available (device='cpu' simulates both "
                           "roads on the CPU, for tests)")
    if vram_budget <= 0 or reserve < 0:
        raise ValueError(f"vram_budget must be positive and reserve >= 0 (got {vram_budget}, {reserve})")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    found = find_units(model, top_k)
    unit_params = {id(p) for f in found for p in f.params}
    resident = sum(_nbytes(p) for p in model.parameters() if id(p) not in unit_params)
    resident += sum(_nbytes(b) for b in model.buffers())
    engine = Engine(device, cpu_threads, decode_max_rows)
    calib: Dict[str, Any] = {}
    if gpu_fraction is None and device.type != "cuda":
        gpu_fraction = 0.5
        calib["note"] = "no GPU: both roads simulated on the CPU, split half and half"
    if gpu_fraction is None:
        from .calibrate import measure_roads, measure_round_trip, measure_worker_handoff
        calib = measure_roads(engine)
        calib.update(measure_round_trip(engine))
        calib.update(measure_worker_handoff(engine))
        gpu_fraction = P.gpu_fraction_from_rates(calib["gpu_together_gbps"],
                                                 calib["cpu_together_gbps"])
    units = [P.Unit(f.unit.name, f.unit.nbytes, f.unit.read_fraction, f.unit.split_rows,
                    _max_block_bytes(f, P.split_rows(f.unit.split_rows, gpu_fraction)))
             for f in found]
    plan = P.plan_placement(units, vram_budget, resident, reserve, gpu_fraction)
    byname = plan.by_name()
    spilled = [f for f in found if not byname[f.unit.name].in_vram]
    # Size the arena from the blocks each unit will carve.
    sizes: List[int] = []
    for f in spilled:
        sizes.extend(_nbytes(p) for p in f.params)
    arena = HostArena(arena_bytes(sizes) + 4 * 4096 * max(1, len(spilled)), use_pool=use_pool,
                      register=device.type == "cuda") if spilled else None
    k = top_k or getattr(getattr(model, "config", None), "num_experts_per_tok", None)
    groups: Dict[str, ProjectionGroup] = {}
    streamed: List[torch.Tensor] = []
    for f in spilled:
        g = byname[f.unit.name].gpu_rows
        mod = f.module
        if f.kind == "qkv":
            lin = RowSplitLinear(f.params, g, arena, engine)
            group = ProjectionGroup(lin)
            groups[f.path] = group
            r = 0
            for name, w in zip(("q_proj", "k_proj", "v_proj"), f.params):
                setattr(mod, name, FusedProjection(group, r, r + w.shape[0]))
                r += w.shape[0]
            mod.spillway_qkv = group
            streamed.extend(lin.blocks())
        elif f.kind == "o":
            lin = RowSplitLinear(f.params, g, arena, engine)
            mod.o_proj = lin
            streamed.extend(lin.blocks())
        elif f.kind == "mlp":
            new = SplitMLP(*f.params, f.act, g, arena, engine)
            _set(model, f.path, new)
            streamed.extend(new.blocks())
        else:
            new = SplitExperts(f.params[0], f.params[1], f.act, k, g, arena, engine)
            _set(model, f.path, new)
        f.params.clear()
    for f in found:
        if f.kind == "experts" and byname[f.unit.name].in_vram and gather_resident_experts:
            _set(model, f.path, ResidentExperts(f.module, f.act, k))
    found.clear()
    model.to(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    engine.streamer = PrefillStreamer(engine, streamed) if streamed and engine.on_gpu else None
    placed = Placed(plan, engine, arena, calib, time.perf_counter() - t0,
                    [u.name for u in units])
    model.spillway = placed  # type: ignore[attr-defined]
    return model
