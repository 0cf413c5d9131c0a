# A CUDA program for the Slurm test's jobs: under the shim (LD_PRELOAD, set by the TaskProlog) on the
# fake driver, allocates MIB MiB in 128 MiB steps (each larger than the fake card's free VRAM, so
# each spills into the pool), says how far it got, then holds the memory until RELEASE exists.
#   python3 cuda-job.py MIB HELD_FILE RELEASE_FILE
# Prints "ALLOC ok MIB" or "ALLOC failed after N MiB: CUDA_ERROR_NAME"; exits 0 either way.
import ctypes
import os
import sys
import time

mib, held, release = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctypes.CDLL("libcuda.so.1", mode=ctypes.RTLD_GLOBAL)
cu = ctypes.CDLL(None)  # the global scope: the preloaded shim's cu* first


def check(rc: int, what: str) -> None:
    if rc != 0:
        print(f"ALLOC setup failed: {what} returned {rc}", flush=True)
        sys.exit(1)


def error_name(rc: int) -> str:
    name = ctypes.c_char_p()
    cu.cuGetErrorName(rc, ctypes.byref(name))
    return name.value.decode() if name.value else str(rc)


dev = ctypes.c_int()
ctx = ctypes.c_void_p()
check(cu.cuInit(0), "cuInit")
check(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
check(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
step = 128
done = 0
ptrs = []
result = None
while done < mib:
    ptr = ctypes.c_uint64()
    rc = cu.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(step << 20))
    if rc != 0:
        result = f"ALLOC failed after {done} MiB: {error_name(rc)}"
        break
    ptrs.append(ptr)
    done += step
print(result or f"ALLOC ok {done}", flush=True)
open(held, "w").close()
while not os.path.exists(release):
    time.sleep(0.1)
for p in ptrs:
    cu.cuMemFree_v2(p)
