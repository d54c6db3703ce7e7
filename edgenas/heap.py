"""glibc's heap kept through an evaluation: freed activations reused instead of faulted back in from the kernel.

glibc serves every block above its mmap threshold (at most 32 MiB) with a fresh mapping and unmaps it on free,
so each layer's activations at an evaluation batch (hundreds of MB) come back as zero-filled pages from the
kernel, page fault by page fault.  Inside :func:`kept_heap` they come from the heap and stay there: evaluation
1.63x faster than with huge pages alone, 3.01x faster than plain pages, for a peak 0.96 GB higher
(benchmarks/cpu_pages.py).  On leaving, the freed memory goes back to the kernel, so the process does not keep
its evaluation peak.  Elsewhere than glibc (macOS, musl, Windows) it does nothing, and ``EDGENAS_KEPT_HEAP=0``
turns it off where memory is tighter than time.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Iterator

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's mallopt parameters (malloc.h)
# after the scope, what glibc's own sliding threshold reaches in a PyTorch process (its maximum, and twice it)
MMAP_THRESHOLD_AFTER, TRIM_THRESHOLD_AFTER, MMAP_MAX_DEFAULT = 32 << 20, 64 << 20, 65536
_depth = 0


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return None
        return ctypes.CDLL(None)
    except (AttributeError, ValueError, OSError):  # no confstr (Windows), or not glibc
        return None


@contextlib.contextmanager
def kept_heap() -> Iterator[None]:
    """Within: no block is unmapped or trimmed when freed.  Nested uses share the outermost scope."""
    global _depth
    libc = _glibc()
    if libc is None or os.environ.get("EDGENAS_KEPT_HEAP") == "0":
        yield
        return
    if _depth == 0:
        libc.mallopt(M_MMAP_MAX, 0)
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, MMAP_MAX_DEFAULT)
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_AFTER)
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_AFTER)
            libc.malloc_trim(0)
