"""``soredi-sync sandbox traffic``: a gateway's routing traffic posted to a running API.

The questions are built from a generated sandbox's register (:func:`read_sandbox_registry`,
:func:`~soredi_sync.sandbox.traffic_mix.build_traffic`); :class:`TrafficSender` posts them to
``POST /v1/route/batch``, day by day, at most ``rate`` questions a second, and counts the
answers by status and outcome. Every answered question is in the API's decision log, dated by
its ``at``, so the log holds a realistic spread over the days.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from soredi_sync.config import RetrySettings, SourceSettings
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry
from soredi_sync.errors import SorediError, TransientUpstreamError
from soredi_sync.parsing.load import load_registry_from_dir
from soredi_sync.reference_data import CsvColumns, ReferenceData
from soredi_sync.retry import retrying
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.sandbox.traffic_mix import TrafficDay, TrafficRequest, build_traffic

logger = logging.getLogger(__name__)

BATCH_PATH = "/v1/route/batch"
BATCH_LIMIT = 1000  # questions in one POST /v1/route/batch (the API's MAX_BATCH)

# Retried: answers given before anything was decided (no snapshot yet, too many requests) and
# connections that never reached the server. Not retried: a read timeout or a dropped answer,
# and 502/504 from a proxy: the batch may have been decided and logged, and sending it again
# would log it twice, when the decision log must hold each question once (what the daily and
# per-receiver counts built on it assume). Such a failure stops the run instead.
TRANSIENT_STATUS = frozenset({429, 503})
TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    TransientUpstreamError,
    httpx.ConnectError,
    httpx.ConnectTimeout,
)


class TrafficError(SorediError):
    """The API refused the traffic, or kept failing after retries: nothing more is sent.

    ``counts`` has what was answered before (set by :meth:`TrafficSender.send`).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.counts = TrafficCounts()


def traffic_from_sandbox(
    directory: Path,
    day: int,
    reference: ReferenceData,
    *,
    last_day: date,
    days: int,
    per_day: int | None = None,
    seed: int = 1,
) -> list[TrafficDay]:
    """The traffic of ``days`` days ending ``last_day``, drawn from day ``day`` of the sandbox
    ``directory`` (what ``sandbox traffic`` posts; see :func:`build_traffic`).

    :raises ValueError: not a sandbox, no such day, or nobody to send or receive
    :raises InvalidSourceData: the day's files do not parse or validate
    """
    registry = read_sandbox_registry(
        directory, day, columns=reference.csv_columns, message_types=reference.message_types
    )
    return build_traffic(
        registry,
        reference.message_types,
        reference.audit_context.owner_kinds,
        last_day=last_day,
        days=days,
        per_day=per_day,
        seed=seed,
    )


def read_sandbox_registry(
    directory: Path, day: int, *, columns: CsvColumns, message_types: MessageTypeRegistry
) -> Registry:
    """Day ``day`` of the sandbox ``directory`` (``soredi-sync sandbox generate``'s folder),
    read with the sync's own parsers.

    :raises ValueError: no manifest, or the sandbox has no such day
    :raises InvalidSourceData: the day's files do not parse or validate
    """
    try:
        manifest = Manifest.load(directory)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{directory} is not a generated sandbox: {exc}") from exc
    if not 0 <= day < len(manifest.snapshots):
        raise ValueError(f"{directory} holds days 0..{len(manifest.snapshots) - 1}, not {day}")
    files = manifest.files
    sources = SourceSettings(
        sor_xml_path=files["sor_xml"],
        sor_csv_path=files["sor_csv"],
        sor_xml_member=files["sor_xml_member"],
        edi_types_member=files["edi_types_member"],
        gln_edi_types_member=files["gln_edi_types_member"],
        glns_member=files["glns_member"],
    )
    return load_registry_from_dir(
        directory / manifest.day(day).directory,
        sources=sources,
        columns=columns,
        message_types=message_types,
    )


@dataclass
class TrafficCounts:
    """Questions sent and their answers: by item status (200 a decision, 403/422 a problem)
    and, for decisions, by outcome (``deliver``/``reject``)."""

    requests: int = 0
    batches: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return self.requests - self.statuses[200]

    def add(self, other: TrafficCounts) -> None:
        self.requests += other.requests
        self.batches += other.batches
        self.statuses.update(other.statuses)
        self.outcomes.update(other.outcomes)

    def summary(self) -> str:
        """``"140 requests: 131 deliver, 9 reject; 0 errors"`` (errors by status if any)."""
        decided = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items()))
        failed = ", ".join(
            f"{n} HTTP {status}" for status, n in sorted(self.statuses.items()) if status != 200
        )
        return (
            f"{self.requests} requests: {decided or 'no decisions'}; "
            f"{self.errors} errors{f' ({failed})' if failed else ''}"
        )


class TrafficSender:
    """Posts traffic to ``POST /v1/route/batch`` of the API at ``base_url``.

    :param http: the client (explicit timeouts: ``make_http_client``)
    :param token: a bearer token with ``route:read``; never logged or shown
    :param rate: at most this many questions a second, on average from the start; 0: as fast
        as the API answers, in batches of 1,000
    :param with_sender: send each question's ``sender`` (its GLN and SOR-ID)
    """

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        token: str,
        *,
        retry: RetrySettings,
        rate: float = 0.0,
        with_sender: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 0:
            raise ValueError(f"rate must be 0 or more, got {rate}")
        self._http = http
        self._url = base_url.rstrip("/") + BATCH_PATH
        self._headers = {"Authorization": f"Bearer {token}"}
        self._retry = retry
        self._rate = rate
        self._with_sender = with_sender
        self._sleep = sleep
        self._clock = clock
        self.batch_size = BATCH_LIMIT if rate <= 0 else max(1, min(BATCH_LIMIT, int(rate)))

    def send(
        self,
        traffic: Sequence[TrafficDay],
        on_day: Callable[[TrafficDay, TrafficCounts], None] | None = None,
    ) -> TrafficCounts:
        """Post every day's questions, oldest day first; ``on_day`` gets each day's counts.

        :returns: the counts of the whole run
        :raises TrafficError: a batch was refused as a whole (401, 403, 413, 422 ...), or kept
            failing; ``counts`` on the exception has what was answered before
        """
        total = TrafficCounts()
        started = self._clock()
        for day in traffic:
            counts = TrafficCounts()
            requests = day.requests
            for first in range(0, len(requests), self.batch_size):
                batch = requests[first : first + self.batch_size]
                if self._rate > 0:
                    # Pace from the start: the batch goes once the questions before it are
                    # within the rate.
                    wait = started + total.requests / self._rate - self._clock()
                    if wait > 0:
                        self._sleep(wait)
                try:
                    answered = self._post(batch)
                except TrafficError as exc:
                    exc.counts = total
                    raise
                counts.add(answered)
                total.add(answered)
            if on_day is not None:
                on_day(day, counts)
        return total

    def _post(self, batch: Sequence[TrafficRequest]) -> TrafficCounts:
        body = {"requests": [q.body(with_sender=self._with_sender) for q in batch]}
        try:
            for attempt in retrying(self._retry, TRANSIENT_EXCEPTIONS, sleep=self._sleep):
                with attempt:
                    response = self._http.post(self._url, json=body, headers=self._headers)
                    if response.status_code in TRANSIENT_STATUS:
                        raise TransientUpstreamError(
                            self._url, response.status_code, _retry_after(response)
                        )
        except TransientUpstreamError as exc:
            raise TrafficError(
                f"{self._url} kept answering HTTP {exc.status_code} "
                f"({self._retry.attempts} attempts)"
            ) from exc
        except httpx.TransportError as exc:
            raise TrafficError(f"{self._url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code != 200:
            raise TrafficError(
                f"{self._url} answered HTTP {response.status_code}: {_problem(response)}"
            )
        results = _results(response, len(batch))
        counts = TrafficCounts(requests=len(batch), batches=1)
        for result in results:
            counts.statuses[int(result["status"])] += 1
            if result.get("decision"):
                counts.outcomes[str(result["decision"]["decision"])] += 1
        return counts


def _results(response: httpx.Response, expected: int) -> list[dict[str, Any]]:
    try:
        results = response.json()["results"]
    except (ValueError, KeyError, TypeError) as exc:
        raise TrafficError(f"{response.url} answered 200 without results: {exc}") from exc
    if not isinstance(results, list) or len(results) != expected:
        found = len(results) if isinstance(results, list) else type(results).__name__
        raise TrafficError(f"{response.url} answered {found} results for {expected} questions")
    return results


def _problem(response: httpx.Response) -> str:
    """The problem document's detail (or title), else the start of the body."""
    try:
        problem = response.json()
    except ValueError:
        return response.text[:200] or "(no body)"
    if isinstance(problem, dict):
        return str(problem.get("detail") or problem.get("title") or problem)[:500]
    return str(problem)[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
