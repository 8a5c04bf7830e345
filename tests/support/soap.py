"""Helpers of the SOAP client tests."""

from __future__ import annotations


def no_sleep(seconds: float) -> None:
    """Injected into the retry policy so tests do not wait."""
