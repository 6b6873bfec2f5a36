"""Freed memory handed back to the system after a large transient peak.

Validating a sheet of a million rows frees tens of MB of temporaries (the CSV reader's blocks, the
ID scan's arrays), but the allocators keep freed pages for reuse: pyarrow's pool holds them until
asked, and glibc's heap until trimmed. An upload then runs for minutes with that memory counted
against it. Asking both to let go costs a few milliseconds, so it is done only after large sheets.
"""

from __future__ import annotations

import os
import sys


def lean_arrow() -> None:
    """Before a long-running command (an upload) first loads pyarrow: its allocations go to glibc's
    heap, not its bundled mimalloc. mimalloc keeps pages it has freed counted against the process
    (a 1,000,000-order upload grew ~10 MB over its send that way; with glibc it stays flat, and
    ``give_back`` trims it); mimalloc reads a CSV a little faster, so ``validate`` keeps it. A process
    that has loaded pyarrow already keeps the pool it has."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def give_back() -> None:
    """Return what the allocators hold free to the system (pyarrow's pool if loaded; glibc's heap)."""
    arrow = sys.modules.get("pyarrow")
    if arrow is not None:
        arrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (AttributeError, OSError):  # not glibc (musl has no malloc_trim)
            pass
