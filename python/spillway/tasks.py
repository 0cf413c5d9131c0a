"""The CPU road's tasks, compiled with TorchScript so that they run without the GIL.

A task waits until the GPU has written its input to host memory (the "ready" word reaches its
sequence number), computes its part into pinned memory, and stores its sequence number in the
"done" word the GPU stream waits on. Written in Python, each step of a task (the poll, every
operator's return) needs the GIL, which the thread running the model holds most of the time:
every one of them waited for the interpreter's switch interval. Compiled, a task takes the GIL
once, when it is called, and signals the GPU before it gives the GIL back.

Each task polls at most `spins` times (about a microsecond each) and returns False when its
input has not come, so that the worker can report a stall; it returns True once done. Where
TorchScript is not available the same functions run as Python (each poll then yields the CPU).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict

import torch

from . import kernels as K

MASK32 = 0xFFFFFFFF  # what the functions below spell out: compiled code reads no globals
# Polls per call of a task: about 10 ms compiled (0.8 us each on the development machine).
SPINS = 10000


@torch.jit.unused
def _yield_cpu() -> None:
    os.sched_yield()


def reached(word: torch.Tensor, value: int) -> bool:
    """Whether the 32-bit counter word[0] is at or past `value`, wrapping as the GPU compares
    (cuStreamWaitValue32 GEQ)."""
    return ((int(word[0]) - value) & 0xFFFFFFFF) < 0x80000000


def store(word: torch.Tensor, value: int) -> None:
    """word[0] = value modulo 2**32, as a signed 32-bit integer."""
    v = value & 0xFFFFFFFF
    if v >= 0x80000000:
        v -= 0x100000000
    word[0] = v


def wait_ready(ready: torch.Tensor, seq: int, spins: int) -> bool:
    for _ in range(spins):
        if reached(ready, seq):
            return True
        if not torch.jit.is_scripting():
            _yield_cpu()
    return False


def rows_task(ready: torch.Tensor, done: torch.Tensor, seq: int, spins: int,
              x: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> bool:
    if not wait_ready(ready, seq, spins):
        return False
    out.copy_(K.rows_part(x, w))
    store(done, seq)
    return True


def mlp_task(ready: torch.Tensor, done: torch.Tensor, seq: int, spins: int, x: torch.Tensor,
             gate_up: torch.Tensor, down: torch.Tensor, act: int, out: torch.Tensor) -> bool:
    if not wait_ready(ready, seq, spins):
        return False
    out.copy_(K.mlp_part(x, gate_up, down, act))
    store(done, seq)
    return True


def experts_task(ready: torch.Tensor, done: torch.Tensor, seq: int, spins: int,
                 x: torch.Tensor, idx: torch.Tensor, weights: torch.Tensor,
                 gate_up: torch.Tensor, down: torch.Tensor, act: int, out: torch.Tensor) -> bool:
    if not wait_ready(ready, seq, spins):
        return False
    out.copy_(K.experts_part_loop(x, idx, weights, gate_up, down, act))
    store(done, seq)
    return True


TASKS = {"rows": rows_task, "mlp": mlp_task, "experts": experts_task}
_compiled: Dict[str, Any] = {}


def compile_tasks() -> str:
    """Compiles the tasks once; returns how they run: "torchscript", or "python (reason)"."""
    if "mode" not in _compiled:
        if os.environ.get("SPILLWAY_TORCHSCRIPT", "1") == "0":
            mode = "python (SPILLWAY_TORCHSCRIPT=0)"
            fns = dict(TASKS)
        else:
            try:
                fns = {name: torch.jit.script(fn) for name, fn in TASKS.items()}
                mode = "torchscript"
            except Exception as e:  # an old or a stripped torch: the same code as Python
                fns = dict(TASKS)
                mode = f"python (TorchScript failed: {type(e).__name__}: {str(e)[:200]})"
        _compiled.update(fns)
        _compiled["mode"] = mode
    return _compiled["mode"]


def task(name: str) -> Callable[..., bool]:
    compile_tasks()
    return _compiled[name]


def optimizations_off():
    """For the worker thread: TorchScript's profiling executor would spend its first calls of
    each task profiling (60 us a poll on the development machine, torch 1.13) and may fuse; the graphs run as written. The
    setting is per thread."""
    return torch.jit.optimized_execution(False)

