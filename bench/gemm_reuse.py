"""How many times a GEMM reads a weight that lives in host memory, and
whether the kind of host memory matters.

  python3 bench/gemm_reuse.py --out gemm.json

One bf16 weight W [14336, 4096] (117 MB, a Llama-7B MLP projection) lives
in VRAM or in host memory the GPU reads in place over PCIe (what spilled
memory is). For x [M, 4096], M from 1 (decode) to 2048 (prefill), y = x W^T
is timed with W in:

  vram       VRAM
  hostalloc  cudaHostAlloc'd pinned memory (PyTorch's pin_memory)
  memfd      a memfd mapping registered with cudaHostRegister, 4 KiB pages:
             what the shim's host backend hands out
  thp        anonymous memory with transparent huge pages, registered the
             same way: whether 2 MiB pages change anything
  copy+gemm  W copied to VRAM first (cudaMemcpy from pinned), then the GEMM:
             what explicit offloading pays

passes = time(GEMM on host memory) / time(one read of W over PCIe): how many
times the GEMM pulls W across PCIe. Also timed: x (the activations) in host
memory with W in VRAM, as when a framework's activations are spilled. Where
NVML answers, the GPU's PCIe receive counter is sampled during a longer loop
of the M=2048 and M=1 cases as a second count.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def timed(fn, reps):
    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    out = []
    for _ in range(reps):
        s.record()
        fn()
        e.record()
        e.synchronize()
        out.append(s.elapsed_time(e) * 1e-3)
    return statistics.median(out)


def registered_host(like, kind):
    """A CUDA view of `like`'s shape on host memory registered with
    cudaHostRegister: kind 'memfd' (MAP_SHARED memfd, 4 KiB pages, as the
    shim's host backend) or 'thp' (anonymous, MADV_HUGEPAGE). Returns
    (view, keepalive, huge_bytes) where huge_bytes is the growth of
    AnonHugePages (THP actually used)."""
    import ctypes
    import mmap
    nbytes = like.numel() * like.element_size()
    two_mb = 2 << 20
    huge0 = _anon_huge()
    if kind == "memfd":
        fd = os.memfd_create("spillway-bench")
        os.ftruncate(fd, nbytes)
        m = mmap.mmap(fd, nbytes, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        addr = base
    else:
        m = mmap.mmap(-1, nbytes + two_mb, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                      prot=mmap.PROT_READ | mmap.PROT_WRITE)
        m.madvise(mmap.MADV_HUGEPAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(m))
        addr = (base + two_mb - 1) & ~(two_mb - 1)
    err = torch.cuda.cudart().cudaHostRegister(addr, nbytes, 3)  # portable | mapped
    if int(err) != 0:
        raise RuntimeError(f"cudaHostRegister({kind}) failed: {err}")
    view = models.cuda_view(addr, like)
    view.copy_(like)
    torch.cuda.synchronize()
    return view, m, _anon_huge() - huge0


def _anon_huge():
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def nvml_rx_bytes(fn, seconds):
    """Runs fn repeatedly for about `seconds`, sampling the GPU's PCIe
    receive throughput with NVML (20 ms windows). Returns (bytes received
    estimate, calls made) or None where NVML does not answer."""
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        pynvml.nvmlDeviceGetPcieThroughput(h, pynvml.NVML_PCIE_UTIL_RX_BYTES)
    except Exception as e:  # noqa: BLE001 - any NVML failure means no figure
        return dict(error=repr(e))
    samples, stop = [], threading.Event()

    def sampler():
        while not stop.is_set():
            samples.append(pynvml.nvmlDeviceGetPcieThroughput(
                h, pynvml.NVML_PCIE_UTIL_RX_BYTES))  # KB/s
            time.sleep(0.02)

    th = threading.Thread(target=sampler)
    torch.cuda.synchronize()
    th.start()
    t0, calls = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    stop.set()
    th.join()
    kbps = statistics.median(samples) if samples else 0
    return dict(rx_gbps_median=kbps * 1e3 / 1e9, seconds=dt, calls=calls,
                rx_bytes_per_call=kbps * 1e3 * dt / calls, samples=len(samples))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=14336)
    ap.add_argument("--k", type=int, default=4096)
    ap.add_argument("--ms", default="1,4,16,64,256,512,1024,2048")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    torch.manual_seed(0)
    w_vram = torch.randn(a.n, a.k, device="cuda", dtype=torch.bfloat16) * 0.02
    w_host, owner = models.to_mapped_host(w_vram)  # cudaHostAlloc'd, pinned
    weights = dict(vram=w_vram, hostalloc=w_host)
    keep, res = [owner], dict(n=a.n, k=a.k, device=torch.cuda.get_device_name(0), rows=[])
    for kind in ("memfd", "thp"):
        try:
            view, m, huge = registered_host(w_vram, kind)
            weights[kind] = view
            keep.append(m)
            res[f"{kind}_anon_huge_bytes"] = huge
        except Exception as e:  # noqa: BLE001 - reported, the rest still runs
            res[f"{kind}_error"] = repr(e)
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            res["thp_enabled"] = f.read().strip()
    except OSError:
        pass
    w_dst = torch.empty_like(w_vram)
    nbytes = w_vram.numel() * 2
    res["weight_bytes"] = nbytes
    t_read = {k: timed(lambda w=w: w.sum(dtype=torch.float32), a.reps) for k, w in weights.items()}
    res["read_gbps"] = {k: nbytes / t / 1e9 for k, t in t_read.items()}
    t_copy = timed(lambda: w_dst.copy_(owner, non_blocking=True), a.reps)
    res["copy_h2d_gbps"] = nbytes / t_copy / 1e9
    print("read GB/s", {k: round(v, 1) for k, v in res["read_gbps"].items()},
          "copy", round(res["copy_h2d_gbps"], 1), flush=True)
    for m in [int(x) for x in a.ms.split(",")]:
        x = torch.randn(m, a.k, device="cuda", dtype=torch.bfloat16)
        ref = F.linear(x.float(), w_vram.float())
        row = dict(m=m)
        for kind, w in weights.items():
            got = F.linear(x, w).float()
            err = ((got - ref).norm() / ref.norm()).item()
            if not err < 1e-2:
                raise SystemExit(f"M={m} {kind}: GEMM differs from reference, rel err {err}")
            t = timed(lambda w=w: F.linear(x, w), a.reps)
            row[f"{kind}_ms"] = t * 1e3
            if kind != "vram":
                row[f"{kind}_passes"] = t / t_read[kind]
        row["copy_gemm_ms"] = timed(
            lambda: (w_dst.copy_(owner, non_blocking=True), F.linear(x, w_dst)), a.reps) * 1e3
        if m >= 256:
            x_host, xo = models.to_mapped_host(x)
            keep.append(xo)
            row["activations_in_host_ms"] = timed(lambda: F.linear(x_host, w_vram), a.reps) * 1e3
        res["rows"].append(row)
        print(f"M={m:5d} " + "  ".join(
            f"{k[:-3]} {v:8.3f}" for k, v in row.items() if k.endswith("_ms")) + "  passes " +
            " ".join(f"{k[:-7]} {v:.1f}" for k, v in row.items() if k.endswith("_passes")),
            flush=True)
    w_mapped = w_host
    x = torch.randn(2048, a.k, device="cuda", dtype=torch.bfloat16)
    res["nvml_m2048"] = nvml_rx_bytes(lambda: F.linear(x, w_mapped), 1.5)
    if "rx_bytes_per_call" in res["nvml_m2048"]:
        res["nvml_m2048"]["passes"] = res["nvml_m2048"]["rx_bytes_per_call"] / nbytes
    res["nvml_m1"] = nvml_rx_bytes(lambda: F.linear(x[:1], w_mapped), 1.0)
    if "rx_bytes_per_call" in res["nvml_m1"]:
        res["nvml_m1"]["passes"] = res["nvml_m1"]["rx_bytes_per_call"] / nbytes
    print("nvml", res["nvml_m2048"], res["nvml_m1"], flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
