import threading
import time
import unittest

import torch

from spillway.worker import CpuWorker, Flag


def at_once(work):
    def run(spins):
        work()
        return True
    return run


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.flag = Flag(torch.zeros(4, dtype=torch.int32))
        self.ready = Flag(torch.zeros(4, dtype=torch.int32))
        self.w = CpuWorker(self.flag, threads=1, ready=self.ready)

    def tearDown(self):
        self.w.close()

    def test_flag_is_the_memory(self):
        self.flag.store(7)
        self.assertEqual(int(self.flag.tensor[0]), 7)
        self.flag.tensor[0] = 9
        self.assertEqual(self.flag.load(), 9)

    def test_reached_compares_as_the_gpu_does(self):
        self.flag.store(5)
        self.assertTrue(self.flag.reached(5))
        self.assertTrue(self.flag.reached(4))
        self.assertFalse(self.flag.reached(6))
        self.flag.store(2)  # wrapped past 2**32: ahead of a value just below it
        self.assertTrue(self.flag.reached((1 << 32) - 3))

    def test_flag_needs_int32_cpu(self):
        with self.assertRaises(ValueError):
            Flag(torch.zeros(1, dtype=torch.int64))

    def test_task_is_called_until_done_and_in_order(self):
        order, calls = [], []
        gate = threading.Event()

        def first(spins):
            calls.append(spins)
            if not gate.is_set():
                time.sleep(0.001)
                return False
            order.append(1)
            return True
        self.w.submit(first, 1)
        self.w.submit(at_once(lambda: order.append(2)), 2)
        time.sleep(0.05)
        self.assertEqual(order, [])          # waits for its input
        self.assertEqual(self.flag.load(), 0)
        gate.set()
        self.w.drain(5)
        self.assertEqual(order, [1, 2])
        self.assertEqual(self.flag.load(), 2)
        self.assertGreater(len(calls), 1)
        self.assertTrue(all(s > 0 for s in calls))

    def test_a_long_wait_is_reported_once(self):
        import io
        from unittest import mock
        import spillway.worker as W
        release = time.monotonic() + 0.3
        self.ready.store(41)
        err = io.StringIO()
        with mock.patch.object(W, "STALL_WARN_S", 0.05), mock.patch.object(W.sys, "stderr", err):
            self.w.submit(lambda spins: time.sleep(0.01) or time.monotonic() > release, 42)
            self.w.drain(5)
        self.assertEqual(err.getvalue().count("has waited"), 1, err.getvalue())
        self.assertIn("task 42", err.getvalue())
        self.assertIn("ready word is at 41", err.getvalue())

    def test_runs_torch_work(self):
        x = torch.randn(1, 256)
        w = torch.randn(512, 256)
        out = torch.empty(1, 512)
        self.w.submit(at_once(lambda: torch.mm(x, w.t(), out=out)), 1)
        self.w.drain(5)
        self.assertTrue(torch.allclose(out, x @ w.t(), atol=1e-4))

    def test_error_is_raised_and_flag_still_set(self):
        def boom():
            raise ValueError("bad task")
        self.w.submit(at_once(boom), 5)
        with self.assertRaisesRegex(RuntimeError, "task failed"):
            self.w.drain(5)
        self.assertEqual(self.flag.load(), 5)   # a GPU stream waiting on 5 is released

    def test_bad_thread_count(self):
        with self.assertRaises(ValueError):
            CpuWorker(self.flag, 0)


if __name__ == "__main__":
    unittest.main()
