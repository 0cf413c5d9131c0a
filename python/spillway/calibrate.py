"""A short measurement of both roads at start: how fast the GPU reads spilled rows (zero-copy
GEMV over PCIe) and the CPU (GEMV from DRAM), alone and at the same time (they share DRAM), and
what one GPU -> CPU -> GPU round trip of a split unit costs."""

from __future__ import annotations

import time
from typing import Callable, Dict, List

import torch
import torch.nn.functional as F

from .engine import Engine
from .memory import HostArena, cuda_view

MIB = 1 << 20


def _gpu_pass(x: torch.Tensor, mats: List[torch.Tensor], passes: int) -> float:
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(passes):
        for w in mats:
            F.linear(x, w)
    stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) * 1e-3


def _cpu_pass(engine: Engine, x: torch.Tensor, mats: List[torch.Tensor], passes: int,
              out: Dict[str, float]) -> None:
    def work() -> None:
        t0 = time.perf_counter()
        for _ in range(passes):
            for w in mats:
                F.linear(x, w)
        out["s"] = time.perf_counter() - t0
    on_worker(engine, work)


def on_worker(engine: Engine, work: Callable[[], None]) -> None:
    """Queues `work` on the CPU worker (its thread and OpenMP team), without waiting."""
    engine.seq += 1
    engine.worker.submit(_at_once(work), engine.seq)


def _at_once(work: Callable[[], None]) -> Callable[[int], bool]:
    """A worker task without an input to wait for."""
    def run(spins: int) -> bool:
        work()
        return True
    return run


def measure_roads(engine: Engine, hidden: int = 4096, mib_per_road: int = 1024,
                  dtype: torch.dtype = torch.bfloat16) -> Dict[str, float]:
    """GB/s of each road alone and together, over `mib_per_road` MiB each (more than the L3)."""
    rows = 8192
    per = rows * hidden * 2
    n = max(1, mib_per_road * MIB // per)
    arena = HostArena(2 * n * per, use_pool=False)
    try:
        gpu_mats = [cuda_view(arena.carve((rows, hidden), dtype)) for _ in range(n)]
        cpu_mats = [arena.carve((rows, hidden), dtype) for _ in range(n)]
        xg = torch.randn(1, hidden, device=engine.device, dtype=dtype)
        xc = torch.randn(1, hidden, dtype=dtype)
        nbytes = n * per
        _gpu_pass(xg, gpu_mats, 1)
        tg = _gpu_pass(xg, gpu_mats, 2) / 2
        res: Dict[str, float] = {}
        _cpu_pass(engine, xc, cpu_mats, 1, res)
        engine.worker.drain()
        _cpu_pass(engine, xc, cpu_mats, 2, res)
        engine.worker.drain()
        tc = res["s"] / 2
        # Together: as many passes on each side as fill about the same time.
        pg = max(2, round(4 * max(tg, tc) / tg))
        pc = max(2, round(4 * max(tg, tc) / tc))
        both: Dict[str, float] = {}
        _cpu_pass(engine, xc, cpu_mats, pc, both)
        tg2 = _gpu_pass(xg, gpu_mats, pg) / pg
        engine.worker.drain()
        tc2 = both["s"] / pc
        return dict(gpu_alone_gbps=nbytes / tg / 1e9, cpu_alone_gbps=nbytes / tc / 1e9,
                    gpu_together_gbps=nbytes / tg2 / 1e9, cpu_together_gbps=nbytes / tc2 / 1e9,
                    bytes_per_road=nbytes, cpu_threads=engine.cpu_threads)
    finally:
        torch.cuda.synchronize()
        arena.close()


def measure_worker_handoff(engine: Engine, reps: int = 2000) -> Dict[str, float]:
    """Microseconds from handing the worker an empty task to seeing its flag, the calling thread
    spinning on the flag: the CPU side of a join, without the GPU."""
    times = []
    for _ in range(reps):
        engine.seq += 1
        seq = engine.seq
        t0 = time.perf_counter()
        engine.worker.submit(_at_once(lambda: None), seq)
        while engine.flag.load() < seq:
            pass
        times.append(time.perf_counter() - t0)
    engine.worker.drain()
    times.sort()
    return dict(handoff_median_us=times[len(times) // 2] * 1e6,
                handoff_p90_us=times[int(len(times) * 0.9)] * 1e6)


def measure_round_trip(engine: Engine, hidden: int = 4096, reps: int = 300,
                       dtype: torch.dtype = torch.bfloat16) -> Dict[str, float]:
    """Microseconds per split-unit round trip with almost no work (a 64-row linear on each
    road): the fixed cost a split unit adds to a decode step, and the same chain with the CPU
    part left out (the GPU side alone)."""
    from .units import RowSplitLinear
    arena = HostArena(128 * hidden * 2, use_pool=False)
    try:
        w = torch.randn(128, hidden, dtype=dtype)
        lin = RowSplitLinear([w], 64, arena, engine)
        x = torch.randn(1, hidden, device=engine.device, dtype=dtype)
        ref = F.linear(x.cpu().float(), w.float())
        out = {}
        for name, mod in (("split", lin),):
            for _ in range(20):
                y = mod(x)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(reps):
                y = mod(x)
            torch.cuda.synchronize()
            out[f"{name}_round_trip_us"] = (time.perf_counter() - t0) / reps * 1e6
            err = (y.float().cpu() - ref).abs().max().item()
            out[f"{name}_max_abs_err"] = err
        t0 = time.perf_counter()
        wg = cuda_view(lin.w_host)
        for _ in range(reps):
            y = F.linear(x, wg)
        torch.cuda.synchronize()
        out["gpu_only_us"] = (time.perf_counter() - t0) / reps * 1e6
        return out
    finally:
        torch.cuda.synchronize()
        engine.worker.drain()
        arena.close()


def measure_unit(unit: torch.nn.Module, reps: int = 10) -> Dict[str, float]:
    """One spilled MLP's (SplitMLP) decode step: each road alone and the unit as the model runs
    it (both roads and the joins), in ms, with each road's GB/s. Tells whether the roads reach
    the calibrated rates on the model's own shapes, and what a unit adds to a step."""
    from .kernels import mlp_part
    engine = unit.engine
    x = torch.randn(1, unit.hidden, device=engine.device, dtype=unit.gu_c.dtype)
    xh = x.cpu()

    def gpu() -> None:
        mlp_part(x, unit.gu_g_dev, unit.dn_g_dev, unit.act)

    def nbytes(*ts: torch.Tensor) -> int:
        return sum(t.numel() * t.element_size() for t in ts)
    sync = torch.cuda.synchronize if engine.on_gpu else engine.worker.drain
    out: Dict[str, float] = {}
    for name, fn in (("gpu_alone", gpu), ("together", lambda: unit(x.view(1, 1, -1)))):
        fn()
        sync()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        out[f"{name}_ms"] = (time.perf_counter() - t0) / reps * 1e3
    cpu: Dict[str, float] = {}

    def work() -> None:
        mlp_part(xh, unit.gu_c, unit.dn_c, unit.act)
        t0 = time.perf_counter()
        for _ in range(reps):
            mlp_part(xh, unit.gu_c, unit.dn_c, unit.act)
        cpu["s"] = time.perf_counter() - t0
    on_worker(engine, work)
    engine.worker.drain()
    out["cpu_alone_ms"] = cpu["s"] / reps * 1e3
    gb, cb = nbytes(unit.gu_g, unit.dn_g), nbytes(unit.gu_c, unit.dn_c)
    out.update(gpu_bytes=gb, cpu_bytes=cb, gpu_alone_gbps=gb / out["gpu_alone_ms"] / 1e6,
               cpu_alone_gbps=cb / out["cpu_alone_ms"] / 1e6,
               together_gbps=(gb + cb) / out["together_ms"] / 1e6)
    return out
