"""Where the time of a decode step goes, by kernel and by host call: a
diagnostic for docs/performance.md, run under the shim like decode.py.

  LD_PRELOAD=shim/build/libspillway-cuda.so SPILLWAY_BACKEND=host \\
    SPILLWAY_VRAM_LIMIT=8G python3 bench/profile_decode.py --out prof.txt

Builds the dense model on cuda, runs a 512-token prefill, then profiles
(torch.profiler) the prefill again, decode steps 1-3 and decode steps 21-23,
and prints the top entries of each window by device time and by host time.
"""

import argparse
import os
import sys
import time

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def table(prof, key, rows):
    try:
        return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60)
    except (KeyError, AttributeError, RuntimeError):
        return prof.key_averages().table(sort_by=key.replace("device", "cuda"), row_limit=rows,
                                         max_name_column_width=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="dense", choices=sorted(models.ARCHS))
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--warm-cublas-first", action="store_true",
                    help="run bf16 matmuls before building the model, so that cuBLAS's "
                         "workspaces are allocated while VRAM is still under the budget")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.backends.cuda.enable_cudnn_sdp(False)
    if a.warm_cublas_first:
        for m in (1, 16, 512):
            x = torch.randn(m, 4096, device="cuda", dtype=torch.bfloat16)
            torch.nn.functional.linear(x, torch.randn(14336, 4096, device="cuda",
                                                      dtype=torch.bfloat16))
        torch.cuda.synchronize()
        del x
    config = models.make_config(a.arch)
    model = models.build_on(config, "cuda")
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (1, a.prompt), generator=gen).to("cuda")
    out_lines = []

    def window(name, fn):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        out_lines.append(f"=== {name}: {dt * 1e3:.1f} ms wall (profiled)")
        out_lines.append(table(prof, "self_device_time_total", 12))
        out_lines.append(table(prof, "self_cpu_time_total", 8))
        print(out_lines[-3], flush=True)

    with torch.inference_mode():
        warm = model(input_ids=ids[:, :16], use_cache=True)
        del warm
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        window("prefill", lambda: model(input_ids=ids, use_cache=True, logits_to_keep=1))
        cache, nxt = out.past_key_values, out.logits[:, -1:].argmax(-1)
        state = dict(cache=cache, nxt=nxt)

        def steps(n):
            for _ in range(n):
                o = model(input_ids=state["nxt"], past_key_values=state["cache"], use_cache=True)
                state["cache"], state["nxt"] = o.past_key_values, o.logits[:, -1:].argmax(-1)

        window("decode steps 1-3", lambda: steps(3))
        t = []
        for _ in range(17):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            steps(1)
            torch.cuda.synchronize()
            t.append(round((time.perf_counter() - t0) * 1e3, 1))
        out_lines.append(f"=== decode steps 4-20, ms each: {t}")
        print(out_lines[-1], flush=True)
        window("decode steps 21-23", lambda: steps(3))
    with open(a.out, "w") as f:
        f.write("\n".join(out_lines) + "\n")


if __name__ == "__main__":
    main()
