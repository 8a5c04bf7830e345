"""A capped list of data problems, so one broken pull reports everything wrong with it at once.

Parsers and validators append to a shared :class:`Problems`; the loader raises a single
:class:`~soredi_sync.errors.InvalidSourceData` at the end. The cap keeps a wholly broken file
(400,000 bad rows) from turning into 400,000 strings.
"""

from __future__ import annotations

from collections.abc import Iterator

from soredi_sync.errors import InvalidSourceData

DEFAULT_LIMIT = 200


class Problems:
    """Problem messages in the order found, keeping at most ``limit`` of them (and a count)."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        if limit < 1:
            raise ValueError("a problem list must keep at least one problem")
        self._limit = limit
        self._items: list[str] = []
        self._total = 0

    def add(self, message: str) -> None:
        self._total += 1
        if len(self._items) < self._limit:
            self._items.append(message)

    def __len__(self) -> int:
        return self._total

    def __bool__(self) -> bool:
        return self._total > 0

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def as_list(self) -> list[str]:
        """The kept messages, with a last line counting those left out."""
        dropped = self._total - len(self._items)
        if dropped:
            return [*self._items, f"... and {dropped} more problems not listed"]
        return list(self._items)

    def raise_if_any(self, what: str) -> None:
        """:raises InvalidSourceData: listing every kept problem, when there is at least one."""
        if self._total:
            noun = "problem" if self._total == 1 else "problems"
            raise InvalidSourceData(f"{what} ({self._total} {noun})", self.as_list())
