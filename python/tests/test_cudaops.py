"""StreamOps against a stand-in for libcuda (the real one needs a GPU: test/gpu/hybrid_smoke.py)."""

import unittest

from spillway.cudaops import CU_STREAM_WAIT_VALUE_GEQ, CU_STREAM_WRITE_VALUE_DEFAULT, StreamOps


class FakeFn:
    def __init__(self, rc=0):
        self.rc, self.calls = rc, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.rc


class FakeLib:
    def __init__(self, rc=0, name="cuStreamWaitValue32_v2", write="cuStreamWriteValue32_v2"):
        setattr(self, name, FakeFn(rc))
        if write:
            setattr(self, write, FakeFn(rc))


class StreamOpsTest(unittest.TestCase):
    def test_prefers_v2_and_passes_arguments(self):
        lib = FakeLib()
        ops = StreamOps(lib)
        ops.wait_geq(1234, 0x7F0000001000, 5)
        (stream, addr, value, flags), = lib.cuStreamWaitValue32_v2.calls
        self.assertEqual(stream.value, 1234)
        self.assertEqual((addr, value, flags), (0x7F0000001000, 5, CU_STREAM_WAIT_VALUE_GEQ))

    def test_value_wraps_to_32_bits(self):
        lib = FakeLib()
        StreamOps(lib).wait_geq(0, 64, (1 << 32) + 3)
        self.assertEqual(lib.cuStreamWaitValue32_v2.calls[0][2], 3)

    def test_write_passes_arguments_with_the_barrier(self):
        lib = FakeLib()
        StreamOps(lib).write(99, 0x7F0000002000, (1 << 32) + 7)
        (stream, addr, value, flags), = lib.cuStreamWriteValue32_v2.calls
        self.assertEqual(stream.value, 99)
        self.assertEqual((addr, value, flags), (0x7F0000002000, 7, CU_STREAM_WRITE_VALUE_DEFAULT))

    def test_write_errors_and_missing_write(self):
        with self.assertRaisesRegex(RuntimeError, "cuStreamWriteValue32 failed with CUDA error 2"):
            StreamOps(FakeLib(rc=2)).write(0, 64, 1)
        with self.assertRaisesRegex(RuntimeError, "no cuStreamWriteValue32"):
            StreamOps(FakeLib(write=None))

    def test_old_name_and_errors(self):
        lib = FakeLib(rc=1, name="cuStreamWaitValue32", write="cuStreamWriteValue32")
        with self.assertRaisesRegex(RuntimeError, "CUDA error 1"):
            StreamOps(lib).wait_geq(0, 64, 1)

    def test_missing_symbol(self):
        with self.assertRaisesRegex(RuntimeError, "driver too old"):
            StreamOps(object())


if __name__ == "__main__":
    unittest.main()
