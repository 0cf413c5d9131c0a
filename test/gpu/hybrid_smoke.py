"""GPU check of python/spillway (not part of npm test): the tiny dense and MoE models of the unit
tests placed on the GPU with both roads real (zero-copy GPU rows, CPU worker, stream-waited
flag, prefill streamer), compared with the unplaced model; then the round-trip cost.

  python3 test/gpu/hybrid_smoke.py
"""

import os
import sys
import time

import torch

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(root, "python"))

import spillway  # noqa: E402
from tests.tiny import tiny  # noqa: E402


def placed_tiny(moe: bool, rows: int, seed: int):
    """The tiny model's output for `rows` random tokens, unplaced, and the same model placed with
    every unit split half and half between the roads."""
    ref_model = tiny(moe).cuda()
    ids = torch.randint(0, 97, (1, rows), generator=torch.Generator().manual_seed(seed)).cuda()
    with torch.no_grad():
        ref = ref_model(ids).float()
    model = tiny(moe)
    found = spillway.find_units(model)
    resident = sum(p.numel() * 2 for p in model.parameters()) - sum(f.unit.nbytes for f in found)
    model = spillway.place(model, resident + 16 * 1024, reserve=0, device="cuda",
                           gpu_fraction=0.5, use_pool=False, decode_max_rows=4)
    return ids, ref, model


def check(moe: bool, rows: int) -> None:
    ids, ref, model = placed_tiny(moe, rows, 3)
    with torch.no_grad():
        for _ in range(3):  # repeated: buffers and flags are reused across calls
            got = model(ids).float()
    torch.cuda.synchronize()
    err = (got - ref).abs().max().item() / ref.abs().max().item()
    same = got.argmax(-1).tolist() == ref.argmax(-1).tolist()
    st = model.spillway.engine.stats
    print(f"{'moe' if moe else 'dense'} rows={rows}: max rel err {err:.4f}, argmax same {same}, "
          f"stats {st}", flush=True)
    assert err < 3e-2 and same, "hybrid result differs from the reference"
    model.spillway.engine.close()


def queue_full(moe: bool, calls: int = 300) -> None:
    """Many decode calls queued without a synchronisation, so that the thread running the model
    fills the GPU's launch queue and blocks in the driver while the GPU waits for the CPU worker:
    the full-size models hung there when the worker waited on a CUDA event (2026-12-06). Run
    under `timeout`: a hang is the failure."""
    ids, ref, model = placed_tiny(moe, 1, 5)
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(calls):
            got = model(ids)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    err = (got.float() - ref).abs().max().item() / ref.abs().max().item()
    print(f"{'moe' if moe else 'dense'} queue full: {calls} calls without a sync in {dt:.2f} s, "
          f"{model.spillway.engine.stats['cpu_tasks']} CPU tasks, max rel err {err:.4f}", flush=True)
    assert err < 3e-2, "hybrid result differs from the reference"
    model.spillway.engine.close()


def main() -> None:
    for moe in (False, True):
        for rows in (1, 2, 9):
            check(moe, rows)
    for moe in (False, True):
        queue_full(moe)
    from spillway.calibrate import measure_round_trip
    from spillway.engine import Engine
    eng = Engine(torch.device("cuda", 0))
    print("round trip:", measure_round_trip(eng), flush=True)
    print("OK")


if __name__ == "__main__":
    main()
