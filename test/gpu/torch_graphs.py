"""PyTorch CUDA graphs with weights that fill a budget (issue 13, item 1).

Allocates 4 x 512 MiB of "weights" (under the shim with SPILLWAY_VRAM_LIMIT=2G the last one
spills), warms up on a side stream, captures a step whose temporaries (8 MiB and 256 MiB) are
allocated and freed inside the capture, replays it with new inputs and compares every replay
with the same step run eagerly.  Run under both allocators (PYTORCH_CUDA_ALLOC_CONF unset, or
backend:cudaMallocAsync).  Prints "RESULT torch_graphs[<allocator>] PASS|FAIL <detail>".
"""
import ctypes
import json
import os

import torch

MIB = 1 << 20


def shim_stats() -> dict | None:
    try:
        fn = ctypes.CDLL(None).spillway_stats_json
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(16384)
    fn(buf, ctypes.c_size_t(len(buf)))
    return json.loads(buf.value.decode())


def shim_summary() -> str:
    stats = shim_stats()
    if not stats:
        return ""
    c = stats.get("counts", {})
    keys = ("spills", "spill_failures", "deferred_frees", "arenas_created")
    return "; shim: " + ", ".join(f"{k} {c.get(k)}" for k in keys) + \
        f", spilled {stats.get('spill_peak', 0) // MIB} MiB at peak"


def step(x: torch.Tensor, weights: list[torch.Tensor], out: torch.Tensor) -> None:
    n = x.numel()
    big = x * 2.0 + weights[-1][:n]          # 256 MiB temporary, reads the spilled weight
    small = big[: 2 * MIB].sin()             # 8 MiB temporary
    big.mul_(0.5)
    del small
    again = big + weights[0][:n]             # another 256 MiB temporary after a free
    del big
    out.copy_(again.relu())


def main() -> None:
    conf = os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "")
    name = "async" if "cudaMallocAsync" in conf else "native"
    label = f"torch_graphs[{name}]"
    torch.manual_seed(0)
    weights = [torch.randn(128 * MIB, device="cuda") for _ in range(4)]  # 4 x 512 MiB
    n = 64 * MIB                                                         # 256 MiB
    static_x = torch.randn(n, device="cuda")
    out = torch.empty(n, device="cuda")
    inputs = [torch.randn(n, device="cuda") for _ in range(3)]
    expected = []
    for x in inputs:
        o = torch.empty_like(out)
        step(x, weights, o)
        expected.append(o.clone())
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step(static_x, weights, out)
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            step(static_x, weights, out)
        torch.cuda.synchronize()
    except Exception as e:  # what the application sees is the result
        first = str(e).splitlines()[0] if str(e) else ""
        print(f"RESULT {label} FAIL capture: {type(e).__name__}: {first}{shim_summary()}")
        raise SystemExit(1)
    bad = 0
    for x, e in zip(inputs, expected):
        static_x.copy_(x)
        graph.replay()
        torch.cuda.synchronize()
        bad += int(not torch.equal(out, e))
    spilled = shim_summary()
    verdict = "PASS" if bad == 0 else "FAIL"
    print(f"RESULT {label} {verdict} {len(inputs) - bad}/{len(inputs)} replays equal the eager step{spilled}")
    raise SystemExit(0 if bad == 0 else 1)


if __name__ == "__main__":
    main()
