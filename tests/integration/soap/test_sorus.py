"""The SORUS client (zeep, modelled contract) against the loopback SORUS of the SOAP sandbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from soredi_sync.sandbox.soap import SoapDay, SoapSandboxServer
from soredi_sync.soap.errors import (
    SoapFault,
    SoapNotConfigured,
    SoapProtocolError,
    SoapUnavailable,
)
from soredi_sync.soap.records import ChangeAction, EdiTypeChange
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.sorus import SorusClient, make_sorus_client
from tests.support.soap import no_sleep


def _active_gln(day: SoapDay, without: str = "FDIS91") -> str:
    """An active GLN of the day that does not advertise ``without``."""
    types: dict[str, set[str]] = {}
    for row in day.rows:
        if row.valid_to is None:
            types.setdefault(row.gln, set()).add(row.message_type)
    return next(
        gln
        for gln, record in sorted(day.glns.items())
        if record.active and record.to_date is None and without not in types.get(gln, set())
    )


def _change(change_id: str, gln: str, code: str = "FDIS91", action: str = "add") -> EdiTypeChange:
    return EdiTypeChange(change_id, gln, ChangeAction(action), code)


class TestSubmit:
    def test_accepted_and_rejected_changes_come_back_with_one_result_each(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        gln = _active_gln(soap_day)
        receipt = client.submit(
            "soredi-sync plan 1",
            [
                _change("1", gln, "FDIS91"),
                _change("2", gln, "FCTL"),
                _change("3", "5790000000005", "FDIS91"),
                _change("4", gln, "NOT-A-TYPE"),
            ],
        )
        assert receipt.submission_id
        assert receipt.received_at.tzinfo is not None
        by_id = {result.change_id: result for result in receipt.results}
        assert set(by_id) == {"1", "2", "3", "4"}
        assert by_id["1"].accepted and by_id["2"].accepted
        next_day = soap_day.snapshot_date + timedelta(days=1)
        assert by_id["1"].effective_date == next_day and by_id["1"].reason is None
        assert not by_id["3"].accepted and "GLN" in (by_id["3"].reason or "")
        assert not by_id["4"].accepted and by_id["4"].reason

    def test_each_submission_gets_its_own_receipt(
        self, soap_settings: SoapSettings, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        gln = _active_gln(soap_day)
        first = client.submit("a", [_change("1", gln)])
        second = client.submit("b", [_change("1", gln, "FCTL")])
        assert first.submission_id != second.submission_id

    def test_nothing_to_send_or_repeated_ids_are_refused_before_any_call(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        gln = _active_gln(soap_day)
        with pytest.raises(ValueError, match="at least one change"):
            client.submit("empty", [])
        with pytest.raises(ValueError, match="unique"):
            client.submit("twice", [_change("1", gln), _change("1", gln, "FCTL")])
        assert soap_server.calls == []

    def test_without_a_configured_address_the_client_says_which_setting_is_missing(
        self,
    ) -> None:
        with pytest.raises(SoapNotConfigured, match="SOREDI_SOAP__SORUS__ADDRESS"):
            make_sorus_client(SoapSettings())


class TestSorusFailures:
    def test_a_soap_fault_is_not_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        soap_server.inject("fault", "sorus", code="soap:Client", message="not authorised")
        with pytest.raises(SoapFault, match="not authorised"):
            client.submit("x", [_change("1", _active_gln(soap_day))])
        assert soap_server.calls == ["sorus"]

    def test_a_503_then_success_is_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        soap_server.inject("status", "sorus", status=503)
        receipt = client.submit("x", [_change("1", _active_gln(soap_day))])
        assert [r.accepted for r in receipt.results] == [True]
        assert soap_server.calls == ["sorus", "sorus"]

    def test_a_timeout_on_every_attempt_is_unavailable(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        soap_server.inject("delay", "sorus", delay=2.0, times=3)
        with pytest.raises(SoapUnavailable, match="timed out"):
            client.submit("x", [_change("1", _active_gln(soap_day))])
        assert soap_server.calls == ["sorus"] * 3

    def test_a_malformed_envelope_is_a_clear_error_and_not_retried(
        self, soap_settings: SoapSettings, soap_server: SoapSandboxServer, soap_day: SoapDay
    ) -> None:
        client = make_sorus_client(soap_settings, sleep=no_sleep)
        soap_server.inject("malformed", "sorus")
        with pytest.raises(SoapProtocolError, match="unusable answer"):
            client.submit("x", [_change("1", _active_gln(soap_day))])
        assert soap_server.calls == ["sorus"]


class _Answers:
    """A stand-in zeep service proxy answering with a fixed receipt."""

    def __init__(self, results: list[dict[str, Any]]) -> None:
        from datetime import UTC, datetime

        self.answer = {
            "SubmissionIdentifier": "R1",
            "ReceivedAt": datetime(2026, 11, 2, tzinfo=UTC),
            "ChangeResult": results,
        }

    def SubmitEdiTypeChanges(self, **_request: Any) -> dict[str, Any]:  # noqa: N802 (SOAP name)
        return self.answer


class TestReceiptChecks:
    def test_a_receipt_that_misses_a_change_is_a_protocol_error(
        self, soap_settings: SoapSettings
    ) -> None:
        client = SorusClient(
            _Answers([{"ChangeIdentifier": "1", "Status": "accepted"}]), soap_settings
        )
        with pytest.raises(SoapProtocolError, match=r"missing \['2'\]"):
            client.submit("x", [_change("1", "5790000000005"), _change("2", "5790000000005")])

    def test_an_unknown_status_is_a_protocol_error(self, soap_settings: SoapSettings) -> None:
        client = SorusClient(
            _Answers([{"ChangeIdentifier": "1", "Status": "maybe"}]), soap_settings
        )
        with pytest.raises(SoapProtocolError, match="unknown change status"):
            client.submit("x", [_change("1", "5790000000005")])
