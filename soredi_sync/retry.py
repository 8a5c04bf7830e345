"""The one retry policy: transient failures only, each attempt logged, the last error re-raised.

Adapters declare which exceptions are transient for them; everything else (4xx answers, parse and
validation errors, SOAP faults) fails at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

from soredi_sync.config import RetrySettings
from soredi_sync.errors import TransientUpstreamError

logger = logging.getLogger(__name__)


def _log_attempt(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.warning(
        "Attempt %d failed (%s: %s); retrying in %.1f s",
        state.attempt_number,
        type(exc).__name__,
        exc,
        wait,
    )


class _WaitRespectingRetryAfter:
    """Exponential back-off, but never shorter than the server's Retry-After (capped)."""

    def __init__(self, settings: RetrySettings) -> None:
        self._exponential = wait_exponential(
            multiplier=settings.initial_wait, min=settings.initial_wait, max=settings.max_wait
        )
        self._max = settings.max_wait

    def __call__(self, state: RetryCallState) -> float:
        wait = float(self._exponential(state))
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientUpstreamError) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, self._max))
        return wait


def retrying(
    settings: RetrySettings,
    transient: tuple[type[BaseException], ...],
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """A tenacity ``Retrying`` for ``for attempt in retrying(...): with attempt: ...``."""
    return Retrying(
        stop=stop_after_attempt(settings.attempts),
        wait=_WaitRespectingRetryAfter(settings),
        retry=retry_if_exception_type(transient),
        before_sleep=_log_attempt,
        reraise=True,
        sleep=sleep,
    )
