"""Stream memory operations through the driver API (ctypes): the GPU stream waits for the CPU
worker's flag without any host thread blocking. Only on a GPU machine."""

from __future__ import annotations

import ctypes
from typing import Optional

CU_STREAM_WAIT_VALUE_GEQ = 0x0  # cuda.h: CUstreamWaitValue_flags


class StreamOps:
    def __init__(self, libcuda: Optional[ctypes.CDLL] = None):
        lib = libcuda or ctypes.CDLL("libcuda.so.1")
        fn = None
        for name in ("cuStreamWaitValue32_v2", "cuStreamWaitValue32"):
            fn = getattr(lib, name, None)
            if fn is not None:
                break
        if fn is None:
            raise RuntimeError("libcuda has no cuStreamWaitValue32: driver too old for spillway's hybrid decode")
        fn.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint]
        fn.restype = ctypes.c_int
        self._wait = fn

    def wait_geq(self, stream_handle: int, address: int, value: int) -> None:
        """Queues on `stream_handle`: wait until the 32-bit word at `address` (GPU-mapped host
        memory) is >= value."""
        rc = self._wait(ctypes.c_void_p(stream_handle), address, value & 0xFFFFFFFF,
                        CU_STREAM_WAIT_VALUE_GEQ)
        if rc != 0:
            raise RuntimeError(f"cuStreamWaitValue32 failed with CUDA error {rc}")
