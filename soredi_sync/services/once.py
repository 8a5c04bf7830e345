"""A bounded per-process cache that computes each key once: :class:`OnceCache`.

What it holds is derived from a stored snapshot, which never changes (an audit's findings, a
cut-over report), and takes seconds to compute on the national profile. Callers asking for a
key being computed wait for that computation and share its answer; other keys are not held up
meanwhile (the cache's own lock is never held while computing).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class OnceCache(Generic[K, V]):
    """The ``size`` values asked for last, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._computing: dict[K, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts, never held while computing

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The value of ``key``, from ``compute()`` if it is not held (once, however many
        threads ask at the same time)."""
        with self._lock:
            found = self._hit(key)
            if found is not None:
                return found
            computing = self._computing.setdefault(key, threading.Lock())
        try:
            with computing:
                with self._lock:
                    found = self._hit(key)
                if found is None:
                    found = compute()
                    with self._lock:
                        self._values[key] = found
                        while len(self._values) > self._size:
                            self._values.popitem(last=False)
        finally:
            with self._lock:
                if self._computing.get(key) is computing:
                    del self._computing[key]
        return found

    def _hit(self, key: K) -> V | None:
        found = self._values.get(key)
        if found is not None:
            self._values.move_to_end(key)
        return found
