"""An allocation-heavy PyTorch loop that fits in VRAM: the worst case for
an allocation interposer. Run with PYTORCH_NO_CUDA_MEMORY_CACHING=1 so that
every tensor is a cudaMalloc and a cudaFree, with and without the shim.

  PYTORCH_NO_CUDA_MEMORY_CACHING=1 python3 bench/alloc_loop.py --out loop.json
"""

import argparse
import json
import os
import statistics
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sizes = [(1 << 20) * (1 + i % 32) for i in range(64)]  # 1..32 MiB
    torch.cuda.init()
    check = 0.0
    rounds = []
    for r in range(a.rounds + 1):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(a.iters):
            n = sizes[i % len(sizes)] // 4
            t = torch.empty(n, device="cuda")
            t.fill_(1.0)
            u = t * 2
            if i % 500 == 0:
                check += u[-1].item()
            del t, u
        torch.cuda.synchronize()
        if r:  # round 0 warms up
            rounds.append((time.perf_counter() - t0) / a.iters * 1e6)
    if check != 2.0 * len(range(0, a.iters, 500)) * (a.rounds + 1):
        raise SystemExit(f"wrong results: {check}")
    res = dict(caching_disabled=os.environ.get("PYTORCH_NO_CUDA_MEMORY_CACHING") == "1",
               shim=os.environ.get("LD_PRELOAD", ""), iters=a.iters,
               us_per_iter_rounds=rounds, us_per_iter_median=statistics.median(rounds),
               allocations_per_iter=2, device=torch.cuda.get_device_name(0))
    print(f"alloc loop: {res['us_per_iter_median']:.1f} us/iteration "
          f"(rounds {', '.join(f'{v:.1f}' for v in rounds)}) shim={bool(res['shim'])}",
          flush=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
