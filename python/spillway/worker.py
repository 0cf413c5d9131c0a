"""The CPU road: one persistent worker thread that runs the CPU part of every spilled unit, in
the order the GPU asked for them.

The main thread (running the model) never waits for it: it submits a task with a "ready" wait
(the input has reached host memory) and goes on queueing GPU work; the task signals completion
by storing its sequence number in a flag the GPU stream waits on (spillway.cudaops). Torch
releases the GIL inside its operators, so the worker's GEMVs run beside the main thread's
kernel launches. Pure CPU: testable without a GPU.
"""

from __future__ import annotations

import ctypes
import os
import queue
import sys
import threading
import time
from typing import Callable, Optional

import torch


# A task whose input has not come after this long is reported once on stderr: a stalled GPU
# must not look like a slow one.
STALL_WARN_S = 10.0


class Flag:
    """A 32-bit counter in memory the GPU can read (pinned host memory on a GPU machine, any
    memory in tests). The worker stores sequence numbers into it; x86 stores are seen in order,
    so results written before the flag are visible when the flag is."""

    def __init__(self, tensor: torch.Tensor):
        if tensor.dtype != torch.int32 or tensor.numel() < 1 or tensor.device.type != "cpu":
            raise ValueError("Flag needs a CPU int32 tensor of at least one element")
        self.tensor = tensor
        self.address = tensor.data_ptr()
        self._cell = ctypes.c_uint32.from_address(self.address)

    def store(self, value: int) -> None:
        self._cell.value = value & 0xFFFFFFFF

    def load(self) -> int:
        return self._cell.value

    def reached(self, value: int) -> bool:
        """Whether the counter is at or past `value` (32-bit, wrapping as the GPU compares)."""
        return (self._cell.value - value) & 0xFFFFFFFF < 0x80000000

    def wait_until(self, value: int) -> None:
        """Polls until the counter reaches `value`, yielding the CPU (and the GIL) between
        looks. Makes no CUDA call: the worker must never wait in the driver while the GPU waits
        for the worker (a launch blocked on a full queue holds the driver, and the GPU waits
        for this thread: seen on the H100 as a hang of the whole decode, 2026-12-06)."""
        spins, start, warned = 0, time.monotonic(), False
        while not self.reached(value):
            os.sched_yield()
            spins += 1
            if not warned and spins % 4096 == 0 and time.monotonic() - start > STALL_WARN_S:
                warned = True
                print(f"spillway: the CPU worker has waited {STALL_WARN_S:.0f} s for the input of "
                      f"task {value} (the GPU's ready word is at {self.load()}): the GPU is not "
                      "reaching this layer", file=sys.stderr, flush=True)


class CpuWorker:
    """Runs submitted tasks on one thread, in submission order.

    A task is (wait, work, seq): the worker calls wait() (blocks until the input is in host
    memory; releases the GIL), then work(), then stores seq in the done flag. A task that raises
    stops the worker: the error is kept and raised in the main thread at the next submit or
    drain(), and the flag is set to seq anyway so that no GPU stream waits forever.
    """

    def __init__(self, done: Flag, threads: int):
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.done = done
        self.threads = threads
        self._q: "queue.SimpleQueue" = queue.SimpleQueue()
        self._error: Optional[BaseException] = None
        self._idle = threading.Event()
        self._idle.set()
        self._pending = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="spillway-cpu", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # OpenMP's thread count is per calling thread: set it here, not in the main thread.
        torch.set_num_threads(self.threads)
        while True:
            item = self._q.get()
            if item is None:
                return
            wait, work, seq = item
            try:
                if self._error is None:
                    if wait is not None:
                        wait()
                    work()
            except BaseException as e:  # kept for the main thread
                self._error = e
            finally:
                self.done.store(seq)
                with self._lock:
                    self._pending -= 1
                    if self._pending == 0:
                        self._idle.set()

    def submit(self, wait: Optional[Callable[[], None]], work: Callable[[], None], seq: int) -> None:
        self.raise_error()
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._q.put((wait, work, seq))

    def drain(self, timeout: Optional[float] = None) -> None:
        """Waits until every submitted task ran; raises a task's error."""
        if not self._idle.wait(timeout):
            raise TimeoutError("spillway CPU worker did not finish in time")
        self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            e, self._error = self._error, None
            raise RuntimeError("spillway CPU worker task failed") from e

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
