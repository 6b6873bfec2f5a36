"""The cyclic garbage collector paused while a bulk operation builds its objects.

A reconcile of 100,000 rows holds millions of small objects (tickets, their history, verdicts) and
makes no reference cycles worth collecting; with the collector on, its full passes over that heap cost
a third of the run (`benchmarks/tracker.py`). Reference counting still frees everything as usual; the
collector resumes when the outermost paused call returns. A long-lived command (``srms serve``) turns it
back on for itself.
"""

from __future__ import annotations

import functools
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()


def collect_young() -> None:
    """While paused, collect what the young generations hold (cheap: only objects made since the last
    call). A loop over network batches calls it now and then: responses, futures and retry state make
    small reference cycles that would otherwise pile up for a whole night's upload."""
    if _depth:
        gc.collect(1)


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator form of ``paused_gc``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused_gc():
            return fn(*args, **kwargs)

    return wrapper
