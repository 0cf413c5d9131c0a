"""The CPU road's tasks (spillway.tasks), compiled and as Python: they wait for the ready word,
compute what the kernels compute, store their sequence number; compiled, they run without
the GIL."""

import sys
import threading
import time
import unittest

import torch
import torch.nn.functional as F

from spillway import kernels as K
from spillway import tasks as T
from spillway.worker import Flag

SILU = K.ACTIVATIONS["silu"]


def words():
    mem = torch.zeros(32, dtype=torch.int32)
    return mem[:16], mem[16:]


class Tasks(unittest.TestCase):
    def setUp(self):
        torch.manual_seed(3)
        self.x = torch.randn(2, 64, dtype=torch.bfloat16)

    def variants(self):
        self.assertEqual(T.compile_tasks(), "torchscript")  # Debian's torch compiles them
        return (("compiled", T.task), ("python", T.TASKS.__getitem__))

    def test_wrapping_compare_and_store(self):
        w = torch.zeros(1, dtype=torch.int32)
        for value in (0, 5, (1 << 31) - 1, 1 << 31, (1 << 32) - 3, (1 << 32) + 2):
            T.store(w, value)
            self.assertEqual(int(w[0]) & T.MASK32, value & T.MASK32)
            self.assertTrue(T.reached(w, value))
            self.assertTrue(T.reached(w, value - 1))
            self.assertFalse(T.reached(w, value + 1))

    def check_task(self, name, args, expect):
        for label, get in self.variants():
            done, ready = words()
            out = args[-1]
            out.zero_()
            fn = get(name)
            t0 = time.perf_counter()
            self.assertFalse(fn(ready, done, 7, 200, *args), label)   # input not there yet
            self.assertLess(time.perf_counter() - t0, 1.0)
            self.assertEqual(int(done[0]), 0, label)
            self.assertEqual(float(out.abs().sum()), 0.0, label)
            T.store(ready, 7)
            self.assertTrue(fn(ready, done, 7, 200, *args), label)
            self.assertEqual(int(done[0]), 7, label)
            torch.testing.assert_close(out.float(), expect.float(), rtol=2e-2, atol=2e-2)

    def test_rows(self):
        w = torch.randn(48, 64, dtype=torch.bfloat16)
        self.check_task("rows", (self.x, w, torch.zeros(2, 48, dtype=torch.bfloat16)),
                        F.linear(self.x.float(), w.float()))

    def test_mlp(self):
        gu = torch.randn(2 * 32, 64, dtype=torch.bfloat16) / 8
        dn = torch.randn(64, 32, dtype=torch.bfloat16) / 8
        self.check_task("mlp", (self.x, gu, dn, SILU, torch.zeros(2, 64, dtype=torch.bfloat16)),
                        K.mlp_part(self.x, gu, dn, SILU))

    def test_experts(self):
        gu = torch.randn(4, 2 * 32, 64, dtype=torch.bfloat16) / 8
        dn = torch.randn(4, 64, 32, dtype=torch.bfloat16) / 8
        idx = torch.tensor([[0, 3], [2, 1]])
        wt = torch.softmax(torch.randn(2, 2), -1)
        self.check_task("experts",
                        (self.x, idx, wt, gu, dn, SILU, torch.zeros(2, 64, dtype=torch.bfloat16)),
                        K.experts_part_loop(self.x, idx, wt, gu, dn, SILU))

    def _runs_while_gil_is_held(self, fn, within_s):
        """Starts `fn` (a rows task) on a thread, then holds the GIL (a pure-Python loop with a
        switch interval of 30 s: it gives the GIL up to nobody) while it makes the input ready
        and watches the done word. True when the task finished meanwhile."""
        done, ready = words()
        w = torch.randn(16, 64, dtype=torch.bfloat16)
        out = torch.zeros(2, 16, dtype=torch.bfloat16)

        def run():
            with T.optimizations_off():     # as in the worker
                fn(ready, done, 1, 10 ** 8, self.x, w, out)
        th = threading.Thread(target=run)
        ready_cell, done_cell = Flag(ready), Flag(done)
        # Set before the thread starts: a thread already waiting for the GIL would still ask
        # for it after the old interval.
        old = sys.getswitchinterval()
        sys.setswitchinterval(30.0)
        try:
            th.start()
            time.sleep(0.1)                 # the thread is inside the task, polling
            ready_cell.store(1)             # a ctypes store: no call that releases the GIL
            t0 = time.perf_counter()
            while done_cell.load() != 1 and time.perf_counter() - t0 < within_s:
                pass
            finished = done_cell.load() == 1
        finally:
            sys.setswitchinterval(old)
        th.join(10)
        self.assertFalse(th.is_alive())
        self.assertEqual(done_cell.load(), 1)
        return finished

    def test_compiled_task_needs_no_gil(self):
        self.assertTrue(self._runs_while_gil_is_held(T.task("rows"), 5.0))

    def test_python_task_needs_the_gil(self):
        # The contrast that shows the check above can fail: the Python version polls under the
        # GIL, so it can not finish while the GIL is held.
        self.assertFalse(self._runs_while_gil_is_held(T.TASKS["rows"], 0.3))

    def test_optimizations_off_is_per_thread(self):
        seen = []

        def look():
            with T.optimizations_off():
                seen.append(torch._C._get_graph_executor_optimize())
        th = threading.Thread(target=look)
        th.start()
        th.join()
        self.assertEqual(seen, [False])
        self.assertTrue(torch._C._get_graph_executor_optimize())


if __name__ == "__main__":
    unittest.main()
