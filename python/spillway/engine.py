"""What the split units share: the CPU worker, the flag the GPU waits on, and the prefill
streamer. One engine per placed model.

A split unit's decode step (spillway.units) is:
  main thread: copy x to pinned memory (async), queue "write seq to the ready flag", submit
               the CPU part to the worker, queue the GPU part, queue "wait until the done flag
               >= seq", queue the join.
  worker:      run the unit's task (spillway.tasks, compiled: no GIL): poll the ready flag
               until it reaches seq, compute the CPU part into pinned memory, store seq in the
               done flag.
The main thread never blocks, so it keeps queueing the GPU's work ahead; the GPU waits only
where it needs the CPU's result. The worker makes no CUDA call at all: the main thread runs
so far ahead that its launches block on a full queue, inside the driver, while the GPU waits
for the worker; a worker that then called the driver (to wait for an event, or to destroy
one) hung the whole decode on the H100 (2026-12-06).

With device "cpu" the engine simulates the GPU road on the CPU (same units, same worker, same
tasks and flags; the "GPU" has its input ready at once, and the join waits for the worker):
the whole mechanism runs in tests without a GPU.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Tuple

import torch

from . import tasks as T
from .cudaops import StreamOps
from .memory import cuda_view
from .worker import CpuWorker, Flag


def default_cpu_threads() -> int:
    """SPILLWAY_CPU_THREADS, else all cores but two: one for the thread that runs the model and
    queues the GPU's work, one for the driver and the worker's own waiting."""
    env = os.environ.get("SPILLWAY_CPU_THREADS")
    if env:
        n = int(env)
        if n < 1:
            raise ValueError(f"SPILLWAY_CPU_THREADS must be >= 1, got {env!r}")
        return n
    return max(1, (os.cpu_count() or 2) - 2)


# The worker needs the GIL for the Python around its torch calls, while the thread running the
# model holds it except inside operators. When a waiting thread loses the race for a released
# GIL it gets it only after the switch interval (5 ms by default): measured on the development
# machine, a handoff to the worker took 12.5 ms (median) at 5 ms, 0.17 ms at 50 us.
SWITCH_INTERVAL_S = 50e-6


class Engine:
    def __init__(self, device: torch.device, cpu_threads: Optional[int] = None,
                 decode_max_rows: int = 16, switch_interval: float = SWITCH_INTERVAL_S):
        self._old_switch = sys.getswitchinterval()
        if switch_interval < self._old_switch:
            sys.setswitchinterval(switch_interval)
        self.device = device
        self.decode_max_rows = decode_max_rows
        self.cpu_threads = cpu_threads or default_cpu_threads()
        self.on_gpu = device.type == "cuda"
        # Two counters a cache line apart: "done" (the worker writes, the GPU waits on it) and
        # "ready" (the GPU writes once a task's input is in host memory, the worker polls it).
        self._flag_mem = torch.zeros(32, dtype=torch.int32, pin_memory=self.on_gpu)
        self.flag = Flag(self._flag_mem[:16])
        self.ready = Flag(self._flag_mem[16:])
        self.task_mode = T.compile_tasks()
        self.worker = CpuWorker(self.flag, self.cpu_threads, self.ready)
        self.ops = StreamOps() if self.on_gpu else None
        self.seq = 0
        self.streamer: Optional["PrefillStreamer"] = None
        self.stats = dict(cpu_tasks=0, prefill_blocks=0, prefill_sync_copies=0)

    def submit(self, task: str, *args) -> int:
        """After the main stream's work queued so far (the input copies), runs the CPU task
        `task` (a name in spillway.tasks.TASKS) on `args`. Returns the sequence number to join
        on."""
        self.seq += 1
        seq = self.seq
        if self.ops is not None:
            self.ops.write(torch.cuda.current_stream().cuda_stream, self.ready.address, seq)
        else:
            self.ready.store(seq)  # simulation: the input is there already
        fn, ready, done = T.task(task), self.ready.tensor, self.flag.tensor
        self.worker.submit(lambda spins: fn(ready, done, seq, spins, *args), seq)
        self.stats["cpu_tasks"] += 1
        return seq

    def join(self, seq: int) -> None:
        """Makes the current stream wait until the CPU task `seq` is done."""
        if self.ops is not None:
            self.ops.wait_geq(torch.cuda.current_stream().cuda_stream, self.flag.address, seq)
            return
        # Simulation: block (no spinning) until the worker is idle, which includes task seq.
        self.worker.drain()

    def gpu_view(self, host: torch.Tensor) -> torch.Tensor:
        """The GPU road's view of spilled rows: zero-copy on CUDA, the rows themselves in the
        simulation."""
        return cuda_view(host) if self.on_gpu else host

    def fetch(self, block: torch.Tensor) -> torch.Tensor:
        """A spilled block for a large batch: streamed into VRAM on a GPU."""
        return self.streamer.get(block) if self.streamer is not None else block

    def close(self) -> None:
        self.worker.drain()
        self.worker.close()
        sys.setswitchinterval(self._old_switch)


class DoubleBuffer:
    """Which of two staging buffers holds which block, and what a request for block i must copy
    (pure; PrefillStreamer runs it with CUDA streams). Block i goes to buffer i % 2."""

    def __init__(self, n_blocks: int):
        self.n = n_blocks
        self.held: List[int] = [-1, -1]

    def request(self, i: int) -> Tuple[int, bool, Optional[int]]:
        """(buffer of block i, whether i must be copied now, block to prefetch into the other
        buffer or None)."""
        if not 0 <= i < self.n:
            raise IndexError(f"block {i} of {self.n}")
        slot = i % 2
        copy_now = self.held[slot] != i
        self.held[slot] = i
        nxt: Optional[int] = i + 1
        if nxt >= self.n or self.held[1 - slot] == nxt:
            nxt = None
        else:
            self.held[1 - slot] = nxt
        return slot, copy_now, nxt


class PrefillStreamer:
    """Copies spilled blocks into VRAM ahead of use for large batches, double-buffered: while
    the GEMMs of block i run, block i+1 crosses PCIe on a copy stream. Blocks are expected in
    the order given (the model's order); an unexpected one is copied on demand."""

    def __init__(self, engine: Engine, blocks: List[torch.Tensor]):
        self.engine = engine
        self.blocks = blocks
        self.index = {b.data_ptr(): i for i, b in enumerate(blocks)}
        cap = max((b.numel() * b.element_size() for b in blocks), default=0)
        self.capacity = cap
        self.bufs = [torch.empty(cap, dtype=torch.uint8, device=engine.device) for _ in range(2)]
        self.copy_stream = torch.cuda.Stream(device=engine.device)
        self.slots = DoubleBuffer(len(blocks))
        self.ready: List[Optional[torch.cuda.Event]] = [None, None]
        self.used: List[Optional[torch.cuda.Event]] = [None, None]
        # A block torch does not see as pinned is still copied, synchronously: counted here.
        engine.stats["prefill_blocks_not_pinned"] = sum(1 for b in blocks if not b.is_pinned())

    def _view(self, slot: int, i: int) -> torch.Tensor:
        b = self.blocks[i]
        n = b.numel() * b.element_size()
        return self.bufs[slot][:n].view(b.dtype).view(b.shape)

    def _issue(self, i: int) -> None:
        slot = i % 2
        with torch.cuda.stream(self.copy_stream):
            if self.used[slot] is not None:
                self.copy_stream.wait_event(self.used[slot])
            self._view(slot, i).copy_(self.blocks[i], non_blocking=True)
            ev = torch.cuda.Event()
            ev.record(self.copy_stream)
        self.ready[slot] = ev

    def get(self, block: torch.Tensor) -> torch.Tensor:
        """The VRAM copy of `block`, ready for the current stream. The previous block's buffer is
        reused for the next prefetch: callers finish queueing the work on one block before they
        ask for the one after it."""
        i = self.index.get(block.data_ptr())
        if i is None:
            raise KeyError("block not registered with the prefill streamer")
        cur = torch.cuda.current_stream()
        # Everything queued so far on the compute stream may read either buffer: a copy into
        # one waits for it.
        done = torch.cuda.Event()
        done.record(cur)
        self.used = [done, done]
        slot, copy_now, nxt = self.slots.request(i)
        if copy_now:
            self.engine.stats["prefill_sync_copies"] += 1
            self._issue(i)
        cur.wait_event(self.ready[slot])
        if nxt is not None:
            self._issue(nxt)
        self.engine.stats["prefill_blocks"] += 1
        return self._view(slot, i)
