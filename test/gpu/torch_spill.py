"""(b) and (c): PyTorch under the shim.

Allocates float32 tensors totalling 2 x SPILLWAY_VRAM_LIMIT (or the same sizes without the
shim), computes on every one of them and on a product of two, and prints a SHA-256 of all
results so runs with and without the shim can be compared bit for bit.  Under the shim it also
prints the shim's counts of driver lookups and checks that every byte PyTorch reserved went
through the shim.  Usage: torch_spill.py LABEL TOTAL_GIB
"""
import ctypes
import hashlib
import json
import os
import sys

import torch


def shim_stats():
    try:
        fn = ctypes.CDLL(None).spillway_stats_json
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(16384)
    fn(buf, ctypes.c_size_t(len(buf)))
    return json.loads(buf.value.decode())


def main():
    label, total_gib = sys.argv[1], float(sys.argv[2])
    count = 16
    numel = int(total_gib * (1 << 30) / 4 / count)
    g = torch.Generator(device="cuda").manual_seed(1234)
    tensors = []
    for i in range(count):
        t = torch.randn(numel, device="cuda", generator=g)
        t.mul_(1.5).add_(i)
        tensors.append(t)
    torch.cuda.synchronize()
    digest = hashlib.sha256()
    sums = []
    for t in tensors:
        sums.append(float(t.sum(dtype=torch.float64).item()))
        digest.update(t.cpu().numpy().tobytes())
    n = 4096
    a = tensors[0][: n * n].view(n, n)
    b = tensors[-1][: n * n].view(n, n)
    c = a @ b
    digest.update(c.cpu().numpy().tobytes())
    torch.cuda.synchronize()
    # Pointer checks on the last tensor (spilled under the shim): __cuda_array_interface__
    # import asks cudaPointerGetAttributes which device owns the pointer; DLPack round trip.
    last = tensors[-1]

    class Interface:
        __cuda_array_interface__ = last.__cuda_array_interface__

    imported = torch.as_tensor(Interface(), device="cuda")
    via_dlpack = torch.from_dlpack(torch.utils.dlpack.to_dlpack(last))
    pointer_checks = (imported.data_ptr() == last.data_ptr() and torch.equal(imported[:4096], last[:4096])
                      and via_dlpack.data_ptr() == last.data_ptr() and imported.device == last.device)
    reserved = torch.cuda.memory_reserved()
    free_b, total_b = torch.cuda.mem_get_info()
    out = {
        "label": label,
        "tensors_gib": round(count * numel * 4 / (1 << 30), 3),
        "sha256": digest.hexdigest(),
        "sum0": sums[0],
        "pointer_checks": bool(pointer_checks),
        "torch_reserved_mib": reserved >> 20,
        "mem_get_info_mib": [free_b >> 20, total_b >> 20],
        "expandable_segments": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
    }
    stats = shim_stats()
    if stats is not None:
        dev0 = next((d for d in stats["devices"] if d["device"] == 0), {})
        seen = dev0.get("vram_bytes", 0) + dev0.get("spill_bytes", 0)
        out.update({
            "shim_getproc_calls": stats["counts"]["getproc_calls"],
            "shim_getproc_wrapped": stats["counts"]["getproc_wrapped"],
            "shim_dlsym_wrapped": stats["counts"]["dlsym_wrapped"],
            "shim_vram_mib": dev0.get("vram_bytes", 0) >> 20,
            "shim_spill_mib": dev0.get("spill_bytes", 0) >> 20,
            "shim_spill_by_backend_mib": {k: v["bytes"] >> 20 for k, v in stats["backends"].items()},
            "shim_vram_peak_mib": dev0.get("vram_peak", 0) >> 20,
            "shim_accounted_minus_torch_reserved_mib": (seen - reserved) >> 20 if seen >= reserved else -((reserved - seen) >> 20),
        })
    print("TORCH " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
