"""The metrics of several processes (`observability/metrics.py`): inside
`metrics_across_processes()` every value goes to a file of its process and a scrape reads the
files; outside it, one process keeps its values in memory exactly as before."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import values

from soredi_sync.observability.metrics import (
    Metrics,
    metrics_across_processes,
    process_ended,
    shared_metrics,
)
from tests.support.live_server import scraped


def _scrape(metrics: Metrics) -> str:
    return metrics.exposition()[0].decode()


def test_one_process_keeps_its_values_in_memory_with_its_process_metrics() -> None:
    metrics = Metrics()
    metrics.record_decision("deliver", None, 1e-5)
    text = _scrape(metrics)
    assert scraped(text, "soredi_route_decisions_total") == 1
    assert "soredi_route_decisions_created" in text and "process_cpu_seconds_total" in text
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_inside_the_block_a_scrape_reads_the_files_and_the_directory_goes_at_the_end() -> None:
    outside = shared_metrics()
    value_class = values.ValueClass
    with metrics_across_processes() as directory:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory
        metrics = shared_metrics()
        assert metrics is not outside  # built afresh, on files
        metrics.record_decision("deliver", None, 1e-5)
        metrics.record_decision("reject", "unknown-receiver", 1e-5)
        metrics.set_leader(True)
        text = _scrape(metrics)
        files = {p.name for p in Path(directory).iterdir()}

        process_ended(os.getpid())  # as the supervisor does for a worker that ended
        after = _scrape(metrics)

    assert scraped(text, "soredi_route_decisions_total") == 2
    assert scraped(text, "soredi_route_decision_seconds_count") == 2
    assert scraped(text, "soredi_leader") == 1
    assert "process_cpu_seconds_total" not in text  # it would be one worker's
    assert f"counter_{os.getpid()}.db" in files
    assert scraped(after, "soredi_route_decisions_total") == 2  # its counts stay in the sums
    assert "soredi_leader " not in after  # its gauge left with it
    assert not Path(directory).exists()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert values.ValueClass is value_class and shared_metrics() is outside
