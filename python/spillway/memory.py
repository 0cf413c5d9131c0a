"""The spill tier: host memory that the CPU reads from DRAM and the GPU reads zero-copy over
PCIe, the same pages for both. Buffers come from the spillway pool (/dev/spillway: a dma-buf,
mmap'd MAP_SHARED) when it is there, else from anonymous memory; either way they are registered
with cudaHostRegister (mapped, portable)."""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import weakref
from typing import List, Optional, Tuple

import torch

from . import uapi as uapi_mod

PAGE = 4096
ALIGN = 4096  # carve blocks on page boundaries
CUDA_HOST_REGISTER_PORTABLE = 0x01
CUDA_HOST_REGISTER_MAPPED = 0x02


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


class _CudaArray:
    def __init__(self, ptr: int, nbytes: int):
        self.__cuda_array_interface__ = dict(shape=(nbytes,), typestr="|u1", data=(ptr, False),
                                             version=3)


def cuda_view(host: torch.Tensor) -> torch.Tensor:
    """A CUDA tensor over the GPU-mapped host memory of `host` (contiguous). Under unified
    addressing a registered page's device pointer is its host pointer (checked at start)."""
    if not host.is_contiguous():
        raise ValueError("cuda_view needs a contiguous host tensor")
    nbytes = host.numel() * host.element_size()
    raw = torch.as_tensor(_CudaArray(host.data_ptr(), nbytes), device="cuda")
    return raw.view(host.dtype).view(host.shape)


def open_pool(path: Optional[str] = None) -> Tuple[Optional[int], str]:
    """Opens the spillway pool device. Returns (fd, why) with fd None when it cannot be used."""
    path = path or os.environ.get("SPILLWAY_DEVICE") or "/dev/spillway"
    if not os.path.exists(path):
        return None, f"{path} not present"
    u = uapi_mod.load()
    if u is None:
        looked = " or ".join(uapi_mod.header_candidates())
        return None, (f"the spillway UAPI header was not found at {looked} "
                      "(set SPILLWAY_UAPI_HEADER to the module's kmod/include/uapi/spillway.h)")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return None, f"{path}: {e.strerror}"
    buf = bytearray(u.version_size)
    try:
        fcntl.ioctl(fd, u.ioc_version, buf)
    except OSError as e:
        os.close(fd)
        return None, f"{path}: version ioctl failed: {e.strerror}"
    major = struct.unpack_from("<I", buf, 0)[0]
    if major != u.abi_major:
        os.close(fd)
        return None, f"{path} speaks ABI {major}, this package {u.abi_major}"
    return fd, f"pool {path}"


def pool_map(fd: int, nbytes: int) -> mmap.mmap:
    u = uapi_mod.load()
    assert u is not None
    req = bytearray(u.alloc_size)
    struct.pack_into("<Q", req, 0, nbytes)
    fcntl.ioctl(fd, u.ioc_alloc, req)
    buf_fd = struct.unpack_from("<i", req, 12)[0]
    try:
        return mmap.mmap(buf_fd, nbytes, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(buf_fd)


def _host_unregister(ptr: int) -> None:
    torch.cuda.cudart().cudaHostUnregister(ptr)


class HostArena:
    """One region of GPU-mapped host memory, carved into page-aligned blocks."""

    def __init__(self, nbytes: int, use_pool: bool = True, register: bool = True):
        self.nbytes = _align(max(nbytes, PAGE), PAGE)
        self.source = "anonymous memory"
        self._map: Optional[mmap.mmap] = None
        fd, why = open_pool() if use_pool else (None, "pool not asked for")
        self.pool_note = why
        if fd is not None:
            try:
                self._map = pool_map(fd, self.nbytes)
                self.source = why
            except OSError as e:
                self.pool_note = f"pool allocation of {self.nbytes} bytes failed: {e.strerror}"
            finally:
                os.close(fd)
        if self._map is None:
            self._map = mmap.mmap(-1, self.nbytes, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        self.tensor = torch.frombuffer(self._map, dtype=torch.uint8)
        self.registered = False
        self._unregister: Optional[weakref.finalize] = None
        if register:
            rc = torch.cuda.cudart().cudaHostRegister(
                self.tensor.data_ptr(), self.nbytes,
                CUDA_HOST_REGISTER_PORTABLE | CUDA_HOST_REGISTER_MAPPED)
            if int(rc) != 0:
                raise RuntimeError(f"cudaHostRegister of {self.nbytes} bytes failed: "
                                   f"cudaError {int(rc)}")
            self.registered = True
            # Unregister when the mapping goes (its last view with it): a later mmap may get
            # the same addresses, and the driver refuses to register them twice (error 712).
            self._unregister = weakref.finalize(self._map, _host_unregister,
                                                self.tensor.data_ptr())
        self._used = 0

    def carve(self, shape: Tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        n = 1
        for s in shape:
            n *= s
        nbytes = n * torch.empty((), dtype=dtype).element_size()
        start = self._used
        if start + nbytes > self.nbytes:
            raise MemoryError(f"host arena of {self.nbytes} bytes is full")
        self._used = _align(start + nbytes)
        return self.tensor[start:start + nbytes].view(dtype).view(shape)

    def close(self) -> None:
        if self._unregister is not None:
            self._unregister()
        self.registered = False


def arena_bytes(block_bytes: List[int]) -> int:
    return sum(_align(b) for b in block_bytes)
