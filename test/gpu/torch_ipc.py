"""torch.multiprocessing CUDA sharing of a tensor in VRAM and of one the shim spilled (issue 13,
item 4).

The parent sends a 16 MiB tensor and a 1 GiB tensor (under the shim with
SPILLWAY_VRAM_LIMIT=512M the second spills) to a spawned child over a Pipe; the child sums
each and adds 1 in place; the parent checks the sum and sees the child's write.  Prints
"RESULT torch_ipc[<which>] PASS|FAIL <detail>" per tensor.  The accepted outcomes are: shared
and correct, or refused in the parent with an error naming the cause (the shim's log says why).
"""
import ctypes
import json
import sys

import torch
import torch.multiprocessing as mp

MIB = 1 << 20


def shim_count(name: str) -> int | None:
    """A counter of the shim's statistics, or None without the shim."""
    try:
        fn = ctypes.CDLL(None).spillway_stats_json
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(16384)
    fn(buf, ctypes.c_size_t(len(buf)))
    return int(json.loads(buf.value.decode()).get("counts", {}).get(name, 0))


def child(conn) -> None:
    while True:
        msg = conn.recv()
        if msg is None:
            return
        name, t = msg
        total = float(t.sum(dtype=torch.float64).item())
        t.add_(1.0)
        torch.cuda.synchronize()
        conn.send((name, total))
        del t


def main() -> None:
    mp.set_start_method("spawn")
    here, there = mp.Pipe()
    proc = mp.Process(target=child, args=(there,))
    proc.start()
    tensors = {
        "vram": torch.ones(4 * MIB, device="cuda"),      # 16 MiB
        "spilled": torch.ones(256 * MIB, device="cuda"),  # 1 GiB
    }
    torch.cuda.synchronize()
    failed = 0
    for name, t in tensors.items():
        label = f"torch_ipc[{name}]"
        try:
            here.send((name, t))
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else ""
            # Accepted only when the shim refused it and said why (its log line, counted).
            refusals = shim_count("export_refusals")
            ok = refusals is not None and refusals > 0
            print(f"RESULT {label} {'PASS' if ok else 'FAIL'} refused in the parent: "
                  f"{type(e).__name__}: {first}; shim export refusals: {refusals}")
            failed += int(not ok)
            continue
        if not here.poll(120):
            print(f"RESULT {label} FAIL the child did not answer in 120 s")
            failed += 1
            break
        _, total = here.recv()
        torch.cuda.synchronize()
        seen = float(t[0].item()), float(t[-1].item())
        ok = total == t.numel() and seen == (2.0, 2.0)
        print(f"RESULT {label} {'PASS' if ok else 'FAIL'} child summed {total:.0f} of {t.numel()}, "
              f"parent sees the child's write: {seen}")
        failed += int(not ok)
    try:
        here.send(None)
    except Exception:
        pass
    proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
