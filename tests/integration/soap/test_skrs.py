from __future__ import annotations

import pytest

from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.soap.errors import SoapFault, SoapProtocolError, SoapUnavailable
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.skrs import make_skrs_client
from tests.support.soap import no_sleep


def _key(row: object) -> tuple[object, ...]:
    return tuple(getattr(row, name) for name in ("gln", "message_type", "valid_from", "valid_to"))


class TestReplicationPaging:
    def test_pages_through_every_capability_row_of_the_day(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_skrs_client(soap_settings, sleep=no_sleep)
        pages = list(client.pages(max_records=100))
        entries = [entry for page in pages for entry in page.entries]
        expected_pages = len(soap_day.rows) // 100 + 1  # the last page is not full
        assert len(pages) == expected_pages
        assert all(not page.caught_up for page in pages[:-1]) and pages[-1].caught_up
        assert [e.offset for e in entries] == [row.offset for row in soap_day.rows]
        got = [
            (e.capability.gln, e.capability.message_type, e.valid_from, e.valid_to) for e in entries
        ]
        assert got == [_key(row) for row in soap_day.rows]
        assert [e.capability.version_code for e in entries] == [
            row.version_code for row in soap_day.rows
        ]
        # every page asked from the previous page's last offset
        for before, after in zip(pages, pages[1:], strict=False):
            assert after.requested_offset == before.next_offset

    def test_current_rows_match_the_days_registry(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        from soredi_sync.sandbox.generate import expected_registry

        client = make_skrs_client(soap_settings, sleep=no_sleep)
        current = {
            entry.capability
            for page in client.pages()
            for entry in page.entries
            if entry.valid_to is None
        }
        registry = expected_registry("tiny", 0, 1)
        assert current == set(registry.iter_capabilities())

    def test_resumes_from_a_stored_offset_without_gaps_or_duplicates(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        first_run = make_skrs_client(soap_settings, sleep=no_sleep).pages(max_records=250)
        stored: list[str] = []
        cursor = None
        for index, page in enumerate(first_run):
            stored.extend(e.offset for e in page.entries)
            cursor = page.next_offset  # committed with the page's data
            if index == 2:
                break  # the run is killed here
        second_run = make_skrs_client(soap_settings, sleep=no_sleep)
        for page in second_run.pages(cursor, max_records=250):
            stored.extend(e.offset for e in page.entries)
        assert stored == [row.offset for row in soap_day.rows]

    def test_caught_up_gives_one_empty_page_that_keeps_the_offset(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        last = soap_day.rows[-1].offset
        pages = list(make_skrs_client(soap_settings, sleep=no_sleep).pages(last))
        assert len(pages) == 1
        assert pages[0].entries == () and pages[0].next_offset == last


class TestReplicationFailures:
    def test_a_fault_is_not_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer
    ) -> None:
        soap_server.inject("fault", "skrs", message="unknown datatype")
        with pytest.raises(SoapFault, match="unknown datatype"):
            make_skrs_client(soap_settings, sleep=no_sleep).replicate()
        assert soap_server.calls == ["skrs"]

    def test_a_server_side_rejection_is_a_fault(self, soap_settings: SoapSettings) -> None:
        with pytest.raises(SoapFault, match="eanlocationcodeeditype only"):
            make_skrs_client(soap_settings, sleep=no_sleep).replicate(datatype="sor/v2/unit/v1")

    def test_a_503_mid_paging_is_retried_and_the_feed_stays_complete(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_skrs_client(soap_settings, sleep=no_sleep)
        pages = client.pages(max_records=1000)
        first = next(pages)
        soap_server.inject("status", "skrs", status=503)
        rest = list(pages)
        offsets = [e.offset for page in (first, *rest) for e in page.entries]
        assert offsets == [row.offset for row in soap_day.rows]
        assert soap_server.calls.count("skrs") == len(rest) + 2

    def test_a_timeout_gives_a_clear_error_after_retries(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer
    ) -> None:
        soap_server.inject("delay", "skrs", delay=2.0, times=3)
        with pytest.raises(SoapUnavailable, match="SKRS replicate kept failing after 3 attempts"):
            make_skrs_client(soap_settings, sleep=no_sleep).replicate()

    def test_a_malformed_envelope_is_a_clear_error(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer
    ) -> None:
        soap_server.inject("malformed", "skrs")
        with pytest.raises(SoapProtocolError, match="invalid XML"):
            make_skrs_client(soap_settings, sleep=no_sleep).replicate()
        assert soap_server.calls == ["skrs"]
