"""The Metrics registry: names, labels and values after each record_* call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from soredi_sync.observability.metrics import Metrics, shared_metrics, start_metrics_server
from soredi_sync.ports.records import RunStatus
from tests.support.observability import samples, scrape, value


@dataclass(frozen=True)
class Snapshot:
    unit_count: int
    gln_count: int
    capability_count: int


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    duration_seconds: float
    counts: dict[str, Any] = field(default_factory=dict)
    snapshot: Snapshot | None = None


STORED_COUNTS = {
    "units": 120,
    "glns": 80,
    "capabilities": 400,
    "changes": {
        "unit": {"added": 2, "removed": 0, "changed": 1},
        "gln": {"added": 0, "removed": 0, "changed": 0},
        "capability": {"added": 5, "removed": 3, "changed": 0},
    },
}


class TestSyncMetrics:
    def test_a_stored_run_counts_the_run_its_duration_rows_and_changes(
        self, metrics: Metrics
    ) -> None:
        metrics.record_sync("sor-filer", "succeeded", 2.0, STORED_COUNTS)
        text = scrape(metrics)
        assert value(text, "soredi_sync_runs_total", source="sor-filer", status="succeeded") == 1
        assert value(text, "soredi_sync_duration_seconds_count", source="sor-filer") == 1
        assert value(text, "soredi_sync_duration_seconds_sum", source="sor-filer") == 2.0
        assert value(text, "soredi_sync_duration_seconds_bucket", source="sor-filer", le="2.5") == 1
        assert value(text, "soredi_sync_rows", source="sor-filer", kind="units") == 120
        assert value(text, "soredi_sync_rows", source="sor-filer", kind="glns") == 80
        assert value(text, "soredi_sync_rows", source="sor-filer", kind="capabilities") == 400
        changes = "soredi_sync_changes_total"
        assert value(text, changes, source="sor-filer", entity="unit", kind="added") == 2
        assert value(text, changes, source="sor-filer", entity="capability", kind="removed") == 3
        # Zero counts bind no label set: the change series stay as few as the changes seen.
        assert value(text, changes, source="sor-filer", entity="gln", kind="added") is None
        assert value(text, "soredi_last_success_timestamp_seconds", source="sor-filer")
        assert value(text, "soredi_sync_failures_total", source="sor-filer") is None

    def test_the_duration_buckets_reach_from_50_ms_to_10_minutes(self, metrics: Metrics) -> None:
        metrics.record_sync("skrs", "unchanged", 0.01)
        text = scrape(metrics)
        bounds = {
            dict(labels)["le"]
            for (name, labels) in samples(text)
            if name == "soredi_sync_duration_seconds_bucket"
        }
        assert {"0.05", "600.0", "+Inf"} <= bounds
        assert value(text, "soredi_sync_duration_seconds_bucket", source="skrs", le="0.05") == 1

    def test_failed_and_refused_runs_count_as_failures_and_leave_the_last_success_alone(
        self, metrics: Metrics
    ) -> None:
        metrics.record_sync("sor-filer", RunStatus.FAILED, 1.0)
        metrics.record_sync("sor-filer", RunStatus.REFUSED, 1.0)
        text = scrape(metrics)
        assert value(text, "soredi_sync_failures_total", source="sor-filer") == 2
        assert value(text, "soredi_sync_runs_total", source="sor-filer", status="failed") == 1
        assert value(text, "soredi_sync_runs_total", source="sor-filer", status="refused") == 1
        assert value(text, "soredi_last_success_timestamp_seconds", source="sor-filer") is None

    def test_an_outcome_sets_the_rows_from_the_snapshot_current_after_the_run(
        self, metrics: Metrics
    ) -> None:
        unchanged = Outcome(RunStatus.UNCHANGED, 0.2, {"reason": "not modified"}, Snapshot(3, 2, 9))
        metrics.record_sync_outcome("sor-filer", unchanged)
        text = scrape(metrics)
        assert value(text, "soredi_sync_runs_total", source="sor-filer", status="unchanged") == 1
        assert value(text, "soredi_sync_rows", source="sor-filer", kind="capabilities") == 9

    def test_an_incremental_outcome_without_row_counts_keeps_its_counts_out_of_the_gauges(
        self, metrics: Metrics
    ) -> None:
        incremental = Outcome(RunStatus.SUCCEEDED, 1.5, {"pages": 3, "snapshots": 2})
        metrics.record_sync_outcome("skrs", incremental)
        text = scrape(metrics)
        assert value(text, "soredi_sync_runs_total", source="skrs", status="succeeded") == 1
        assert not any(name == "soredi_sync_rows" for name, _ in samples(text))

    def test_the_failure_streak_and_degraded_flag_are_gauges_per_source(
        self, metrics: Metrics
    ) -> None:
        metrics.record_failure_streak("sor-filer", 3, degraded=True)
        metrics.record_failure_streak("skrs", 0, degraded=False)
        text = scrape(metrics)
        assert value(text, "soredi_source_consecutive_failures", source="sor-filer") == 3
        assert value(text, "soredi_source_degraded", source="sor-filer") == 1
        assert value(text, "soredi_source_degraded", source="skrs") == 0

    def test_leadership_is_a_gauge_that_follows_the_lease(self, metrics: Metrics) -> None:
        assert value(scrape(metrics), "soredi_leader") == 0
        metrics.set_leader(True)
        assert value(scrape(metrics), "soredi_leader") == 1
        metrics.set_leader(False)
        assert value(scrape(metrics), "soredi_leader") == 0


class TestDataAge:
    def test_the_data_age_is_absent_until_a_source_is_registered(self, metrics: Metrics) -> None:
        assert value(scrape(metrics), "soredi_snapshot_age_seconds") is None
        metrics.set_data_age_source(lambda: 3600.0)
        assert value(scrape(metrics), "soredi_snapshot_age_seconds") == 3600.0

    def test_the_data_age_is_asked_at_each_scrape(self, metrics: Metrics) -> None:
        ages = iter([10.0, 20.0])
        metrics.set_data_age_source(lambda: next(ages))
        assert value(scrape(metrics), "soredi_snapshot_age_seconds") == 10.0
        assert value(scrape(metrics), "soredi_snapshot_age_seconds") == 20.0

    def test_no_snapshot_or_a_failing_source_leaves_the_age_out_but_the_scrape_answers(
        self, metrics: Metrics
    ) -> None:
        metrics.set_data_age_source(lambda: None)
        assert value(scrape(metrics), "soredi_snapshot_age_seconds") is None

        def broken() -> float:
            raise ConnectionError("the database does not answer")

        metrics.set_data_age_source(broken)
        text = scrape(metrics)
        assert value(text, "soredi_snapshot_age_seconds") is None
        assert value(text, "soredi_leader") == 0


class TestDecisionMetrics:
    def test_decisions_are_counted_by_outcome_and_reason_code(self, metrics: Metrics) -> None:
        metrics.record_decision("deliver", None, 40e-6)
        metrics.record_decision("deliver", None, 40e-6)
        metrics.record_decision("convert", None, 60e-6)
        metrics.record_decision("reject", "RECEIVER_UNKNOWN", 15e-6)
        text = scrape(metrics)
        total = "soredi_route_decisions_total"
        assert value(text, total, decision="deliver", reason="none") == 2
        assert value(text, total, decision="convert", reason="none") == 1
        assert value(text, total, decision="reject", reason="RECEIVER_UNKNOWN") == 1

    def test_the_resolver_time_lands_in_microsecond_buckets(self, metrics: Metrics) -> None:
        metrics.record_decision("deliver", None, 40e-6)
        metrics.record_decision("reject", "RECEIVER_UNKNOWN", 0.3)
        text = scrape(metrics)
        assert value(text, "soredi_route_decision_seconds_bucket", le="1e-05") == 0
        assert value(text, "soredi_route_decision_seconds_bucket", le="5e-05") == 1
        assert value(text, "soredi_route_decision_seconds_bucket", le="1.0") == 2
        assert value(text, "soredi_route_decision_seconds_count") == 2

    def test_handler_time_is_a_histogram_per_route_template(self, metrics: Metrics) -> None:
        metrics.record_request("/v1/route", 0.0004)
        metrics.record_request("/v1/route/bundle", 0.003)
        text = scrape(metrics)
        name = "soredi_http_request_seconds_count"
        assert value(text, name, route="/v1/route") == 1
        assert value(text, name, route="/v1/route/bundle") == 1


class TestWebhookMetrics:
    def test_deliveries_are_counted_by_status(self, metrics: Metrics) -> None:
        metrics.record_webhook("delivered")
        metrics.record_webhook("delivered")
        metrics.record_webhook("failed")
        text = scrape(metrics)
        assert value(text, "soredi_webhook_deliveries_total", status="delivered") == 2
        assert value(text, "soredi_webhook_deliveries_total", status="failed") == 1


class TestRegistries:
    def test_two_instances_do_not_share_numbers(self, metrics: Metrics) -> None:
        other = Metrics(process_collectors=False)
        other.record_webhook("delivered")
        assert value(scrape(metrics), "soredi_webhook_deliveries_total", status="delivered") is None

    def test_the_shared_instance_is_one_per_process(self) -> None:
        assert shared_metrics() is shared_metrics()

    def test_the_exposition_is_the_prometheus_text_format(self, metrics: Metrics) -> None:
        _body, content_type = metrics.exposition()
        assert content_type.startswith("text/plain; version=")

    def test_the_default_instance_also_describes_the_python_process(self) -> None:
        assert "python_info" in scrape(Metrics())
        assert "python_info" not in scrape(Metrics(process_collectors=False))


class TestMetricsServer:
    def test_serves_the_registry_on_loopback_without_the_api(self, metrics: Metrics) -> None:
        metrics.set_leader(True)
        server = start_metrics_server(0, instance=metrics)
        try:
            assert server.host == "127.0.0.1" and server.port > 0
            response = httpx.get(server.url, timeout=5)
        finally:
            server.stop()
        assert response.status_code == 200
        assert value(response.text, "soredi_leader") == 1
