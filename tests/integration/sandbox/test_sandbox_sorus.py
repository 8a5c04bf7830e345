"""SORUS in the sandbox: submissions are judged against the served day, kept in a journal, and
published in the next day's files, SKRS feed and SORLS lookups.

Requests are raw SOAP envelopes posted with httpx (one test goes through zeep and the shipped
WSDL, as the client will); files are read back with the project's parsers.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.parsing.load import load_registry_from_dir
from soredi_sync.sandbox.generate import (
    Manifest,
    day_directory,
    expected_registry,
    expected_snapshot,
    generate,
    load_message_types,
)
from soredi_sync.sandbox.journal import (
    JOURNAL_NAME,
    ChangeRequest,
    JournalEntry,
    SubmissionJournal,
)
from soredi_sync.sandbox.server import SandboxServer
from soredi_sync.sandbox.snapshot import Snapshot
from soredi_sync.sandbox.soap import SoapSandboxServer
from soredi_sync.sandbox.soap_services import SKRS_NS, SORLS_NS, SORUS_NS
from soredi_sync.sandbox.world import World

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DAYS = 2  # day 0 is served, day 1 publishes, day 2 is the last one
FILES = ("sor.zip", "Sor_complete.zip")

# --- building and reading SOAP ------------------------------------------------------------------


def envelope(body: str) -> str:
    return f'<soap:Envelope xmlns:soap="{SOAP_ENV}"><soap:Body>{body}</soap:Body></soap:Envelope>'


@dataclass(frozen=True)
class Change:
    change_id: str
    gln: str
    action: str
    code: str
    version: str | None = None

    def xml(self) -> str:
        version = f"<VersionCode>{self.version}</VersionCode>" if self.version else ""
        return (
            f"<Change><ChangeIdentifier>{escape(self.change_id)}</ChangeIdentifier>"
            f"<EanLocationCode>{self.gln}</EanLocationCode><Action>{self.action}</Action>"
            f"<StandardIdentifier>{self.code}</StandardIdentifier>{version}</Change>"
        )


def submit_raw(url: str, body: str) -> httpx.Response:
    return httpx.post(
        url,
        content=envelope(body).encode(),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=10,
    )


def submit(url: str, *changes: Change, reference: str = "soredi-sync plan 1") -> httpx.Response:
    return submit_raw(
        url,
        f'<SubmitEdiTypeChangesRequest xmlns="{SORUS_NS}"><Reference>{reference}</Reference>'
        + "".join(c.xml() for c in changes)
        + "</SubmitEdiTypeChangesRequest>",
    )


@dataclass(frozen=True)
class Receipt:
    ticket: str
    received_at: str
    results: dict[str, dict[str, str]]  # ChangeIdentifier -> Status, EffectiveDate, Reason


def receipt(response: httpx.Response) -> Receipt:
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    answer = root.find(f"{{{SOAP_ENV}}}Body/{{{SORUS_NS}}}SubmitEdiTypeChangesResponse")
    assert answer is not None, response.text
    results = {}
    for result in answer.findall(f"{{{SORUS_NS}}}ChangeResult"):
        fields = {etree.QName(child).localname: child.text or "" for child in result}
        results[fields.pop("ChangeIdentifier")] = fields
    return Receipt(
        ticket=answer.findtext(f"{{{SORUS_NS}}}SubmissionIdentifier") or "",
        received_at=answer.findtext(f"{{{SORUS_NS}}}ReceivedAt") or "",
        results=results,
    )


def soap_fault(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 500, response.text
    fault = etree.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text
    return fault.findtext("faultcode") or "", fault.findtext("faultstring") or ""


def feed(url: str, gln: str) -> dict[str, tuple[str, str | None]]:
    """SKRS rows of one GLN: message type -> (ValidFrom, ValidTo)."""
    response = httpx.post(
        url,
        content=envelope(
            f'<ReplicationRequest xmlns="{SKRS_NS}"><register>sor</register>'
            "<datatype>sor/eanlocationcodeeditype/v1</datatype><version>1</version>"
            "<maxRecords>100000</maxRecords></ReplicationRequest>"
        ).encode(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    rows = {}
    for record in etree.fromstring(response.content).iter(f"{{{SKRS_NS}}}EanLocationCodeEdiType"):
        if record.findtext(f"{{{SKRS_NS}}}EanLocationCode") == gln:
            rows[record.findtext(f"{{{SKRS_NS}}}StandardIdentifier") or ""] = (
                record.findtext(f"{{{SKRS_NS}}}ValidFrom") or "",
                record.findtext(f"{{{SKRS_NS}}}ValidTo"),
            )
    return rows


def sorls_finds(url: str, sor_id: str, on: date) -> bool:
    response = httpx.post(
        url,
        content=envelope(
            f'<GetSorEntityRequest xmlns="{SORLS_NS}"><SorIdentifier>{sor_id}</SorIdentifier>'
            f"<Date>{on.isoformat()}</Date></GetSorEntityRequest>"
        ).encode(),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return etree.fromstring(response.content).find(f".//{{{SORLS_NS}}}SorEntity") is not None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_digest(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != JOURNAL_NAME
    }


# --- picking GLNs the night's own churn leaves alone --------------------------------------------


@dataclass(frozen=True)
class Target:
    gln: str
    keep: str  # a type the GLN has on days 0 and 1
    new: str  # a type it has on neither


def pick_target(day0: Snapshot, day1: Snapshot, skip: int = 0) -> Target:
    codes = sorted({row.message_type for row in day0.vocabulary.edi_types})
    found = []
    for gln in sorted(day0.capabilities):
        before, after = day0.glns[gln], day1.glns.get(gln)
        if after is None or not (before.active and after.active) or after.to_date is not None:
            continue
        has0, has1 = set(day0.capabilities[gln]), set(day1.capabilities.get(gln, {}))
        kept = sorted(has0 & has1)
        absent = [code for code in codes if code not in has0 | has1]
        if kept and absent:
            found.append(Target(gln, kept[0], absent[0]))
    return found[skip]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def message_types() -> MessageTypeRegistry:
    return load_message_types()


@pytest.fixture(scope="module")
def baseline(message_types: MessageTypeRegistry) -> list[Snapshot]:
    """Days 0..DAYS of tiny/0 without submissions."""
    return [expected_snapshot("tiny", 0, day, message_types=message_types) for day in range(3)]


@pytest.fixture
def target(baseline: list[Snapshot]) -> Target:
    return pick_target(baseline[0], baseline[1])


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Path:
    out = tmp_path / "sandbox"
    generate(out, "tiny", seed=0, days=DAYS)
    return out


@pytest.fixture
def http(sandbox_dir: Path) -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_dir) as server:
        yield server


@pytest.fixture
def soap(http: SandboxServer) -> Iterator[SoapSandboxServer]:
    with SoapSandboxServer(files=http) as server:
        yield server


def add_and_remove(target: Target) -> tuple[Change, Change]:
    return (
        Change("c-add", target.gln, "add", target.new),
        Change("c-remove", target.gln, "remove", target.keep),
    )


# --- the operation ------------------------------------------------------------------------------


class TestSubmitEdiTypeChanges:
    def test_accepted_changes_get_a_ticket_and_the_next_days_date(
        self, soap: SoapSandboxServer, target: Target, baseline: list[Snapshot]
    ) -> None:
        answer = receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        assert answer.ticket == "SORUS-000001"
        assert answer.received_at.endswith("+00:00")
        next_day = (baseline[0].snapshot_date + timedelta(days=1)).isoformat()
        assert answer.results == {
            "c-add": {"Status": "accepted", "EffectiveDate": next_day},
            "c-remove": {"Status": "accepted", "EffectiveDate": next_day},
        }

    def test_tickets_are_sequential_even_when_every_change_is_rejected(
        self, soap: SoapSandboxServer, target: Target
    ) -> None:
        first = receipt(submit(soap.url("sorus"), Change("x", "5790000000000", "add", "FDIS91")))
        second = receipt(submit(soap.url("sorus"), add_and_remove(target)[0]))
        assert (first.ticket, second.ticket) == ("SORUS-000001", "SORUS-000002")
        assert soap.journal.submissions == 2 and len(soap.journal) == 1

    def test_each_change_is_judged_on_its_own_with_a_reason_when_rejected(
        self, soap: SoapSandboxServer, http: SandboxServer, target: Target
    ) -> None:
        assert http.manifest is not None
        inactive = http.manifest.planted["TYPES_ON_INACTIVE_GLN"][0]
        answer = receipt(
            submit(
                soap.url("sorus"),
                Change("unknown-gln", "5790000000000", "add", "FDIS91"),
                Change("ok", target.gln, "add", target.new),
                Change("unknown-type", target.gln, "add", "NOSUCH99"),
                Change("inactive", inactive, "remove", "FDIS91"),
            )
        )
        assert list(answer.results) == ["unknown-gln", "ok", "unknown-type", "inactive"]
        statuses = {key: result["Status"] for key, result in answer.results.items()}
        assert statuses == {
            "unknown-gln": "rejected",
            "ok": "accepted",
            "unknown-type": "rejected",
            "inactive": "rejected",
        }
        assert "unknown GLN 5790000000000" in answer.results["unknown-gln"]["Reason"]
        assert "NOSUCH99" in answer.results["unknown-type"]["Reason"]
        assert "not active" in answer.results["inactive"]["Reason"]
        assert "EffectiveDate" not in answer.results["inactive"]
        assert [(e.change_id, e.effective_day) for e in soap.journal.entries()] == [("ok", 1)]

    def test_adding_a_type_already_there_or_removing_an_absent_one_is_accepted(
        self, soap: SoapSandboxServer, target: Target
    ) -> None:
        answer = receipt(
            submit(
                soap.url("sorus"),
                Change("again", target.gln, "add", target.keep),
                Change("gone", target.gln, "remove", target.new),
            )
        )
        assert {r["Status"] for r in answer.results.values()} == {"accepted"}

    def test_a_request_without_changes_is_a_client_fault(self, soap: SoapSandboxServer) -> None:
        code, message = soap_fault(submit(soap.url("sorus")))
        assert code == "soap:Client" and "no Change" in message
        assert soap.journal.submissions == 0

    def test_a_request_without_reference_is_a_client_fault(
        self, soap: SoapSandboxServer, target: Target
    ) -> None:
        body = (
            f'<SubmitEdiTypeChangesRequest xmlns="{SORUS_NS}">{add_and_remove(target)[0].xml()}'
            "</SubmitEdiTypeChangesRequest>"
        )
        code, message = soap_fault(submit_raw(soap.url("sorus"), body))
        assert code == "soap:Client" and "Reference" in message

    @pytest.mark.parametrize(
        "body",
        [
            "<SubmitEdiTypeChangesRequest",  # not XML
            f'<SubmitEdiTypeChangesRequest xmlns="{SORUS_NS}"><Reference>r</Reference><Change>'
            "<ChangeIdentifier>1</ChangeIdentifier><EanLocationCode>5790000000000"
            "</EanLocationCode><Action>replace</Action><StandardIdentifier>FDIS91"
            "</StandardIdentifier></Change></SubmitEdiTypeChangesRequest>",  # bad Action
            f'<GetSorEntityRequest xmlns="{SORLS_NS}"/>',  # another service's operation
        ],
    )
    def test_a_malformed_request_is_a_client_fault(
        self, soap: SoapSandboxServer, body: str
    ) -> None:
        code, _ = soap_fault(submit_raw(soap.url("sorus"), body))
        assert code == "soap:Client"
        assert len(soap.journal) == 0

    def test_on_the_last_generated_day_there_is_no_next_day_to_publish_into(
        self, soap: SoapSandboxServer, http: SandboxServer, target: Target
    ) -> None:
        http.set_day(DAYS)
        code, message = soap_fault(submit(soap.url("sorus"), *add_and_remove(target)))
        assert code == "soap:Server" and "generate more days" in message
        assert soap.journal.submissions == 0

    def test_faults_can_be_injected_for_sorus_alone(
        self, soap: SoapSandboxServer, target: Target
    ) -> None:
        soap.inject("fault", "sorus", code="soap:Server", message="SORUS is down")
        soap.inject("status", "sorus")
        assert soap_fault(submit(soap.url("sorus"), *add_and_remove(target)))[1] == "SORUS is down"
        assert submit(soap.url("sorus"), *add_and_remove(target)).status_code == 503
        assert receipt(submit(soap.url("sorus"), *add_and_remove(target))).ticket
        assert soap.calls == ["sorus", "sorus", "sorus"]

    def test_the_contract_is_served_with_the_sandboxs_address(
        self, soap: SoapSandboxServer
    ) -> None:
        wsdl = httpx.get(soap.wsdl_url("sorus"), timeout=5)
        xsd = httpx.get(soap.base_url + "sorus.xsd", timeout=5)
        assert wsdl.status_code == 200 and f'location="{soap.url("sorus")}"' in wsdl.text
        assert xsd.status_code == 200 and "SubmitEdiTypeChangesRequest" in xsd.text

    def test_a_zeep_client_on_the_shipped_wsdl_gets_the_receipt(
        self, soap: SoapSandboxServer, target: Target
    ) -> None:
        import requests
        import zeep

        from soredi_sync.soap.settings import contract_path

        with requests.Session() as session:
            client = zeep.Client(
                str(contract_path("sorus.wsdl")), transport=zeep.Transport(session=session)
            )
            service = client.create_service(
                "{urn:soredi:modelled:sorus:1}SorUpdateBinding", soap.url("sorus")
            )
            answer = service.SubmitEdiTypeChanges(
                Reference="zeep",
                Change=[
                    {
                        "ChangeIdentifier": "z1",
                        "EanLocationCode": target.gln,
                        "Action": "add",
                        "StandardIdentifier": target.new,
                    }
                ],
            )
        assert answer.SubmissionIdentifier == "SORUS-000001"
        assert answer.ReceivedAt.tzinfo is not None
        assert [(r.ChangeIdentifier, r.Status) for r in answer.ChangeResult] == [("z1", "accepted")]


# --- publishing ---------------------------------------------------------------------------------


class TestPublishing:
    def test_an_accepted_add_and_remove_show_in_the_next_days_files_not_today(
        self,
        soap: SoapSandboxServer,
        http: SandboxServer,
        sandbox_dir: Path,
        target: Target,
        baseline: list[Snapshot],
        message_types: MessageTypeRegistry,
    ) -> None:
        today = {name: sha256(sandbox_dir / "day-000" / name) for name in FILES}
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        assert {name: sha256(sandbox_dir / "day-000" / name) for name in FILES} == today

        http.set_day(1)

        loaded = load_registry_from_dir(sandbox_dir / day_directory(1), message_types=message_types)
        after = set(loaded.capabilities[target.gln])
        assert after == set(baseline[1].capabilities[target.gln]) - {target.keep} | {target.new}
        untouched = baseline[1].registry()
        for gln, by_type in untouched.capabilities.items():  # nothing else moved
            if gln != target.gln:
                assert dict(loaded.capabilities.get(gln, {})) == dict(by_type)
        expected = expected_registry(
            "tiny", 0, 1, message_types=message_types, submissions=http.journal.entries()
        )
        assert {g: dict(c) for g, c in loaded.capabilities.items()} == {
            g: dict(c) for g, c in expected.capabilities.items()
        }
        assert http.manifest is not None
        changes = http.manifest.day(1).changes_from_previous_day
        assert changes is not None
        ids = changes["capabilities"]["ids"]
        assert f"{target.gln}:{target.new}" in ids["added"]
        assert f"{target.gln}:{target.keep}" in ids["removed"]

    def test_the_etag_of_the_next_day_changes_with_the_submission(
        self, soap: SoapSandboxServer, http: SandboxServer, target: Target
    ) -> None:
        http.set_day(1)
        before = httpx.head(http.url("Sor_complete.zip"), timeout=5).headers["ETag"]
        http.set_day(0)
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        http.set_day(1)
        after = httpx.head(http.url("Sor_complete.zip"), timeout=5).headers["ETag"]
        assert after != before

    def test_the_skrs_feed_shows_the_change_from_the_next_day(
        self,
        soap: SoapSandboxServer,
        http: SandboxServer,
        target: Target,
        baseline: list[Snapshot],
    ) -> None:
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        today = feed(soap.url("skrs"), target.gln)
        assert target.new not in today and today[target.keep][1] is None

        http.set_day(1)

        tomorrow = feed(soap.url("skrs"), target.gln)
        day0, day1 = baseline[0].snapshot_date.isoformat(), baseline[1].snapshot_date.isoformat()
        assert tomorrow[target.new] == (day1, None)
        assert tomorrow[target.keep][1] == day0  # the row ends the day before
        assert soap.data.day == 1

    def test_sorls_follows_the_linked_servers_day(
        self, soap: SoapSandboxServer, http: SandboxServer, baseline: list[Snapshot]
    ) -> None:
        # SORLS carries no message types, so what it can show is the day: a unit new on day 1.
        new_unit = sorted(set(baseline[1].units) - set(baseline[0].units))[0]
        on = baseline[1].snapshot_date
        assert not sorls_finds(soap.url("sorls"), new_unit, on)
        http.set_day(1)
        assert sorls_finds(soap.url("sorls"), new_unit, on)

    def test_state_shows_the_journal_and_what_is_pending(
        self, soap: SoapSandboxServer, http: SandboxServer, target: Target
    ) -> None:
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        state = httpx.get(http.url("_sandbox/state"), timeout=5).json()["journal"]
        assert state["entries"] == 2 and state["submissions"] == 1
        assert [(e["change_id"], e["effective_day"]) for e in state["pending"]] == [
            ("c-add", 1),
            ("c-remove", 1),
        ]
        assert httpx.post(http.url("_sandbox/day/1"), timeout=30).status_code == 200
        assert http.state()["journal"]["pending"] == []

    def test_days_before_the_regenerated_one_keep_their_files_untouched(
        self, soap: SoapSandboxServer, http: SandboxServer, sandbox_dir: Path, target: Target
    ) -> None:
        day0 = sandbox_dir / "day-000"
        before = {name: (sha256(day0 / name), (day0 / name).stat().st_mtime_ns) for name in FILES}
        assert http.manifest is not None
        entry0 = http.manifest.day(0)
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        http.set_day(1)
        after = {name: (sha256(day0 / name), (day0 / name).stat().st_mtime_ns) for name in FILES}
        assert after == before
        assert http.manifest.day(0) == entry0
        assert http.manifest.day(1).sha256("Sor_complete.zip") == sha256(
            sandbox_dir / "day-001" / "Sor_complete.zip"
        )

    def test_a_regenerated_directory_equals_a_fresh_generation_with_the_same_journal(
        self, soap: SoapSandboxServer, http: SandboxServer, sandbox_dir: Path, tmp_path: Path,
        target: Target,
    ) -> None:  # fmt: skip
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))
        http.set_day(1)
        fresh = tmp_path / "fresh"
        generate(fresh, "tiny", seed=0, days=DAYS, submissions=http.journal.entries())
        assert tree_digest(sandbox_dir) == tree_digest(fresh)

    def test_a_pending_change_is_not_published_before_its_day(
        self, soap: SoapSandboxServer, http: SandboxServer, sandbox_dir: Path, target: Target
    ) -> None:
        http.set_day(1)
        receipt(submit(soap.url("sorus"), *add_and_remove(target)))  # effective on day 2
        day2 = sha256(sandbox_dir / "day-002" / "Sor_complete.zip")
        http.set_day(0)
        assert sha256(sandbox_dir / "day-002" / "Sor_complete.zip") == day2
        assert len(http.pending_submissions()) == 2
        http.set_day(2)
        assert sha256(sandbox_dir / "day-002" / "Sor_complete.zip") != day2
        assert http.pending_submissions() == []


class TestJournal:
    def test_the_journal_survives_a_server_restart(
        self, sandbox_dir: Path, target: Target, baseline: list[Snapshot]
    ) -> None:
        with SandboxServer(sandbox_dir) as http, SoapSandboxServer(files=http) as soap:
            receipt(submit(soap.url("sorus"), add_and_remove(target)[0]))
        assert (sandbox_dir / JOURNAL_NAME).is_file()
        with SandboxServer(sandbox_dir) as http, SoapSandboxServer(files=http) as soap:
            assert [e.change_id for e in http.journal.entries()] == ["c-add"]
            assert http.pending_submissions() == []  # published as the server started
            second = receipt(submit(soap.url("sorus"), add_and_remove(target)[1]))
            assert second.ticket == "SORUS-000002"
            assert len(http.pending_submissions()) == 1
            http.set_day(1)
            rows = feed(soap.url("skrs"), target.gln)
            assert target.new in rows and rows[target.keep][1] is not None
        with SandboxServer(sandbox_dir, day=1) as http:
            assert http.pending_submissions() == []
            assert len(http.journal) == 2

    def test_a_server_started_on_a_directory_behind_its_journal_catches_up(
        self, sandbox_dir: Path, target: Target, message_types: MessageTypeRegistry
    ) -> None:
        journal = SubmissionJournal.for_directory(sandbox_dir)
        journal.record([ChangeRequest("c", target.gln, "add", target.new)], received_day=0)
        SandboxServer(sandbox_dir)  # not started: construction alone publishes
        loaded = load_registry_from_dir(sandbox_dir / day_directory(1), message_types=message_types)
        assert target.new in loaded.capabilities[target.gln]

    def test_without_a_directory_the_journal_is_kept_in_memory(self) -> None:
        journal = SubmissionJournal()
        version = journal.version
        ticket, added = journal.record(
            [ChangeRequest("1", "5790000000000", "add", "FDIS91", "v1")], received_day=3
        )
        assert journal.path is None and ticket == "SORUS-000001"
        assert added[0].effective_day == 4 and added[0].version_code == "v1"
        assert journal.version != version
        assert journal.effective_by(3) == () and journal.effective_by(4) == added

    def test_an_unreadable_journal_file_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / JOURNAL_NAME).write_text("{}", encoding="utf-8")
        with pytest.raises(ValueError, match="not a readable SORUS journal"):
            SubmissionJournal.for_directory(tmp_path)


class TestStandaloneSoap:
    def test_set_day_publishes_the_in_memory_journal(
        self, target: Target, baseline: list[Snapshot]
    ) -> None:
        with SoapSandboxServer("tiny", 0, 0) as soap:
            receipt(submit(soap.url("sorus"), *add_and_remove(target)))
            assert soap.journal.path is None
            assert target.new not in feed(soap.url("skrs"), target.gln)
            soap.set_day(1)
            rows = feed(soap.url("skrs"), target.gln)
            assert rows[target.new][0] == baseline[1].snapshot_date.isoformat()
            assert soap.data.snapshot_date == baseline[1].snapshot_date


# --- the generator ------------------------------------------------------------------------------


def entry(
    gln: str, action: str, code: str, day: int = 1, version: str | None = None
) -> JournalEntry:
    return JournalEntry(
        ticket="SORUS-000001",
        change_id=f"{action}-{code}",
        gln=gln,
        action=action,
        message_type=code,
        version_code=version,
        received_day=day - 1,
        effective_day=day,
    )


class TestWorldAppliesSubmissions:
    def test_an_add_uses_the_requested_version(
        self, target: Target, message_types: MessageTypeRegistry
    ) -> None:
        versioned = next(mt for mt in message_types if len(mt.version_codes) > 1)
        oldest = versioned.version_codes[0]
        add = entry(target.gln, "add", versioned.code, 1, oldest)
        world = World("tiny", 0, message_types, submissions=[add])
        world.advance()
        assert world.snapshot().capabilities[target.gln][versioned.code] == oldest

    def test_a_remove_ends_the_row_the_day_before(
        self, target: Target, message_types: MessageTypeRegistry, baseline: list[Snapshot]
    ) -> None:
        world = World(
            "tiny", 0, message_types, submissions=[entry(target.gln, "remove", target.keep)]
        )
        world.advance()
        ended = [row for row in world.glns[target.gln].ended if row[0] == target.keep]
        assert [row[3] for row in ended] == [baseline[0].snapshot_date]
        assert world.glns[target.gln].updated_at == baseline[1].snapshot_date

    def test_a_change_for_a_gln_that_is_gone_is_skipped(
        self, message_types: MessageTypeRegistry, baseline: list[Snapshot]
    ) -> None:
        world = World(
            "tiny", 0, message_types, submissions=[entry("5790000000000", "add", "FDIS91")]
        )
        world.advance()
        assert world.snapshot().capabilities == baseline[1].capabilities

    def test_entries_for_other_days_change_nothing_yet(
        self, target: Target, message_types: MessageTypeRegistry, baseline: list[Snapshot]
    ) -> None:
        world = World(
            "tiny", 0, message_types, submissions=[entry(target.gln, "add", target.new, day=2)]
        )
        world.advance()
        assert world.snapshot().capabilities == baseline[1].capabilities


class TestGenerateWithSubmissions:
    def test_the_same_journal_gives_identical_output(self, tmp_path: Path, target: Target) -> None:
        journal = [entry(target.gln, "add", target.new), entry(target.gln, "remove", target.keep)]
        generate(tmp_path / "a", "tiny", seed=0, days=DAYS, submissions=journal)
        generate(tmp_path / "b", "tiny", seed=0, days=DAYS, submissions=journal)
        assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b")
        manifest = Manifest.load(tmp_path / "a")
        assert manifest.submissions() == tuple(journal)

    def test_without_submissions_the_manifest_has_no_sorus_list(self, sandbox_dir: Path) -> None:
        assert '"sorus"' not in (sandbox_dir / "manifest.json").read_text(encoding="utf-8")

    def test_write_from_refuses_a_directory_of_another_register(self, sandbox_dir: Path) -> None:
        with pytest.raises(ValueError, match="another register"):
            generate(sandbox_dir, "tiny", seed=1, days=DAYS, write_from=1)

    def test_write_from_refuses_earlier_submissions_the_files_lack(
        self, sandbox_dir: Path, target: Target
    ) -> None:
        with pytest.raises(ValueError, match="differ"):
            generate(
                sandbox_dir,
                "tiny",
                seed=0,
                days=DAYS,
                submissions=[entry(target.gln, "add", target.new, day=1)],
                write_from=2,
            )


# --- the command line ---------------------------------------------------------------------------


class TestSandboxServeCommand:
    def test_serves_sorus_and_an_sts_next_to_the_files(self, sandbox_dir: Path) -> None:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "soredi_sync",
                "sandbox",
                "serve",
                "--dir",
                str(sandbox_dir),
                "--port",
                "0",
                "--soap-port",
                "0",
                "--sts-port",
                "0",
            ],  # fmt: skip
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(3)]
            soap_line, sts_line, http_line = lines
            assert "SORLS" in soap_line and "SORUS" in soap_line, lines
            sorus_wsdl = soap_line.split("SORUS ")[1].strip()
            wsdl = httpx.get(sorus_wsdl, timeout=10)
            assert wsdl.status_code == 200 and "SubmitEdiTypeChanges" in wsdl.text
            assert sts_line.startswith("STS: http://127.0.0.1:") and sts_line.strip().endswith(
                "/sts"
            )
            base_url = http_line.split(" on ")[1].split(" ")[0]
            state = httpx.get(base_url + "_sandbox/state", timeout=10).json()
            assert state["journal"]["entries"] == 0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
