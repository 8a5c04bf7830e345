"""OnceCache: each key computed once however many threads ask, the least recently used
dropped first, and a failed computation not kept."""

from __future__ import annotations

import threading
import time

import pytest

from soredi_sync.services.once import OnceCache


def test_threads_asking_for_one_key_at_once_share_one_computation() -> None:
    cache: OnceCache[str, int] = OnceCache(2)
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        time.sleep(0.05)
        return 42

    answers: list[int] = []
    threads = [
        threading.Thread(target=lambda: answers.append(cache.get("k", slow))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [42] * 8 and len(calls) == 1


def test_the_least_recently_used_key_is_dropped_first() -> None:
    cache: OnceCache[str, str] = OnceCache(2)
    computed: list[str] = []

    def value(key: str) -> str:
        return cache.get(key, lambda: computed.append(key) or key.upper())

    value("a"), value("b"), value("a"), value("c")  # "b" is the least recently used
    value("a")
    value("b")
    assert computed == ["a", "b", "c", "b"]


def test_a_failed_computation_is_not_kept_and_the_next_caller_tries_again() -> None:
    cache: OnceCache[str, int] = OnceCache(2)

    def broken() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get("k", broken)
    assert cache.get("k", lambda: 7) == 7
