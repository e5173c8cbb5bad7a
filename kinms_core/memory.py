"""The fit's process keeps the memory it frees, for its next model, instead of returning it to the system.

Every likelihood evaluation allocates and frees a few cube-sized arrays (the binned cloudlets, the residual). With
glibc's defaults, a freed block of a few MB at the top of the heap is given back to the system (its trim threshold
follows the largest block freed, about twice a cube) and the next evaluation page-faults every page of it again:
2,100-2,400 faults and a third of an evaluation of a 128x128x26 cube (NGC 4047), none on small cubes, whose blocks stay
under the threshold. Fixing glibc's thresholds (``mallopt``) keeps the blocks for reuse; the process then holds its peak
memory until it ends, which a fit reaches in every evaluation anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

#: Blocks up to this size (bytes) come from the heap, whose freed memory is reused; larger ones are mapped and
#: unmapped each time (glibc's own ceiling for its adaptive threshold on 64-bit systems; 4 million voxels).
MMAP_THRESHOLD = 32 * 1024 * 1024
#: Free memory at the top of the heap is returned to the system only beyond this (bytes).
TRIM_THRESHOLD = 512 * 1024 * 1024
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory for reuse (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`) in
    this process and the workers it forks afterwards. Returns whether it was set: False (and nothing changes) where
    the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        log.debug("no glibc mallopt in %r: the allocator keeps its defaults", name)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
