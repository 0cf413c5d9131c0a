"""Stream memory operations through the driver API (ctypes): the GPU stream waits for the CPU
worker's flag, and tells the worker its input is ready by writing another, without any host
thread blocking or the worker calling CUDA. Only on a GPU machine."""

from __future__ import annotations

import ctypes
from typing import Optional

CU_STREAM_WAIT_VALUE_GEQ = 0x0  # cuda.h: CUstreamWaitValue_flags
CU_STREAM_WRITE_VALUE_DEFAULT = 0x0  # cuda.h: the write follows a memory barrier


def _symbol(lib: ctypes.CDLL, names: tuple, what: str):
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint]
            fn.restype = ctypes.c_int
            return fn
    raise RuntimeError(f"libcuda has no {what}: driver too old for spillway's hybrid decode")


class StreamOps:
    def __init__(self, libcuda: Optional[ctypes.CDLL] = None):
        lib = libcuda or ctypes.CDLL("libcuda.so.1")
        self._wait = _symbol(lib, ("cuStreamWaitValue32_v2", "cuStreamWaitValue32"),
                             "cuStreamWaitValue32")
        self._write = _symbol(lib, ("cuStreamWriteValue32_v2", "cuStreamWriteValue32"),
                              "cuStreamWriteValue32")

    def wait_geq(self, stream_handle: int, address: int, value: int) -> None:
        """Queues on `stream_handle`: wait until the 32-bit word at `address` (GPU-mapped host
        memory) is >= value."""
        rc = self._wait(ctypes.c_void_p(stream_handle), address, value & 0xFFFFFFFF,
                        CU_STREAM_WAIT_VALUE_GEQ)
        if rc != 0:
            raise RuntimeError(f"cuStreamWaitValue32 failed with CUDA error {rc}")

    def write(self, stream_handle: int, address: int, value: int) -> None:
        """Queues on `stream_handle`: once the work before it is done (and its writes visible),
        store the 32-bit `value` at `address` (GPU-mapped host memory)."""
        rc = self._write(ctypes.c_void_p(stream_handle), address, value & 0xFFFFFFFF,
                         CU_STREAM_WRITE_VALUE_DEFAULT)
        if rc != 0:
            raise RuntimeError(f"cuStreamWriteValue32 failed with CUDA error {rc}")
