"""JAX's default preallocation under the shim: where its heap lands.

  LD_PRELOAD=shim/build/libspillway-cuda.so SPILLWAY_VRAM_LIMIT=8G python3 bench/jax_prealloc.py

JAX (XLA_PYTHON_CLIENT_PREALLOCATE defaults to true) takes 75 % of the free memory the
driver reports in one request at start. Prints one JSON line: what cuMemGetInfo reported
(through the shim when it is loaded), JAX's pool limit, the shim's VRAM and spilled bytes,
and the time of a 4096^3 matmul in that heap.
"""

from __future__ import annotations

import ctypes
import json
import time


def shim_stats() -> dict | None:
    try:
        fn = ctypes.CDLL(None).spillway_stats_json
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(1 << 16)
    fn(buf, len(buf))
    return json.loads(buf.value.decode())


def driver_mem_info() -> tuple[int, int]:
    cuda = ctypes.CDLL("libcuda.so.1")
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    cuda.cuMemGetInfo_v2(ctypes.byref(free), ctypes.byref(total))
    return free.value, total.value


def main() -> None:
    import jax
    import jax.numpy as jnp

    dev = jax.devices()[0]
    x = jnp.ones((4096, 4096), dtype=jnp.bfloat16)
    (x @ x).block_until_ready()
    t0 = time.perf_counter()
    for _ in range(20):
        y = x @ x
    y.block_until_ready()
    ms = (time.perf_counter() - t0) / 20 * 1e3
    mem = dev.memory_stats() or {}
    free, total = driver_mem_info()
    stats = shim_stats()
    out = dict(device=str(dev), bytes_limit=mem.get("bytes_limit"),
               bytes_reserved=mem.get("bytes_reserved"), bytes_in_use=mem.get("bytes_in_use"),
               reported_free=free, reported_total=total, matmul_ms=round(ms, 3))
    if stats:
        d = stats["devices"][0] if stats["devices"] else {}
        out.update(shim_vram_bytes=d.get("vram_bytes"), shim_spill_bytes=d.get("spill_bytes"),
                   shim_report=stats["config"]["report"], shim_vram_limit=stats["config"]["vram_limit"])
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
