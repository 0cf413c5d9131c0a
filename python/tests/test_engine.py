"""Engine.submit's GPU path with stand-ins for the stream operations (the real ones need a GPU:
test/gpu/hybrid_smoke.py): the worker waits for the ready flag the stream writes, and calls no
CUDA while it waits."""

import time
import unittest
from unittest import mock

import torch

from spillway.engine import Engine


class FakeOps:
    """Records the stream operations; a write is "executed" by the test, as the GPU would."""

    def __init__(self):
        self.writes, self.waits = [], []

    def write(self, stream, address, value):
        self.writes.append((stream, address, value))

    def wait_geq(self, stream, address, value):
        self.waits.append((stream, address, value))


class Stream:
    cuda_stream = 77


class EngineGpuPathTest(unittest.TestCase):
    def setUp(self):
        self.engine = Engine(torch.device("cpu"), cpu_threads=1)
        self.ops = self.engine.ops = FakeOps()
        patcher = mock.patch.object(torch.cuda, "current_stream", lambda: Stream())
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(self.engine.close)

    def test_task_runs_once_the_stream_writes_ready(self):
        x, w = torch.randn(1, 32), torch.randn(24, 32)
        out = torch.zeros(1, 24)
        with mock.patch.object(torch.cuda, "Event", side_effect=AssertionError("no CUDA event")):
            seq = self.engine.submit("rows", x, w, out)
        (stream, address, value), = self.ops.writes
        self.assertEqual((stream, address, value), (77, self.engine.ready.address, seq))
        time.sleep(0.05)
        self.assertEqual(float(out.abs().sum()), 0.0)   # input not in host memory yet
        self.assertFalse(self.engine.flag.reached(seq))
        self.engine.ready.store(value)          # what the GPU's write does
        t0 = time.monotonic()
        while not self.engine.flag.reached(seq) and time.monotonic() - t0 < 5:
            time.sleep(0.001)
        torch.testing.assert_close(out, x @ w.t())
        self.engine.join(seq)
        self.assertEqual(self.ops.waits, [(77, self.engine.flag.address, seq)])
        self.engine.worker.drain(5)
        self.assertEqual(self.engine.flag.load(), seq)

    def test_flags_are_separate_cache_lines(self):
        self.assertGreaterEqual(abs(self.engine.ready.address - self.engine.flag.address), 64)


if __name__ == "__main__":
    unittest.main()
