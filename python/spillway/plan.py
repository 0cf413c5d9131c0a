"""Placement planner: which units of a model stay in VRAM, which go to the spill tier, and how the
spilled ones are split between the GPU road (zero-copy over PCIe) and the CPU road (DRAM).

Pure: no torch, no device. A *unit* is a group of weights computed together (q/k/v of one layer,
one MLP, one layer's experts); the torch side (spillway.model) finds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

GIB = 1 << 30


@dataclass(frozen=True)
class Unit:
    """A group of weights computed together.

    name: unique, e.g. "model.layers.3.mlp".
    nbytes: bytes of its weights.
    read_fraction: share of its bytes one decoded token reads (1.0 dense, top_k / experts for
        routed experts).
    split_rows: size of the dimension the two roads divide (output rows, or the MLP's
        intermediate size); the split is rounded to multiples of `align` of it.
    stream_block_bytes: largest block of it that prefill copies into VRAM when it is spilled
        (0: read in place at prefill too).
    """

    name: str
    nbytes: int
    read_fraction: float = 1.0
    split_rows: int = 1
    stream_block_bytes: int = 0


@dataclass
class Placement:
    """Where one unit lives. gpu_rows: rows of split_rows the GPU road computes (all of them for
    a unit in VRAM); the CPU road computes the rest."""

    unit: Unit
    in_vram: bool
    gpu_rows: int

    @property
    def cpu_rows(self) -> int:
        return self.unit.split_rows - self.gpu_rows


@dataclass
class Plan:
    placements: List[Placement]
    vram_weight_bytes: int
    host_bytes: int
    staging_bytes: int
    gpu_fraction: float
    budget_bytes: int
    reserve_bytes: int
    notes: List[str] = field(default_factory=list)

    def by_name(self) -> Dict[str, Placement]:
        return {p.unit.name: p for p in self.placements}

    def spilled(self) -> List[Placement]:
        return [p for p in self.placements if not p.in_vram]


def split_rows(rows: int, gpu_fraction: float, align: int = 64) -> int:
    """Rows of `rows` the GPU road gets for a bandwidth share `gpu_fraction`, rounded to `align`
    (whole cache lines and tensor-core tiles on both sides), never more than all of them."""
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    if not 0.0 <= gpu_fraction <= 1.0:
        raise ValueError(f"gpu_fraction must be within [0, 1], got {gpu_fraction}")
    g = int(round(rows * gpu_fraction / align)) * align
    return max(0, min(rows, g))


def gpu_fraction_from_rates(gpu_gbps: float, cpu_gbps: float) -> float:
    """Share of the spilled bytes the GPU road should read so that both roads finish together:
    t = f / gpu = (1 - f) / cpu, f = gpu / (gpu + cpu)."""
    if gpu_gbps < 0 or cpu_gbps < 0 or gpu_gbps + cpu_gbps <= 0:
        raise ValueError(f"bad road rates: gpu {gpu_gbps} GB/s, cpu {cpu_gbps} GB/s")
    return gpu_gbps / (gpu_gbps + cpu_gbps)


def plan_placement(units: Sequence[Unit], budget_bytes: int, resident_bytes: int,
                   reserve_bytes: int, gpu_fraction: float, align: int = 64) -> Plan:
    """Fills the VRAM budget and spills the rest.

    resident_bytes: what always stays in VRAM (norms, embeddings, the output head, buffers).
    reserve_bytes: kept free for the KV cache and activations.
    Units read by every token are kept in VRAM first; units read by a fraction of tokens (routed
    experts) spill first, since a spilled byte of them costs that fraction of a read per token.
    Among units read alike, the smaller ones stay first (a spilled unit costs a hand-off to the
    CPU and a join every token, whatever its size: per byte, small units cost most), then the
    later ones in the model: the thread that queues the GPU's work gets ahead of the GPU while
    it waits on spilled units, so units in VRAM late in a step run without waiting for it, but
    units in VRAM early in a step run at the pace that thread queues them. The prefill staging
    (two buffers of the largest spilled block, see spillway.prefill) is charged to the budget
    too, which can spill one more unit.
    """
    if budget_bytes <= 0:
        raise ValueError(f"VRAM budget must be positive, got {budget_bytes}")
    names = [u.name for u in units]
    if len(set(names)) != len(names):
        raise ValueError("unit names must be unique")
    free = budget_bytes - resident_bytes - reserve_bytes
    if free < 0:
        raise ValueError(
            f"the VRAM budget ({budget_bytes / GIB:.2f} GiB) is smaller than what must stay in VRAM "
            f"({resident_bytes / GIB:.2f} GiB of embeddings, norms and head) plus the reserve "
            f"({reserve_bytes / GIB:.2f} GiB): raise the budget or lower the reserve")
    order = sorted(range(len(units)),
                   key=lambda i: (-units[i].read_fraction, units[i].nbytes, -i))
    in_vram = [False] * len(units)
    staging = 0
    # Two passes: the staging size depends on what spills, and what spills on the staging.
    for _ in range(3):
        left = free - staging
        in_vram = [False] * len(units)
        for i in order:
            u = units[i]
            if u.nbytes <= left:
                in_vram[i] = True
                left -= u.nbytes
        spilled = [u for u, v in zip(units, in_vram) if not v]
        need = 2 * max((u.stream_block_bytes for u in spilled), default=0)
        if need <= staging:
            break
        staging = need
    placements = []
    for u, v in zip(units, in_vram):
        if v:
            g = u.split_rows
        else:
            g = split_rows(u.split_rows, gpu_fraction, align)
        placements.append(Placement(u, v, g))
    vram_w = sum(u.nbytes for u, v in zip(units, in_vram) if v)
    host = sum(u.nbytes for u, v in zip(units, in_vram) if not v)
    notes = []
    if host == 0:
        notes.append("everything fits in the budget: nothing spilled")
        staging = 0
    return Plan(placements, vram_w, host, staging, gpu_fraction, budget_bytes, reserve_bytes,
                notes)


def decode_bound_s(plan: Plan, gpu_gbps: float, cpu_gbps: float, vram_gbps: float,
                   resident_read_bytes: int = 0) -> float:
    """Lower bound of one decode step's weight reads: the slower of the two roads over the
    spilled bytes each reads, plus the VRAM reads."""
    gpu_b = cpu_b = vram_b = 0.0
    for p in plan.placements:
        read = p.unit.nbytes * p.unit.read_fraction
        if p.in_vram:
            vram_b += read
        else:
            share = p.gpu_rows / p.unit.split_rows
            gpu_b += read * share
            cpu_b += read * (1 - share)
    vram_b += resident_read_bytes
    t_gpu = gpu_b / (gpu_gbps * 1e9) if gpu_b else 0.0
    t_cpu = cpu_b / (cpu_gbps * 1e9) if cpu_b else 0.0
    return max(t_gpu, t_cpu) + vram_b / (vram_gbps * 1e9)
