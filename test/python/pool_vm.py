#!/usr/bin/python3
"""python/spillway's spill tier against the real module, without CUDA: memory.open_pool, pool_map
and HostArena(use_pool=True, register=False) on a loaded spillway.ko with a small pool (64 MiB).

Run by test/kmod/run-tests.sh inside a test VM, as root, with the module just loaded and nothing
allocated; it prints TAP (numbered, plan last) that run-tests.sh folds into its own. The last
arena is left alive at exit on purpose: run-tests.sh then checks that the exit gave it back.
Not under python/tests: the plain unittest run has no /dev/spillway."""

from __future__ import annotations

import errno
import gc
import mmap
import os
import re
import sys
import tempfile
import time
from typing import List, Optional, Tuple

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HEADER = os.path.join(REPO, "kmod", "include", "uapi", "spillway.h")
DEVICE = "/dev/spillway"
SYSFS = "/sys/class/misc/spillway"
MiB = 1 << 20
PAGE = 4096

_count = 0
_failed = 0


def ok(cond: bool, name: str, diag: str = "") -> bool:
    global _count, _failed
    _count += 1
    if not cond:
        _failed += 1
    print(f"{'ok' if cond else 'not ok'} {_count} - {name}")
    if not cond and diag:
        for line in diag.splitlines():
            print(f"# {line}")
    sys.stdout.flush()
    return cond


def sysfs(name: str) -> int:
    with open(os.path.join(SYSFS, name)) as f:
        return int(f.read())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> List[str]:
    targets = []
    for name in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{name}"))
        except OSError:  # the directory's own fd, closed by now
            pass
    return targets


def dmabuf_mapping(addr: int) -> Optional[Tuple[int, int, str]]:
    """(start, end, name) of the /proc/self/maps line holding addr, if it maps a spillway
    dma-buf (named /dmabuf:spillway:ID since ABI 1.2)."""
    with open("/proc/self/maps") as f:
        for line in f:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= addr < end:
                name = fields[5] if len(fields) > 5 else ""
                return (start, end, name) if name.startswith("/dmabuf:spillway:") else None
    return None


def dmabuf_lines() -> List[str]:
    with open("/proc/self/maps") as f:
        return [line.strip() for line in f if "/dmabuf:spillway:" in line]


def main() -> int:
    sys.path.insert(0, os.path.join(REPO, "python"))
    os.environ["SPILLWAY_UAPI_HEADER"] = HEADER
    t0 = time.monotonic()
    try:
        import torch
    except ImportError as e:
        print(f"1..0 # SKIP no torch for {sys.executable}: {e}")
        return 0
    print(f"# import torch {torch.__version__}: {time.monotonic() - t0:.1f} s")
    sys.stdout.flush()
    torch.set_num_threads(1)
    from spillway import memory, uapi

    u = uapi.load()
    if not ok(u is not None, f"the UAPI header is found ({HEADER})"):
        return 1
    assert u is not None
    ok(sysfs("used_bytes") == 0 and sysfs("buffers") == 0, "the pool starts with no buffer")
    pool_bytes = sysfs("pool_bytes")

    # open_pool: an fd on the device, and the reason text that HostArena.source repeats.
    fds = open_fds()
    fd, why = memory.open_pool()
    if ok(fd is not None, f"open_pool() gives an fd ({why})"):
        assert fd is not None
        ok(os.fstat(fd).st_rdev == os.stat(DEVICE).st_rdev, "the fd is /dev/spillway")
        os.close(fd)
    ok(why == f"pool {DEVICE}", f"open_pool()'s reason is 'pool {DEVICE}'", f"got: {why!r}")

    # A wrong ABI major: the package's header says major + 1, the module answers its own.
    with tempfile.TemporaryDirectory() as tmp:
        wrong = os.path.join(tmp, "spillway.h")
        with open(HEADER) as f:
            text = f.read()
        with open(wrong, "w") as f:
            f.write(re.sub(r"^(#define\s+SPILLWAY_ABI_MAJOR\s+)\d+", rf"\g<1>{u.abi_major + 1}", text,
                           flags=re.M))
        os.environ["SPILLWAY_UAPI_HEADER"] = wrong
        fd, why = memory.open_pool()
        os.environ["SPILLWAY_UAPI_HEADER"] = HEADER
        want = f"{DEVICE} speaks ABI {u.abi_major}, this package {u.abi_major + 1}"
        ok(fd is None and why == want, f"a wrong ABI major is refused: '{want}'", f"got: {fd}, {why!r}")
        # A HostArena falls back and keeps the reason.
        os.environ["SPILLWAY_UAPI_HEADER"] = wrong
        arena = memory.HostArena(MiB, use_pool=True, register=False)
        os.environ["SPILLWAY_UAPI_HEADER"] = HEADER
        ok(arena.source == "anonymous memory" and arena.pool_note == want,
           "so HostArena uses anonymous memory and says why in pool_note",
           f"source {arena.source!r}, pool_note {arena.pool_note!r}")
        del arena

    # A missing header: SPILLWAY_UAPI_HEADER names a file that is not there (the package must
    # not fall back to another header).
    missing = os.path.join(REPO, "no-such-dir", "spillway.h")
    os.environ["SPILLWAY_UAPI_HEADER"] = missing
    fd, why = memory.open_pool()
    os.environ["SPILLWAY_UAPI_HEADER"] = HEADER
    want = (f"the spillway UAPI header was not found at {missing} "
            "(set SPILLWAY_UAPI_HEADER to the module's kmod/include/uapi/spillway.h)")
    ok(fd is None and why == want, "a missing UAPI header is refused and the reason says where it looked",
       f"got: {fd}, {why!r}")
    ok(open_fds() == fds, "the refusals leak no fd", f"{fds} fds before, {open_fds()} after")

    # An arena from the pool: its pages are a spillway dma-buf mapped into this process.
    arena = memory.HostArena(8 * MiB + 100, use_pool=True, register=False)
    nbytes = arena.nbytes
    ok(nbytes == 8 * MiB + PAGE, "the arena is rounded up to a page", f"nbytes {nbytes}")
    ok(arena.source == f"pool {DEVICE}" and arena.pool_note == f"pool {DEVICE}",
       f"arena.source and pool_note say 'pool {DEVICE}'",
       f"source {arena.source!r}, pool_note {arena.pool_note!r}")
    ok(not arena.registered, "register=False registers nothing (no CUDA call)")
    ok(sysfs("used_bytes") == nbytes and sysfs("buffers") == 1,
       "sysfs used_bytes is the arena's size, in one buffer",
       f"used_bytes {sysfs('used_bytes')}, buffers {sysfs('buffers')}, arena {nbytes}")
    base = arena.tensor.data_ptr()
    m = dmabuf_mapping(base)
    ok(m is not None and m[0] == base and m[1] - m[0] == nbytes,
       "/proc/self/maps maps the arena's memory as one /dmabuf:spillway:ID of its size", f"got {m}")
    # Python's mmap keeps a dup of the fd it maps (for size() and resize()), so one dma-buf fd
    # lives as long as the arena's mapping; the device's fd and ALLOC's own fd are closed.
    targets = fd_targets()
    ok(open_fds() == fds + 1 and DEVICE not in targets
       and sum("dmabuf" in t for t in targets) == 1,
       "open fds: /dev/spillway closed, one dma-buf fd (mmap's own dup)",
       f"{fds} fds before, now {targets}")

    # carve(): page-aligned blocks that hold what torch writes.
    f32 = arena.carve((1000,), torch.float32)
    bf16 = arena.carve((3, 700), torch.bfloat16)
    u8 = arena.carve((5000,), torch.uint8)
    offsets = [t.data_ptr() - base for t in (f32, bf16, u8)]
    # 4000 bytes take one page, 4200 two.
    ok(offsets == [0, PAGE, 3 * PAGE], "the blocks start on the pages after the one before",
       f"offsets {offsets}")
    want_f32 = torch.arange(1000, dtype=torch.float32) * 1.5 - 7
    want_bf16 = torch.linspace(-3, 3, 2100).to(torch.bfloat16).view(3, 700)
    want_u8 = (torch.arange(5000) * 37 % 251).to(torch.uint8)
    f32.copy_(want_f32)
    bf16.copy_(want_bf16)
    u8.copy_(want_u8)
    blocks = [(f32, want_f32), (bf16, want_bf16), (u8, want_u8)]

    def raw(t: torch.Tensor) -> bytes:
        return bytes(t.contiguous().view(torch.uint8).flatten().tolist())

    def read_through_mmap(t: torch.Tensor) -> bytes:
        off = t.data_ptr() - base
        return arena._map[off:off + t.numel() * t.element_size()]

    ok(all(torch.equal(t, w) for t, w in blocks), "each block reads back what torch wrote (no overlap)")
    ok(all(read_through_mmap(t) == raw(w) for t, w in blocks),
       "the mmap object reads the same bytes at each block's offset")
    view = torch.frombuffer(arena._map, dtype=torch.float32, offset=0, count=1000)
    ok(torch.equal(view, want_f32), "a second torch view over the mapping reads the float32 block")
    # Dropping the pages from the page tables refaults them from the dma-buf: the data lives in
    # the pool's pages, not in anonymous memory (which would read zeros here, checked below).
    arena._map.madvise(mmap.MADV_DONTNEED, 0, nbytes)
    ok(all(torch.equal(t, w) for t, w in blocks), "after MADV_DONTNEED the blocks still hold the data")
    try:
        arena.carve((nbytes,), torch.uint8)
        ok(False, "carve() past the end raises MemoryError")
    except MemoryError as e:
        ok("is full" in str(e), "carve() past the end raises MemoryError", str(e))

    # An arena larger than the pool's free bytes (but not than the pool): ALLOC gets ENOMEM, the
    # arena falls back to anonymous memory and says why; nothing is allocated or leaked.
    free = sysfs("free_bytes")
    big = memory.HostArena(free + MiB, use_pool=True, register=False)
    want = f"pool allocation of {big.nbytes} bytes failed: {os.strerror(errno.ENOMEM)}"
    ok(big.nbytes <= pool_bytes and big.source == "anonymous memory" and big.pool_note == want,
       f"an arena of free + 1 MiB ({big.nbytes} of {pool_bytes} bytes) falls back: '{want}'",
       f"source {big.source!r}, pool_note {big.pool_note!r}")
    ok(sysfs("used_bytes") == nbytes and sysfs("buffers") == 1 and open_fds() == fds + 1,
       "the refused ALLOC took nothing from the pool and leaked no fd",
       f"used_bytes {sysfs('used_bytes')}, buffers {sysfs('buffers')}, fds {fd_targets()}")
    ok(dmabuf_mapping(big.tensor.data_ptr()) is None, "the fallback arena's memory is not a dma-buf")
    block = big.carve((4096,), torch.int32)
    block.copy_(torch.arange(4096, dtype=torch.int32))
    ok(torch.equal(block, torch.arange(4096, dtype=torch.int32)), "the fallback arena holds data too")
    big._map.madvise(mmap.MADV_DONTNEED, 0, PAGE * 4)
    ok(int(block.abs().sum()) == 0, "its private pages read zero after MADV_DONTNEED (the check above tells)")
    del block, big
    huge = memory.HostArena(pool_bytes + MiB, use_pool=True, register=False)
    want = f"pool allocation of {huge.nbytes} bytes failed: {os.strerror(errno.EINVAL)}"
    ok(huge.source == "anonymous memory" and huge.pool_note == want,
       f"an arena larger than the whole pool falls back: '{want}'", f"pool_note {huge.pool_note!r}")
    del huge
    plain = memory.HostArena(MiB, use_pool=False, register=False)
    ok(plain.source == "anonymous memory" and plain.pool_note == "pool not asked for"
       and sysfs("buffers") == 1, "use_pool=False does not touch the pool", f"pool_note {plain.pool_note!r}")
    del plain

    # Going away: close() (nothing registered), then the arena; a carved block still alive keeps
    # the mapping and its data; once the last view goes, the buffer goes back to the pool.
    arena.close()
    ok(not arena.registered, "close() leaves the arena unregistered")
    del arena, f32, u8, view, blocks
    gc.collect()
    ok(sysfs("used_bytes") == nbytes and torch.equal(bf16, want_bf16),
       "with the arena gone, a live carved block keeps the buffer and its data",
       f"used_bytes {sysfs('used_bytes')}")
    del bf16
    gc.collect()
    ok(sysfs("used_bytes") == 0 and sysfs("buffers") == 0 and not dmabuf_lines() and open_fds() == fds,
       "when the last view goes, the buffer goes back (used_bytes 0, no dma-buf mapped or open)",
       f"used_bytes {sysfs('used_bytes')}, buffers {sysfs('buffers')}, maps {dmabuf_lines()}, "
       f"fds {fd_targets()}")

    # One arena left alive: the process's exit must give it back (run-tests.sh checks).
    kept = memory.HostArena(4 * MiB, use_pool=True, register=False)
    kept.carve((MiB,), torch.uint8).fill_(0x5A)
    ok(kept.source == f"pool {DEVICE}" and sysfs("used_bytes") == 4 * MiB,
       "an arena left alive at exit holds 4 MiB of the pool", f"used_bytes {sysfs('used_bytes')}")
    print(f"1..{_count}")
    print(f"# pool_vm.py: {time.monotonic() - t0:.1f} s with the import")
    return 1 if _failed else 0


if __name__ == "__main__":
    sys.exit(main())
