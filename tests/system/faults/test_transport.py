"""Faults on the wire: the sandbox answers errors, stalls, resets or cuts the transfer short,
on every attempt the retry policy makes. The run fails with the reason; day 0 stays served;
once the fault is gone the next sync stores day 1."""

from __future__ import annotations

from typing import Any

import pytest

from soredi_sync.clients.sor_files import HttpxSorFilesClient, make_http_client
from soredi_sync.config import RetrySettings
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.sync import sync_source
from tests.support.faults.invariants import LastGood
from tests.support.faults.report import Case

# More than the three attempts the suite's retry policy makes.
EVERY_ATTEMPT = 10

PERSISTENT = [
    pytest.param(
        Case("HTTP 500", "sor.zip answers 500 on every attempt"),
        {"path": "sor.zip", "status": 500},
        ("HTTP 500", "kept failing"),
        id="http-500",
    ),
    pytest.param(
        Case("HTTP 503", "Sor_complete.zip answers 503 on every attempt"),
        {"path": "Sor_complete.zip", "status": 503},
        ("HTTP 503", "kept failing"),
        id="http-503",
    ),
    pytest.param(
        Case(
            "read timeout",
            "sor.zip answers only after 3 s, on every attempt (read timeout 0.5 s)",
        ),
        {"path": "sor.zip", "delay": 3.0},
        ("ReadTimeout",),
        id="read-timeout",
    ),
    pytest.param(
        Case("connection reset", "sor.zip: TCP reset without an answer, on every attempt"),
        {"path": "sor.zip", "reset": True},
        ("kept failing",),
        id="connection-reset",
    ),
    pytest.param(
        Case(
            "transfer cut short",
            "sor.zip: 200 with the full Content-Length, connection closed after 1,000 bytes, "
            "on every attempt",
        ),
        {"path": "sor.zip", "truncate": 1000},
        ("without sending complete message body",),
        id="truncated-transfer",
    ),
]


class TestTransportFaults:
    @pytest.mark.parametrize(("case", "fault", "reasons"), PERSISTENT)
    def test_a_fault_on_every_attempt_fails_the_run_and_the_next_sync_recovers(
        self, last_good: LastGood, case: Case, fault: dict[str, Any], reasons: tuple[str, ...]
    ) -> None:
        last_good.files.inject(**fault, times=EVERY_ATTEMPT)
        outcome = last_good.sync()
        path = "/" + fault["path"]
        attempts = sum(1 for _m, p, _s in last_good.files.requests if p == path)
        if "delay" in fault:
            # The stalled answers are recorded when the server gives up waiting, not before.
            attempts = last_good.app.settings.retry.attempts
        assert outcome.status is RunStatus.FAILED
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            *reasons,
            run_id=outcome.run_id,
            did=f"{attempts} attempts; day 0 kept and served; next run after the fault "
            "cleared stored day 1",
        )
        assert attempts == last_good.app.settings.retry.attempts
        last_good.files.clear_faults()
        last_good.assert_recovers()

    def test_429_with_retry_after_is_waited_for_on_every_attempt_then_fails_the_run(
        self, last_good: LastGood
    ) -> None:
        case = Case(
            "HTTP 429 with Retry-After",
            "sor.zip answers 429 with Retry-After: 7 on every attempt",
        )
        last_good.files.inject("sor.zip", status=429, headers={"Retry-After": "7"}, times=10)
        waits: list[float] = []
        app = last_good.app
        # The policy's own waits are zero; only Retry-After (capped at max_wait) makes it
        # wait. Sleeping is recorded, not done.
        with make_http_client(app.settings.http) as http, last_good.timed():
            client = HttpxSorFilesClient(
                http,
                last_good.files.base_url,
                RetrySettings(attempts=3, initial_wait=0, max_wait=60),
                sleep=waits.append,
            )
            outcome = sync_source(app.uow_factory, client, app.sync_config())
        assert waits == [7.0, 7.0]
        last_good.assert_kept(
            case,
            RunStatus.FAILED,
            "HTTP 429",
            run_id=outcome.run_id,
            did="waited the 7 s Retry-After before each of the 2 retries; day 0 kept and served",
        )
        last_good.files.clear_faults()
        last_good.assert_recovers()
