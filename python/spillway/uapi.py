"""The kernel module's ioctl numbers and struct sizes, read from its UAPI header (the one
definition: kmod/include/uapi/spillway.h, installed as /usr/include/linux/spillway.h)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Dict, List, Optional

_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, typ: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (typ << 8) | nr


@dataclass(frozen=True)
class Uapi:
    abi_major: int
    ioc_version: int
    ioc_alloc: int
    version_size: int
    alloc_size: int
    device_name: str


def header_candidates() -> List[str]:
    """Where load() looks, in order. SPILLWAY_UAPI_HEADER, when set, is the only place: a header
    named on purpose and missing must not be replaced by another one silently."""
    env = os.environ.get("SPILLWAY_UAPI_HEADER")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    in_checkout = os.path.join(here, "..", "..", "kmod", "include", "uapi", "spillway.h")
    return [os.path.normpath(in_checkout), "/usr/include/linux/spillway.h"]


def parse_header(text: str) -> Uapi:
    defs: Dict[str, str] = {}
    for m in re.finditer(r"^#define\s+(SPILLWAY_\w+)\s+(.+?)\s*(?:/\*.*)?$", text, re.M):
        defs[m.group(1)] = m.group(2).strip()

    def num(name: str) -> int:
        if name not in defs:
            raise ValueError(f"UAPI header lacks {name}")
        return int(defs[name], 0)

    def ioc(name: str, direction: int, size_name: str) -> int:
        m = re.match(r"_IO[RW]{1,2}\(SPILLWAY_IOC_MAGIC,\s*(0x[0-9a-fA-F]+|\d+),", defs.get(name, ""))
        if not m:
            raise ValueError(f"UAPI header: cannot read {name}")
        return _ioc(direction, num("SPILLWAY_IOC_MAGIC"), int(m.group(1), 0), num(size_name))

    return Uapi(abi_major=num("SPILLWAY_ABI_MAJOR"),
                ioc_version=ioc("SPILLWAY_IOC_VERSION", _IOC_READ, "SPILLWAY_VERSION_SIZE"),
                ioc_alloc=ioc("SPILLWAY_IOC_ALLOC", _IOC_READ | _IOC_WRITE, "SPILLWAY_ALLOC_SIZE"),
                version_size=num("SPILLWAY_VERSION_SIZE"), alloc_size=num("SPILLWAY_ALLOC_SIZE"),
                device_name=defs.get("SPILLWAY_DEVICE_NAME", '"spillway"').strip('"'))


def load() -> Optional[Uapi]:
    for p in header_candidates():
        if p and os.path.exists(p):
            with open(p) as f:
                return parse_header(f.read())
    return None
