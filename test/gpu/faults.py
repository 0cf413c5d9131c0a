"""Issue 7 item 6 on a real GPU: when spilling can not be served, the application gets a proper
CUDA out-of-memory error it can catch, nothing crashes, and what it already holds is intact.

Run under the shim with a small budget, in two modes chosen by the environment:
  SPILLWAY_BACKEND=pool (no /dev/spillway on the GPU machine: every spill fails, as on a full pool)
  SPILLWAY_BACKEND=host SPILLWAY_SPILL_LIMIT=1G (spilling stops at 1 GiB)
Prints one line per check, 'ok' or 'FAIL', and exits 1 if any check failed.
"""
import os
import sys

import torch

MiB = 2 ** 20
failed = 0


def check(cond, what):
    global failed
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    failed += not cond


def main():
    mode = os.environ.get("SPILLWAY_BACKEND", "?")
    limit = os.environ.get("SPILLWAY_VRAM_LIMIT", "?")
    print(f"mode: backend={mode} vram_limit={limit} spill_limit={os.environ.get('SPILLWAY_SPILL_LIMIT', 'none')}")
    held = []
    # Fill VRAM up to the budget with 256 MiB tensors, each with a known value.
    for i in range(64):
        try:
            held.append(torch.full((256 * MiB // 4,), float(i), device="cuda"))
        except torch.OutOfMemoryError:
            break
    check(len(held) > 0, f"{len(held)} tensors of 256 MiB allocated before the first refusal")
    # One more large request must fail cleanly (VRAM budget used, spilling refused or capped).
    oom = False
    try:
        for _ in range(16):
            held.append(torch.full((256 * MiB // 4,), 7.0, device="cuda"))
    except torch.OutOfMemoryError:
        oom = True
    check(oom, "a request past the budget and the spill limit raises torch.OutOfMemoryError")
    torch.cuda.synchronize()
    # With the budget full and spilling refused, every request of SPILLWAY_MIN_SPILL or more fails,
    # even the 2 MiB segment a reduction needs: give one tensor back first, as a program would.
    del held[-1]
    torch.cuda.empty_cache()
    # What the program already held is intact and usable.
    # Reductions only: an elementwise comparison would need a 256 MiB temporary, which the full
    # budget refuses too.
    good = all(float(t.min()) == float(t.max()) for t in held) and all(float(held[i].max()) == float(i) for i in range(min(8, len(held))))
    check(good, "every tensor allocated before the refusal still holds its values")
    total = sum(float(t.sum()) for t in held)
    check(total == total, "a kernel over all held tensors runs after the refusal")
    # Freeing makes room again: the shim routed the frees and its accounts went down.
    n = len(held)
    del held[n // 2:]
    torch.cuda.empty_cache()
    try:
        x = torch.ones(256 * MiB // 4, device="cuda")
        check(float(x.sum()) == 256 * MiB // 4, "after freeing half, a new 256 MiB tensor is allocated and correct")
    except torch.OutOfMemoryError:
        check(False, "after freeing half, a new 256 MiB tensor is allocated and correct")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
