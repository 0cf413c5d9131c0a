"""Where each weight of a llama.cpp model lives under a placement, and the physical
bound that follows; parsers for what llama.cpp and the shim print.

Pure logic (no numpy, no processes), tested by test_placement.py.

A placement is llama.cpp's (-ngl N and -ot overrides) plus, for the weights it puts
on the GPU, how many bytes of its one weight buffer the shim put in VRAM (the rest
spilled to host memory). One decoded token reads each weight it uses once:
    time/token >= VRAM bytes / VRAM_GBPS + spilled bytes / PCIE_GBPS + CPU bytes / CPU_GBPS
(the bandwidths measured on the H100 machine: shared/notes/cuda.md, docs/performance.md).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

from shapes import GgmlType, Shape, tensors

VRAM_GBPS = 3000.0
PCIE_GBPS = 51.0
CPU_GBPS = 100.0
BUFFER_ALIGN = 128  # ggml's CUDA buffer alignment


@dataclass
class Placement:
    n_gpu_layers: int = 99
    overrides: list[tuple[str, str]] = field(default_factory=list)  # (regex, buffer type)
    vram_part: int | None = None  # bytes of the GPU weight buffer in VRAM; None: all


@dataclass
class Split:
    vram: int = 0  # bytes read from VRAM per token
    host: int = 0  # bytes read by the GPU from spilled host memory per token
    cpu: int = 0  # bytes read by the CPU per token
    gpu_buffer: int = 0  # size of llama.cpp's GPU weight buffer
    gpu_in_vram: int = 0  # bytes of that buffer in VRAM

    def bound_tps(self) -> float:
        s = self.vram / (VRAM_GBPS * 1e9) + self.host / (PCIE_GBPS * 1e9) + self.cpu / (CPU_GBPS * 1e9)
        return 1.0 / s if s > 0 else float("inf")


def _on_gpu(shape: Shape, layer: int, name: str, p: Placement) -> bool:
    if name == "token_embd.weight":
        return False  # llama.cpp keeps the input layer on the CPU
    for pattern, buft in p.overrides:
        if re.search(pattern, name):
            return not buft.upper().startswith("CPU")
    il = shape.n_layer if layer < 0 else layer  # output and its norm: the "layer" n_layer
    return il >= shape.n_layer + 1 - p.n_gpu_layers


def split(shape: Shape, weight_type: GgmlType, p: Placement) -> Split:
    """Bytes one decoded token reads from VRAM, spilled memory and the CPU, for the model
    whose weight matrices are of weight_type."""
    out = Split()
    offset = 0
    for t in tensors(shape, weight_type):
        read = int(t.nbytes * t.read_fraction)
        if not _on_gpu(shape, t.layer, t.name, p):
            out.cpu += read
            continue
        start = offset
        offset += (t.nbytes + BUFFER_ALIGN - 1) // BUFFER_ALIGN * BUFFER_ALIGN
        if p.vram_part is None or offset <= p.vram_part:
            out.vram += read
        elif start >= p.vram_part:
            out.host += read
        else:  # the tensor straddles the boundary: its reads split in proportion
            in_vram = int(read * (p.vram_part - start) / t.nbytes)
            out.vram += in_vram
            out.host += read - in_vram
    out.gpu_buffer = offset
    out.gpu_in_vram = offset if p.vram_part is None else min(p.vram_part, offset)
    return out


def parse_fit_args(stdout: str) -> list[str]:
    """The arguments llama-fit-params prints (its last non-empty stdout line), without -c."""
    lines = [ln for ln in stdout.splitlines() if ln.strip().startswith("-")]
    if not lines:
        raise ValueError("llama-fit-params printed no arguments")
    args = shlex.split(lines[-1])
    out: list[str] = []
    i = 0
    while i < len(args):
        if args[i] in ("-c", "--ctx-size"):
            i += 2
            continue
        out.append(args[i])
        i += 1
    return out


def placement_from_args(args: list[str]) -> Placement:
    """-ngl and -ot from llama.cpp arguments (common's syntax: overrides separated by ',')."""
    p = Placement()
    for i, a in enumerate(args):
        if a in ("-ngl", "--n-gpu-layers", "--gpu-layers") and i + 1 < len(args):
            v = args[i + 1]
            p.n_gpu_layers = 999 if v in ("all", "auto") else int(v)
        elif a in ("-ot", "--override-tensor") and i + 1 < len(args):
            for item in re.split(r"[,;]", args[i + 1]):
                if item:
                    pattern, _, buft = item.rpartition("=")
                    if not pattern:
                        raise ValueError(f"-ot {args[i + 1]!r}: expected PATTERN=BUFFER")
                    p.overrides.append((pattern, buft))
    return p


def bench_args(args: list[str]) -> list[str]:
    """common's -ot syntax (',' between overrides) to llama-bench's (';', since ',' separates runs)."""
    out = list(args)
    for i, a in enumerate(out[:-1]):
        if a in ("-ot", "--override-tensor"):
            out[i + 1] = out[i + 1].replace(",", ";")
    return out


def parse_bench_json(stdout: str) -> dict[str, float]:
    """Prefill and decode tokens/s from llama-bench -o json."""
    start = stdout.find("[")
    if start < 0:
        raise ValueError("llama-bench printed no JSON")
    rows = json.loads(stdout[start:])
    out: dict[str, float] = {}
    for r in rows:
        if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0:
            out["prefill_tps"] = float(r["avg_ts"])
            out["prefill_tokens"] = int(r["n_prompt"])
        elif r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0:
            out["decode_tps"] = float(r["avg_ts"])
            out["decode_tokens"] = int(r["n_gen"])
            out["decode_stddev"] = float(r.get("stddev_ts", 0.0))
    if "decode_tps" not in out:
        raise ValueError("llama-bench JSON has no decode row")
    return out


# What the shim prints at `info` for an allocation that did not fit (both the split
# placement's line and the older whole-spill line), and its exit statistics.
SPLIT_RE = re.compile(r"spill (\d+) bytes on device (\d+): (\d+) in VRAM, (\d+) in host memory")
WHOLE_RE = re.compile(r"no VRAM for (\d+) bytes on device (\d+): spilling")
STATS_PREFIX = "spillway stats: "


def parse_shim_log(text: str) -> dict:
    """The shim's spills (size, VRAM part) and exit statistics from its log."""
    spills = []
    stats = None
    for line in text.splitlines():
        m = SPLIT_RE.search(line)
        if m:
            spills.append(dict(size=int(m[1]), device=int(m[2]), vram=int(m[3]), host=int(m[4])))
            continue
        m = WHOLE_RE.search(line)
        if m:
            spills.append(dict(size=int(m[1]), device=int(m[2]), vram=0, host=int(m[1])))
            continue
        i = line.find(STATS_PREFIX)
        if i >= 0:
            stats = json.loads(line[i + len(STATS_PREFIX):])
    largest = max(spills, key=lambda s: s["size"]) if spills else None
    return dict(spills=spills, largest=largest, stats=stats)
