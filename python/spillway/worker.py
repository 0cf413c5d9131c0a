"""The CPU road: one persistent worker thread that runs the CPU part of every spilled unit, in
the order the GPU asked for them.

The main thread (running the model) never waits for it: it submits a task (spillway.tasks)
and goes on queueing GPU work. A task polls the "ready" word the GPU writes once the task's
input is in host memory, computes, and stores its sequence number in the "done" word the GPU
stream waits on (spillway.cudaops). The worker makes no CUDA call at all: the main thread runs
so far ahead that its launches block on a full queue, inside the driver, while the GPU waits
for the worker; a worker that then called the driver (to wait for an event, or to destroy one)
hung the whole decode on the H100 (2026-12-06). Pure CPU: testable without a GPU.
"""

from __future__ import annotations

import ctypes
import queue
import sys
import threading
import time
from typing import Callable, Optional

import torch

from . import tasks as T

# A task whose input has not come after this long is reported once on stderr: a stalled GPU
# must not look like a slow one.
STALL_WARN_S = 10.0

# What the worker runs: called with a number of polls, returns True once the task is done,
# False when its input has not come within them.
Task = Callable[[int], bool]


class Flag:
    """A 32-bit counter in memory the GPU can read and write (pinned host memory on a GPU
    machine, any memory in tests). x86 stores are seen in order, so results written before
    the counter are visible when it is."""

    def __init__(self, tensor: torch.Tensor):
        if tensor.dtype != torch.int32 or tensor.numel() < 1 or tensor.device.type != "cpu":
            raise ValueError("Flag needs a CPU int32 tensor of at least one element")
        self.tensor = tensor
        self.address = tensor.data_ptr()
        self._cell = ctypes.c_uint32.from_address(self.address)

    def store(self, value: int) -> None:
        self._cell.value = value & T.MASK32

    def load(self) -> int:
        return self._cell.value

    def reached(self, value: int) -> bool:
        """Whether the counter is at or past `value` (32-bit, wrapping as the GPU compares)."""
        return T.reached(self.tensor, value)


class CpuWorker:
    """Runs submitted tasks on one thread, in submission order.

    A task (Task, with its sequence number seq) is called until it returns True; it stores seq
    in the done flag itself, so that the GPU goes on before this thread takes the GIL back, and
    the worker stores it again after it. A task that raises stops the worker: the error is kept
    and raised in the main thread at the next submit or drain(), and the flag is set to seq
    anyway so that no GPU stream waits forever. `ready` (the word the GPU writes) is only read
    for the stall report.
    """

    def __init__(self, done: Flag, threads: int, ready: Optional[Flag] = None):
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.done = done
        self.ready = ready
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
        with T.optimizations_off():
            while True:
                item = self._q.get()
                if item is None:
                    return
                run, seq = item
                try:
                    if self._error is None:
                        self._until_done(run, seq)
                except BaseException as e:  # kept for the main thread
                    self._error = e
                finally:
                    self.done.store(seq)
                    with self._lock:
                        self._pending -= 1
                        if self._pending == 0:
                            self._idle.set()

    def _until_done(self, run: Task, seq: int) -> None:
        start, warned = time.monotonic(), False
        while not run(T.SPINS):
            if not warned and time.monotonic() - start > STALL_WARN_S:
                warned = True
                at = self.ready.load() if self.ready is not None else "unknown"
                print(f"spillway: the CPU worker has waited {STALL_WARN_S:.0f} s for the input of "
                      f"task {seq} (the GPU's ready word is at {at}): the GPU is not reaching "
                      "this layer", file=sys.stderr, flush=True)

    def submit(self, run: Task, seq: int) -> None:
        self.raise_error()
        with self._lock:
            self._pending += 1
            self._idle.clear()
        self._q.put((run, seq))

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
