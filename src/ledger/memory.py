"""The garbage collector tuned for ledger processes: rarer passes, and none in the middle of a
batch. A module of its own, light (only `gc`), so every entry point can tune it first thing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young-generation collections, and young collections per older one.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """Make the cyclic garbage collector run far less often in a ledger process.

    A worker allocates many short-lived objects per message (parsed messages, events, rows)
    while holding a large, long-lived learner cache. With Python's default thresholds
    (700, 10, 10) the collector runs every few messages and regularly walks the whole cache:
    about 15% of the intake's CPU, measured with `ledger bench intake`. Larger thresholds keep
    collecting cyclic garbage, only in bigger, rarer passes.
    """
    gc.collect()
    gc.freeze()  # what exists at start-up (modules, classes) is never garbage
    gc.set_threshold(*GC_THRESHOLDS)


@contextmanager
def collection_deferred() -> Iterator[None]:
    """Keep the cyclic garbage collector out of one batch; it runs, if due, just after.

    A batch holds tens of thousands of young objects at once (records, events, rows), all
    alive until it ends: a collection in the middle walks them all to free none of them, and
    the projection worker spent about a sixth of its time in such collections
    (`ledger bench projections --interleaved`). Afterwards they are gone, and a collection
    walks only what the batch left behind (the rows its worker keeps). Allocation counts go
    on while the collector is off, so no collection is skipped, only moved.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
