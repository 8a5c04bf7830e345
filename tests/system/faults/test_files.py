"""Faults in what the source publishes: day 1's files arrive whole over HTTP but are broken,
hostile or implausible. The run fails or is refused with the reason; day 0 stays served."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from soredi_sync.db.models import SyncRun
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.audit import run_audit
from tests.support.faults import breakers
from tests.support.faults.invariants import DATA_TABLES, LastGood
from tests.support.faults.report import Case

FAILED, REFUSED = RunStatus.FAILED, RunStatus.REFUSED

BROKEN = [
    pytest.param(
        Case("truncated zip", "sor.zip cut to half its size when published (served whole)"),
        breakers.truncate_zip,
        FAILED,
        ("sor.zip is not a readable zip archive",),
        id="truncated-zip",
    ),
    pytest.param(
        Case("zip bomb", "Sor.xml + 20 MB of blanks, packed 470:1 (limit 200:1)"),
        breakers.zip_bomb,
        FAILED,
        ("refused as a possible zip bomb",),
        id="zip-bomb",
    ),
    pytest.param(
        Case(
            "zip bomb, lying header",
            "the same bomb, its zip headers claiming 1,000 bytes unpacked",
        ),
        breakers.zip_bomb_with_lying_header,
        FAILED,
        ("sor.zip:Sor.xml is corrupt",),
        id="zip-bomb-lying-header",
    ),
    pytest.param(
        Case("corrupt XML", "Sor.xml cut off at 60 %, mid-element (zipped whole)"),
        breakers.cut_xml,
        FAILED,
        ("not well-formed XML",),
        id="corrupt-xml",
    ),
    pytest.param(
        Case(
            "XXE",
            "DOCTYPE with an external entity naming a local file, used in a unit's name",
        ),
        breakers.xxe,
        FAILED,
        ("DOCTYPE",),
        id="xxe",
    ),
    pytest.param(
        Case(
            "entity expansion",
            'DOCTYPE with the "billion laughs" (10 levels of 10-fold entities) in a unit name',
        ),
        breakers.billion_laughs,
        FAILED,
        ("DOCTYPE",),
        id="billion-laughs",
    ),
    pytest.param(
        Case("wrong encoding (XML)", "Sor.xml in ISO-8859-1 while declaring UTF-8"),
        breakers.latin1_xml,
        FAILED,
        ("not well-formed XML",),
        id="xml-latin1",
    ),
    pytest.param(
        Case("wrong encoding (CSV)", "LocationsCodes.csv in UTF-16 instead of UTF-8"),
        breakers.utf16_csv,
        FAILED,
        ("LocationsCodes.csv is not valid utf-8-sig text",),
        id="csv-utf16",
    ),
    pytest.param(
        Case("empty file (download)", "sor.zip served with 0 bytes"),
        breakers.empty_download,
        FAILED,
        ("sor.zip is not a readable zip archive",),
        id="empty-download",
    ),
    pytest.param(
        Case("empty file (member)", "Sor.xml inside sor.zip has 0 bytes"),
        breakers.empty_member,
        FAILED,
        ("Sor.xml is empty",),
        id="empty-member",
    ),
    pytest.param(
        Case(
            "empty file (rows)",
            "LocationsCodeEDITypeMap.csv with its header and no rows",
        ),
        breakers.header_only_capabilities,
        REFUSED,
        ("GLN message types", "would be removed", "--accept-mass-change"),
        id="header-only-csv",
    ),
    pytest.param(
        Case("duplicate GLN (Sor.xml)", "a second unit carries the first unit's GLN as its own"),
        breakers.gln_owned_twice,
        FAILED,
        ("is owned by 2 units",),
        id="gln-owned-twice",
    ),
    pytest.param(
        Case(
            "cycle in the unit tree",
            "an organisational unit nested inside itself (same SOR-ID as its own child)",
        ),
        breakers.unit_nested_in_itself,
        FAILED,
        ("is used twice",),
        id="unit-cycle",
    ),
    pytest.param(
        Case("50 % of GLNs gone", "every second GLN removed from Sor.xml and both CSV files"),
        breakers.remove_half_the_glns,
        REFUSED,
        ("GLNs", "would be removed, limit 5%", "--accept-mass-change"),
        id="half-the-glns-gone",
    ),
]


class TestBrokenFiles:
    @pytest.mark.parametrize(("case", "breaker", "status", "reasons"), BROKEN)
    def test_a_broken_day_is_not_stored_and_the_last_good_snapshot_stays_served(
        self,
        last_good: LastGood,
        day1: Path,
        case: Case,
        breaker: Callable[[Path], object],
        status: RunStatus,
        reasons: tuple[str, ...],
    ) -> None:
        breaker(day1)
        outcome = last_good.sync()
        last_good.assert_kept(
            case, status, *reasons, run_id=outcome.run_id, did="day 0 kept and served"
        )

    def test_an_external_entity_is_never_read_into_the_database(
        self, last_good: LastGood, day1: Path
    ) -> None:
        breakers.xxe(day1)
        outcome = last_good.sync()
        assert outcome.status is RunStatus.FAILED
        with last_good.app.engine.connect() as conn:
            for model in (SyncRun, *DATA_TABLES):
                for row in conn.execute(select(model.__table__)):
                    assert breakers.SECRET not in repr(tuple(row)), (model.__tablename__, row)

    def test_a_gln_listed_twice_in_the_csv_with_contradicting_values_fails_the_run(
        self, last_good: LastGood, day1: Path
    ) -> None:
        case = Case(
            "duplicate GLN (LocationsCodes.csv)",
            "a GLN only the CSV knows, on two rows of LocationsCodes.csv; the second row "
            "inactive with another VANS",
        )
        gln = breakers.gln_listed_twice_in_csv(day1)
        outcome = last_good.sync()
        record = last_good.begin(case)
        if outcome.snapshot is not None and outcome.snapshot.id != last_good.snapshot.id:
            with last_good.app.uow() as uow:
                stored = uow.registry.load_registry(outcome.snapshot.id).glns[gln]
            record.did = (
                f"stored snapshot {outcome.snapshot.id} with GLN {gln} as "
                f"{'active' if stored.active else 'inactive'}, VANS {stored.vans}: the last row "
                "won, the other was dropped without a word"
            )
            record.data_lost = "one of two contradicting rows, silently (bug)"
        last_good.assert_kept(case, RunStatus.FAILED, "is listed again", run_id=outcome.run_id)


class TestAcceptedOddities:
    def test_a_new_gln_with_a_bad_check_digit_is_stored_and_reported_by_the_audit(
        self, last_good: LastGood, day1: Path
    ) -> None:
        # By design (parsing/validate.py): such GLNs exist in the real register, so refusing
        # them would refuse every pull; the audit's BAD_CHECK_DIGIT rule reports them.
        case = Case("bad check digit", "a new GLN whose 13th digit is not its GS1 check digit")
        record = last_good.begin(case)
        gln = breakers.add_gln_with_bad_check_digit(day1)
        outcome = last_good.sync()
        assert outcome.status is RunStatus.SUCCEEDED, outcome.error
        assert outcome.snapshot is not None
        with last_good.app.uow() as uow:
            registry = uow.registry.load_registry(outcome.snapshot.id)
            report = run_audit(uow, last_good.app.reference.audit_context)
        assert gln in registry.glns
        flagged = [f.gln for f in report.by_code()["BAD_CHECK_DIGIT"]]
        assert gln in flagged
        last_good.assert_served(outcome.snapshot.id)
        record.status = outcome.status.value
        record.reason = "(accepted by design)"
        record.did = (
            f"stored as snapshot {outcome.snapshot.id}; the audit lists it under BAD_CHECK_DIGIT"
        )
        record.data_lost = "none"
