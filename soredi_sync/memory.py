"""Memory helpers for loading a whole registry at once."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a whole registry is built.

    A national registry is ~500,000 long-lived records (units, GLNs, capabilities) that form no
    reference cycles; the generational collector would rescan them again and again while they
    pile up (a third of the CSV parse time, two thirds of a snapshot read from the database).
    Reference counting still frees everything transient; whatever the collector would have
    found waits until the end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
