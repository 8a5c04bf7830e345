"""Prometheus metrics: syncs, source health, data age, routing decisions, webhooks.

One :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry` (never the
library's global one), so a test builds its own and sees only its own numbers. The process
uses one shared instance, :func:`shared_metrics`, which the API's ``/metrics`` route and
:func:`start_metrics_server` expose.

Label values are kept to small, closed sets: source names from the configuration, run
statuses, decision outcomes and reason codes (an enum), route templates, delivery statuses.
Nothing per GLN, per token or per message goes into a label.

``/metrics`` carries no token check: it must be reachable only from inside (the scraper's
network), never published through the gateway-facing proxy.

Several processes (``[api] workers`` > 1): inside :func:`metrics_across_processes` (the
supervisor enters it before it forks) prometheus_client's multiprocess mode is on. Every
process writes its values to files of its own in a per-run directory, and a scrape of any
worker reads them all: counters and histograms are the sum over the workers (and the daemon,
whose syncs are counted in its own process), ``soredi_leader`` the largest value of the living
processes, ``soredi_sync_rows`` the value set last. ``process_*`` are left out there (they
would be one worker's). One process (``workers = 1``) is unchanged: values in memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "DECISION_BUCKETS",
    "HTTP_BUCKETS",
    "SYNC_BUCKETS",
    "Metrics",
    "MetricsServer",
    "SnapshotCounts",
    "SyncResult",
    "metrics_across_processes",
    "process_ended",
    "shared_metrics",
    "start_metrics_server",
]

# A sync takes from a conditional GET answered "not modified" (tens of ms) to a full national
# pull parsed, diffed and stored (minutes).
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
# The resolver answers in tens of microseconds; the budget is p99 <= 200 us. Few buckets,
# because observe() scans them linearly on the hot path.
DECISION_BUCKETS = (1e-5, 2.5e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 0.025, 0.1, 1.0)
HTTP_BUCKETS = (1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

_OK_STATUSES = frozenset({"succeeded", "unchanged"})
_ROW_KINDS = ("units", "glns", "capabilities")


class SnapshotCounts(Protocol):
    """What :meth:`Metrics.record_sync_outcome` reads of a stored snapshot."""

    @property
    def unit_count(self) -> int: ...
    @property
    def gln_count(self) -> int: ...
    @property
    def capability_count(self) -> int: ...


class SyncResult(Protocol):
    """What :meth:`Metrics.record_sync_outcome` reads of a sync's outcome
    (:class:`~soredi_sync.services.sync.SyncOutcome`,
    :class:`~soredi_sync.services.incremental.IncrementalOutcome`)."""

    @property
    def status(self) -> str: ...
    @property
    def duration_seconds(self) -> float: ...
    @property
    def counts(self) -> Mapping[str, Any]: ...
    @property
    def snapshot(self) -> SnapshotCounts | None: ...


DataAgeSource = Callable[[], float | None]


class _DataAgeCollector:
    """``soredi_snapshot_age_seconds``, asked of a callback at scrape time.

    No sample when no callback is registered, when it answers ``None`` (no snapshot yet) or
    when it fails (a database that does not answer must not fail the whole scrape).
    """

    name = "soredi_snapshot_age_seconds"
    documentation = "Age of the current snapshot (the data routing decisions are made on)."

    def __init__(self) -> None:
        self.source: DataAgeSource | None = None

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[Metric]:
        source = self.source
        if source is None:
            return []
        try:
            age = source()
        except Exception:  # see the class docstring
            return []
        if age is None:
            return []
        return [GaugeMetricFamily(self.name, self.documentation, value=age)]


class _ScrapedGauge(_DataAgeCollector):
    """A gauge asked of a callback at scrape time, like ``soredi_snapshot_age_seconds``."""

    def __init__(self, name: str, documentation: str) -> None:
        super().__init__()
        self.name = name
        self.documentation = documentation


@dataclass(frozen=True)
class SourceGauges:
    """What the source gauges show for one source."""

    source: str
    consecutive_failures: int
    degraded: bool
    last_success_timestamp: float | None  # Unix time; None before any accepted run


SourceHealthReader = Callable[[], Sequence[SourceGauges]]

_SOURCE_GAUGES = (
    (
        "soredi_source_consecutive_failures",
        "Failed runs of the source since its last successful one.",
    ),
    ("soredi_source_degraded", "1 while the source has failed too often in a row."),
    (
        "soredi_last_success_timestamp_seconds",
        "Unix time of the source's last successful (or unchanged) run.",
    ),
)


class _SourceHealthCollector:
    """``soredi_source_consecutive_failures``, ``soredi_source_degraded`` and
    ``soredi_last_success_timestamp_seconds`` per source.

    With a reader registered (every daemon replica and API process registers one that reads
    ``sync_runs``), they are read at each scrape, so a follower shows what the leader's runs
    did: an alert on a degraded source fires whichever replica is scraped. When the reader
    fails (the database does not answer) the last values read are shown, and the scrape still
    answers. Without a reader, they are what this process recorded itself.
    """

    def __init__(self) -> None:
        self.reader: SourceHealthReader | None = None
        self._values: dict[str, SourceGauges] = {}
        self._lock = threading.Lock()

    def record(
        self,
        source: str,
        *,
        failures: int | None = None,
        degraded: bool | None = None,
        success_at: float | None = None,
    ) -> None:
        with self._lock:
            known = self._values.get(source, SourceGauges(source, 0, False, None))
            self._values[source] = SourceGauges(
                source,
                known.consecutive_failures if failures is None else failures,
                known.degraded if degraded is None else degraded,
                known.last_success_timestamp if success_at is None else success_at,
            )

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(name, doc, labels=["source"]) for name, doc in _SOURCE_GAUGES]

    def collect(self) -> list[Metric]:
        reader = self.reader
        if reader is not None:
            try:
                read = {g.source: g for g in reader()}
            except Exception:  # a database that does not answer must not fail the scrape
                read = None
            if read is not None:
                with self._lock:
                    self._values = read
        with self._lock:
            values = sorted(self._values.values(), key=lambda g: g.source)
        failures, degraded, success = (
            GaugeMetricFamily(name, doc, labels=["source"]) for name, doc in _SOURCE_GAUGES
        )
        for gauges in values:
            failures.add_metric([gauges.source], gauges.consecutive_failures)
            degraded.add_metric([gauges.source], 1 if gauges.degraded else 0)
            if gauges.last_success_timestamp is not None:
                success.add_metric([gauges.source], gauges.last_success_timestamp)
        return [failures, degraded, success]


class Metrics:
    """The project's metrics on a registry of their own.

    Recording methods take plain values and never raise for a value they have not seen before
    (a new label set is bound on first use and kept). :meth:`record_decision` is the hot one:
    a cached label child, one counter increment and one histogram observation, about a
    microsecond or two.

    :param process_collectors: also export ``process_*`` (CPU, memory, open files) and
        ``python_info``
    """

    def __init__(self, *, process_collectors: bool = True) -> None:
        self.registry = CollectorRegistry()
        exposed = self.registry
        directory = _multiprocess_dir
        # One process: the metrics are on the registry /metrics exposes. Several: their values
        # go to this process's files, and the registry exposes the files of all processes.
        registry = exposed if directory is None else None
        if directory is not None:
            MultiProcessCollector(exposed, path=directory)  # type: ignore[no-untyped-call]
        if process_collectors:
            if directory is None:
                ProcessCollector(registry=exposed)
            PlatformCollector(registry=exposed)

        # -- syncs
        self.sync_runs = Counter(
            "soredi_sync_runs",
            "Sync runs by source and final status.",
            ["source", "status"],
            registry=registry,
        )
        self.sync_duration = Histogram(
            "soredi_sync_duration_seconds",
            "Wall time of a sync run, from start to recorded outcome.",
            ["source"],
            buckets=SYNC_BUCKETS,
            registry=registry,
        )
        self.sync_rows = Gauge(
            "soredi_sync_rows",
            "Rows in the snapshot current after the source's last run.",
            ["source", "kind"],
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.sync_changes = Counter(
            "soredi_sync_changes",
            "Changes stored by syncs, by entity (unit, gln, capability) and kind.",
            ["source", "entity", "kind"],
            registry=registry,
        )
        self.sync_failures = Counter(
            "soredi_sync_failures",
            "Sync runs that failed or were refused.",
            ["source"],
            registry=registry,
        )
        self._source_health = _SourceHealthCollector()
        exposed.register(self._source_health)
        self.leader = Gauge(
            "soredi_leader",
            "1 while this process holds the scheduler lease (runs the syncs).",
            registry=registry,
            multiprocess_mode="livemax",
        )
        self._data_age = _DataAgeCollector()
        exposed.register(self._data_age)

        # -- routing
        self.decisions = Counter(
            "soredi_route_decisions",
            "Routing decisions answered, by outcome and reject reason ('none' if delivered).",
            ["decision", "reason"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "soredi_route_decision_seconds",
            "Time the resolver took for one decision.",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.http_request_seconds = Histogram(
            "soredi_http_request_seconds",
            "Time in an API route handler, by route template (answered requests).",
            ["route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

        # -- webhooks
        self.webhook_deliveries = Counter(
            "soredi_webhook_deliveries",
            "Webhook delivery attempts by result.",
            ["status"],
            registry=registry,
        )
        self._webhooks_stuck = _ScrapedGauge(
            "soredi_webhook_deliveries_stuck",
            "Webhook deliveries due for longer than webhooks.stuck_after_seconds without being "
            "sent, or whose dispatcher's claim ran out (read from the database at each scrape).",
        )
        exposed.register(self._webhooks_stuck)

        # Label children bound once: .labels() costs more than the increment itself.
        self._decision_children: dict[tuple[str, str | None], Any] = {}
        self._route_children: dict[str, Any] = {}
        self._observe_decision = self.decision_seconds.observe

    # -- syncs ---------------------------------------------------------------------------

    def record_sync(
        self,
        source: str,
        status: str,
        duration_seconds: float,
        counts: Mapping[str, Any] | None = None,
    ) -> None:
        """Count one finished run of ``source``.

        :param status: the run status (``succeeded``, ``unchanged``, ``failed``, ``refused``);
            anything but ``succeeded``/``unchanged`` also counts as a failure
        :param counts: the run's counts as :class:`~soredi_sync.services.sync.SyncOutcome`
            has them: ``units``/``glns``/``capabilities`` set the row gauges, ``changes``
            (``{entity: {kind: n}}``) adds to the change counters; other keys are ignored
        """
        status = str(status)
        self.sync_runs.labels(source, status).inc()
        self.sync_duration.labels(source).observe(duration_seconds)
        if status in _OK_STATUSES:
            self._source_health.record(source, success_at=time.time())
        else:
            self.sync_failures.labels(source).inc()
        if not counts:
            return
        units, glns, capabilities = (counts.get(kind) for kind in _ROW_KINDS)
        if isinstance(units, int) and isinstance(glns, int) and isinstance(capabilities, int):
            self.set_rows(source, units, glns, capabilities)
        changes = counts.get("changes")
        if isinstance(changes, Mapping):
            for entity, by_kind in changes.items():
                if not isinstance(by_kind, Mapping):
                    continue
                for kind, n in by_kind.items():
                    if isinstance(n, int) and n > 0:
                        self.sync_changes.labels(source, str(entity), str(kind)).inc(n)

    def record_sync_outcome(self, source: str, outcome: SyncResult) -> None:
        """:meth:`record_sync` for a use case's outcome; the row gauges come from the snapshot
        current after the run (also after an unchanged or failed one) when it has one."""
        self.record_sync(source, outcome.status, outcome.duration_seconds, outcome.counts)
        snapshot = outcome.snapshot
        if snapshot is not None:
            self.set_rows(
                source, snapshot.unit_count, snapshot.gln_count, snapshot.capability_count
            )

    def set_rows(self, source: str, units: int, glns: int, capabilities: int) -> None:
        for kind, n in zip(_ROW_KINDS, (units, glns, capabilities), strict=True):
            self.sync_rows.labels(source, kind).set(n)

    def record_failure_streak(self, source: str, failures: int, degraded: bool) -> None:
        """The source's current run of failures, and whether that makes it degraded (until
        the next scrape reads them, where a source-health reader is registered)."""
        self._source_health.record(source, failures=failures, degraded=degraded)

    def set_source_health_reader(self, reader: SourceHealthReader | None) -> None:
        """Where the source gauges come from: a callable asked at each scrape (every replica
        registers one reading ``sync_runs``). Replaces the previous one; ``None`` removes it."""
        self._source_health.reader = reader

    def set_leader(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def set_data_age_source(self, source: DataAgeSource | None) -> None:
        """Where ``soredi_snapshot_age_seconds`` comes from: a callable asked at each scrape,
        returning the current snapshot's age in seconds or ``None`` (no snapshot). Replaces
        the previous one; ``None`` removes it."""
        self._data_age.source = source

    # -- routing -------------------------------------------------------------------------

    def record_decision(self, decision: str, reason: str | None, seconds: float) -> None:
        """Count one answered routing decision and the resolver's time for it.

        :param decision: ``deliver``, ``convert`` (delivered after a conversion) or ``reject``
        :param reason: the reject reason code, ``None`` when delivered
        """
        child = self._decision_children.get((decision, reason))
        if child is None:
            child = self._bind_decision(decision, reason)
        child.inc()
        self._observe_decision(seconds)

    def _bind_decision(self, decision: str, reason: str | None) -> Any:
        child = self.decisions.labels(str(decision), "none" if reason is None else str(reason))
        self._decision_children[(decision, reason)] = child
        return child

    def record_request(self, route: str, seconds: float) -> None:
        """Time spent in the handler of ``route`` (a route template, e.g. ``/v1/route``)."""
        child = self._route_children.get(route)
        if child is None:
            child = self._route_children[route] = self.http_request_seconds.labels(route)
        child.observe(seconds)

    # -- webhooks ------------------------------------------------------------------------

    def record_webhook(self, status: str) -> None:
        """One delivery attempt: ``delivered``, ``failed``, ``retrying``, … (a closed set)."""
        self.webhook_deliveries.labels(str(status)).inc()

    def set_webhooks_stuck_source(self, source: DataAgeSource | None) -> None:
        """Where ``soredi_webhook_deliveries_stuck`` comes from: a callable asked at each
        scrape (no sample while none is set, or when it fails or answers ``None``)."""
        self._webhooks_stuck.source = source

    # -- exposition ----------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_shared: Metrics | None = None
_shared_lock = threading.Lock()
# Set inside metrics_across_processes(); a forked worker inherits it.
_multiprocess_dir: str | None = None
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_across_processes() -> Iterator[str]:
    """prometheus_client's multiprocess mode for the metrics built inside the block, in this
    process and in the processes it forks; yields the directory of their files.

    Enter it before forking the workers and before any :class:`Metrics` is built (the
    shared instance is built afresh inside). The directory is new, under the system's
    temporary directory, and removed with its files when the block ends; call
    :func:`process_ended` for each worker that exits meanwhile. Outside the block nothing
    changes.
    """
    global _multiprocess_dir, _shared
    if _multiprocess_dir is not None:
        raise RuntimeError("metrics_across_processes() is already in effect")
    directory = tempfile.mkdtemp(prefix="soredi-metrics-")
    saved = (os.environ.get(_MULTIPROC_ENV), values.ValueClass, _shared)
    os.environ[_MULTIPROC_ENV] = directory  # where prometheus_client's values open their files
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _multiprocess_dir, _shared = directory, None
    try:
        yield directory
    finally:
        environment, values.ValueClass, _shared = saved
        _multiprocess_dir = None
        if environment is None:
            os.environ.pop(_MULTIPROC_ENV, None)
        else:
            os.environ[_MULTIPROC_ENV] = environment
        values.close_all_multiprocess_files()  # type: ignore[no-untyped-call]
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """A worker ended: its gauges leave the scrape (its counts stay in the sums). Nothing to
    do outside :func:`metrics_across_processes`."""
    if _multiprocess_dir is not None:
        mark_process_dead(pid, _multiprocess_dir)  # type: ignore[no-untyped-call]


def shared_metrics() -> Metrics:
    """The process's metrics, built on first use (nothing is built at import time)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Metrics()
    return _shared


@dataclass(frozen=True)
class MetricsServer:
    """A running :func:`start_metrics_server`; ``stop()`` shuts it down."""

    host: str
    port: int
    stop: Callable[[], None]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"


def start_metrics_server(
    port: int, host: str = "127.0.0.1", instance: Metrics | None = None
) -> MetricsServer:
    """Serve the metrics on ``host:port`` (any path answers) from a daemon thread, for a
    process without the API (``run --no-api``). Loopback by default: the endpoint has no
    authentication.

    :param port: 0 for any free port (see the result's ``port``)
    :param instance: whose metrics; default: :func:`shared_metrics`
    :raises OSError: the address is taken
    """
    server, thread = start_http_server(port, host, (instance or shared_metrics()).registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return MetricsServer(host, server.server_port, stop)
