from __future__ import annotations

import io
from datetime import date

import pytest

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Capability, Gln
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing.csv_columns import unguard
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.sor_csv import parse_edi_types, parse_gln_edi_types, parse_glns
from soredi_sync.reference_data import CsvColumns

EDI_TYPES = "\ufeffEDITypeId;StandardId;VersionCode;Name\r\n"
MAP = "LocationCode;EDITypeId;FromDate;ToDate\r\n"
GLNS = (
    "LocationCode;SorIdentifier;NonActiveIndicator;OnlyInternalIndicator;SystemSupplier;"
    "SystemType;CommunicationSupplier;RegionCode;EdiAdministrator;FromDate;ToDate\r\n"
)
KNOWN = {"1": ("XDIS91", "XD9134L"), "2": ("FDIS91", None)}


def stream(text: str, encoding: str = "utf-8") -> io.BytesIO:
    return io.BytesIO(text.encode(encoding))


class TestEdiTypes:
    def test_header_names_come_from_the_config(self, columns: CsvColumns) -> None:
        text = EDI_TYPES + "1;XDIS91;XD9134L;Korrespondance\r\n2;FDIS91;;CareCommunication\r\n"
        assert parse_edi_types(stream(text), columns) == KNOWN

    def test_other_header_names_follow_a_different_mapping(self, columns: CsvColumns) -> None:
        renamed = columns.model_copy(
            update={
                "delimiter": ",",
                "edi_types": {"id": "Id", "message_type": "Standard", "version_code": "Version"},
            }
        )
        text = "Version,Standard,Id\nXD9134L,XDIS91,7\n"
        assert parse_edi_types(stream(text), renamed) == {"7": ("XDIS91", "XD9134L")}

    def test_headers_match_whatever_their_case_and_spacing(self, columns: CsvColumns) -> None:
        text = " editypeid ;STANDARDID;versioncode\r\n1;XDIS91;XD9134L\r\n"
        assert parse_edi_types(stream(text), columns) == {"1": ("XDIS91", "XD9134L")}

    def test_missing_header_lists_expected_and_found(self, columns: CsvColumns) -> None:
        text = "EDITypeId;Standard;VersionCode\r\n1;XDIS91;XD9134L\r\n"
        with pytest.raises(InvalidSourceData) as caught:
            parse_edi_types(stream(text), columns)
        message = str(caught.value)
        assert "lacks required column(s) 'StandardId'" in message
        assert "expected headers: EDITypeId, StandardId, VersionCode" in message
        assert "found headers: EDITypeId, Standard, VersionCode" in message

    def test_empty_file_is_refused(self, columns: CsvColumns) -> None:
        with pytest.raises(InvalidSourceData, match="no header"):
            parse_edi_types(stream(""), columns)

    def test_message_type_is_found_from_a_known_version_code(
        self, columns: CsvColumns, message_types: MessageTypeRegistry
    ) -> None:
        text = EDI_TYPES + "1;;XD9134L;\r\n"
        assert parse_edi_types(stream(text), columns, message_types) == {"1": ("XDIS91", "XD9134L")}

    def test_no_message_type_and_no_registry_is_a_problem(self, columns: CsvColumns) -> None:
        with pytest.raises(InvalidSourceData, match="EDI type '1' has no message type"):
            parse_edi_types(stream(EDI_TYPES + "1;;XD9134L;\r\n"), columns)

    def test_an_id_listed_twice_is_a_problem(self, columns: CsvColumns) -> None:
        text = EDI_TYPES + "1;XDIS91;XD9134L;\r\n1;DIS91;D9134L;\r\n"
        with pytest.raises(InvalidSourceData, match="'1' is listed again"):
            parse_edi_types(stream(text), columns)

    def test_text_in_another_encoding_is_refused(self, columns: CsvColumns) -> None:
        text = EDI_TYPES.lstrip("\ufeff") + "1;XDIS91;XD9134L;Sundhedsvæsen\r\n"
        with pytest.raises(InvalidSourceData, match="not valid utf-8-sig text"):
            parse_edi_types(stream(text, "latin-1"), columns)

    def test_the_callers_stream_is_left_open(self, columns: CsvColumns) -> None:
        source = stream(EDI_TYPES + "1;XDIS91;XD9134L;\r\n")
        parse_edi_types(source, columns)
        assert not source.closed


class TestGlnEdiTypes:
    def read(
        self, text: str, columns: CsvColumns, as_of: date | None = date(2025, 6, 1)
    ) -> list[Capability]:
        return list(parse_gln_edi_types(stream(text), columns, KNOWN, as_of))

    def test_rows_join_to_the_edi_types(self, columns: CsvColumns) -> None:
        text = MAP + "5790000121441;1;2010-01-01;\r\n5790000121441;2;;\r\n"
        assert self.read(text, columns) == [
            Capability("5790000121441", "XDIS91", "XD9134L"),
            Capability("5790000121441", "FDIS91", None),
        ]

    def test_rows_closed_before_the_snapshot_date_are_dropped(self, columns: CsvColumns) -> None:
        text = (
            MAP + "5790000121441;1;2010-01-01;2025-05-31\r\n"
            "5790000121441;2;2010-01-01;2025-06-01\r\n"
        )
        assert [c.message_type for c in self.read(text, columns)] == ["FDIS91"]

    def test_without_a_snapshot_date_closed_rows_are_kept(self, columns: CsvColumns) -> None:
        text = MAP + "5790000121441;1;2010-01-01;2012-01-01\r\n"
        assert len(self.read(text, columns, as_of=None)) == 1

    def test_date_columns_are_optional(self, columns: CsvColumns) -> None:
        text = "LocationCode;EDITypeId\r\n5790000121441;1\r\n"
        assert self.read(text, columns) == [Capability("5790000121441", "XDIS91", "XD9134L")]

    def test_unknown_edi_type_is_collected_with_its_row_count(self, columns: CsvColumns) -> None:
        text = MAP + "5790000121441;99;;\r\n5790000121442;99;;\r\n5790000121441;1;;\r\n"
        problems = Problems()
        capabilities = list(
            parse_gln_edi_types(stream(text), columns, KNOWN, None, problems=problems)
        )
        assert len(capabilities) == 1
        assert list(problems) == [
            "LocationsCodeEDITypeMap.csv: EDI type id '99' is not in EDITypes.csv "
            "(2 row(s), first at line 2)"
        ]

    def test_unknown_edi_type_raises_after_the_last_row_without_a_collector(
        self, columns: CsvColumns
    ) -> None:
        with pytest.raises(InvalidSourceData, match="'99' is not in EDITypes.csv"):
            self.read(MAP + "5790000121441;99;;\r\n", columns)

    def test_a_closed_row_naming_a_retired_edi_type_is_history_not_an_error(
        self, columns: CsvColumns
    ) -> None:
        text = MAP + "5790000121441;99;2001-01-01;2002-01-01\r\n5790000121441;1;;\r\n"
        assert [c.message_type for c in self.read(text, columns)] == ["XDIS91"]

    def test_bad_date_names_line_and_gln(self, columns: CsvColumns) -> None:
        with pytest.raises(InvalidSourceData, match="line 2: GLN 5790000121441: to_date"):
            self.read(MAP + "5790000121441;1;;31-12-2024\r\n", columns)

    def test_short_row_is_a_problem(self, columns: CsvColumns) -> None:
        with pytest.raises(InvalidSourceData, match="line 2: 1 field"):
            self.read(MAP + "5790000121441\r\n", columns)

    def test_blank_lines_are_skipped(self, columns: CsvColumns) -> None:
        text = MAP + "\r\n5790000121441;1;;\r\n\r\n"
        assert len(self.read(text, columns)) == 1

    def test_quoted_fields_with_the_delimiter_are_read(self, columns: CsvColumns) -> None:
        text = 'LocationCode;EDITypeId\r\n"5790000121441";"1"\r\n'
        assert len(self.read(text, columns)) == 1


class TestGlns:
    ROW = "5790000121786;328051000016008;false;false;;;41000035001;1084;116;2001-01-01;\r\n"

    def test_a_gln_listed_twice_with_the_same_values_is_read_once(
        self, columns: CsvColumns
    ) -> None:
        records = list(parse_glns(stream(GLNS + self.ROW + self.ROW), columns))
        assert [r.gln for r in records] == ["5790000121786"]

    def test_a_gln_listed_twice_with_different_values_is_a_problem(
        self, columns: CsvColumns
    ) -> None:
        other = self.ROW.replace(";false;false;", ";true;false;").replace("41000035001", "7")
        with pytest.raises(InvalidSourceData) as raised:
            list(parse_glns(stream(GLNS + self.ROW + other), columns))
        problem = str(raised.value)
        assert "GLN 5790000121786 is listed again (first on line 2)" in problem
        assert "active" in problem and "vans" in problem and "both in force" in problem

    def test_an_ended_row_is_history_and_gives_way_to_the_row_in_force(
        self, columns: CsvColumns
    ) -> None:
        ended = self.ROW.replace("41000035001", "7").replace("2001-01-01;", "1999-01-01;2001-01-01")
        for text in (GLNS + ended + self.ROW, GLNS + self.ROW + ended):
            (record,) = parse_glns(stream(text), columns, as_of=date(2025, 6, 1))
            assert record.vans == "41000035001" and record.to_date is None

    def test_a_row_ending_after_the_snapshot_date_is_still_in_force(
        self, columns: CsvColumns
    ) -> None:
        later = self.ROW.replace("41000035001", "7").replace("2001-01-01;", "2001-01-01;2030-01-01")
        with pytest.raises(InvalidSourceData, match="both in force"):
            list(parse_glns(stream(GLNS + self.ROW + later), columns, as_of=date(2025, 6, 1)))

    def test_with_only_ended_rows_the_latest_ending_stands_for_the_closed_gln(
        self, columns: CsvColumns
    ) -> None:
        first = self.ROW.replace("41000035001", "7").replace("2001-01-01;", "1990-01-01;2000-01-01")
        last = self.ROW.replace("2001-01-01;", "2000-01-01;2010-01-01")
        (record,) = parse_glns(stream(GLNS + last + first), columns, as_of=date(2025, 6, 1))
        assert record.vans == "41000035001" and record.to_date == date(2010, 1, 1)

    def test_rows_become_gln_records(self, columns: CsvColumns) -> None:
        text = GLNS + (
            "5790000121786;328051000016008;false;true;641000055002;1611000045003;41000035001;"
            "1084;116;2001-01-01;\r\n"
        )
        assert list(parse_glns(stream(text), columns)) == [
            Gln(
                gln="5790000121786",
                active=True,
                only_internal=True,
                system_supplier="641000055002",
                system_type="1611000045003",
                vans="41000035001",
                region_code="1084",
                edi_administrator="116",
                owner_sor_id="328051000016008",
                from_date=date(2001, 1, 1),
                to_date=None,
            )
        ]

    @pytest.mark.parametrize(
        ("value", "active"),
        [("true", False), ("FALSE", True), ("1", False), ("0", True), ("Ja", False), ("nej", True)],
    )
    def test_booleans_in_every_accepted_spelling(
        self, columns: CsvColumns, value: str, active: bool
    ) -> None:
        text = GLNS + f"5790000121786;;{value};false;;;;;;;\r\n"
        [gln] = parse_glns(stream(text), columns)
        assert gln.active is active

    def test_bad_boolean_names_line_gln_and_column(self, columns: CsvColumns) -> None:
        text = GLNS + "5790000121786;;maybe;false;;;;;;;\r\n"
        with pytest.raises(InvalidSourceData) as caught:
            list(parse_glns(stream(text), columns))
        assert caught.value.problems == [
            "LocationsCodes.csv line 2: GLN 5790000121786: non_active 'maybe' is not a boolean"
        ]

    def test_sor_id_and_date_columns_are_optional(self, columns: CsvColumns) -> None:
        text = (
            "LocationCode;NonActiveIndicator;OnlyInternalIndicator;SystemSupplier;SystemType;"
            "CommunicationSupplier;RegionCode;EdiAdministrator\r\n"
            "5790000121786;true;false;;;81000035007;;\r\n"
        )
        [gln] = parse_glns(stream(text), columns)
        assert (gln.owner_sor_id, gln.vans, gln.active, gln.from_date) == (
            None,
            "81000035007",
            False,
            None,
        )

    def test_missing_required_header_is_refused(self, columns: CsvColumns) -> None:
        text = "LocationCode;SorIdentifier\r\n5790000121786;1\r\n"
        with pytest.raises(InvalidSourceData, match="'NonActiveIndicator'"):
            list(parse_glns(stream(text), columns))

    def test_empty_values_are_none(self, columns: CsvColumns) -> None:
        [gln] = parse_glns(stream(GLNS + "5790000121786;;;;;;;;;;\r\n"), columns)
        assert gln == Gln(gln="5790000121786")


# The headers third-party parsers of the real SOR2 files use (DOMAIN.md §2), and the v2
# spellings of the supplier fields.
GLNS_SOR2_STYLE = (
    "EanLocationCode;SorId;NonActiveIndicator;OnlyInternalIndicator;SystemSupplierIdentifier;"
    "SystemTypeIdentifier;CommunicationSupplierIdentifier;RegionCode;EdiAdministrator;"
    "FromDate;ToDate\r\n"
)
AALBORG = Gln(
    gln="5790000121786",
    active=True,
    only_internal=False,
    system_supplier="641000055002",
    system_type="1611000045003",
    vans="41000035001",
    region_code="1081",
    edi_administrator="116",
    owner_sor_id="328051000016008",
    from_date=date(2001, 1, 1),
)
AALBORG_ROW = (
    "5790000121786;328051000016008;false;false;641000055002;1611000045003;41000035001;1081;116;"
    "2001-01-01;\r\n"
)


class TestHeaderAliases:
    def test_a_file_with_sor_id_style_headers_reads_as_the_configured_ones(
        self, columns: CsvColumns
    ) -> None:
        assert list(parse_glns(stream(GLNS_SOR2_STYLE + AALBORG_ROW), columns)) == [AALBORG]

    def test_the_map_accepts_ean_location_code_for_the_gln(self, columns: CsvColumns) -> None:
        text = "EanLocationCode;EDITypeId\r\n5790000121786;2\r\n"
        assert list(parse_gln_edi_types(stream(text), columns, KNOWN)) == [
            Capability("5790000121786", "FDIS91", None)
        ]

    def test_the_header_used_for_each_column_is_reported_per_file(
        self, columns: CsvColumns
    ) -> None:
        report: dict[str, dict[str, object]] = {}
        list(parse_glns(stream(GLNS_SOR2_STYLE + AALBORG_ROW), columns, headers=report))
        used = report["LocationsCodes.csv"]["headers"]
        assert used == {
            "gln": "EanLocationCode",
            "sor_id": "SorId",
            "non_active": "NonActiveIndicator",
            "only_internal": "OnlyInternalIndicator",
            "system_supplier": "SystemSupplierIdentifier",
            "system_type": "SystemTypeIdentifier",
            "vans": "CommunicationSupplierIdentifier",
            "region_code": "RegionCode",
            "edi_administrator": "EdiAdministrator",
            "from_date": "FromDate",
            "to_date": "ToDate",
        }

    def test_with_two_accepted_names_in_one_file_the_first_listed_wins(
        self, columns: CsvColumns
    ) -> None:
        text = "EanLocationCode;LocationCode;EDITypeId\r\n5790000000001;5790000121786;2\r\n"
        report: dict[str, dict[str, object]] = {}
        capabilities = list(parse_gln_edi_types(stream(text), columns, KNOWN, headers=report))
        assert [c.gln for c in capabilities] == ["5790000121786"]  # LocationCode is listed first
        assert report["LocationsCodeEDITypeMap.csv"]["headers"] == {
            "gln": "LocationCode",
            "edi_type_id": "EDITypeId",
        }

    def test_a_column_under_none_of_its_names_fails_with_every_name_and_what_was_found(
        self, columns: CsvColumns
    ) -> None:
        text = "GlnNumber;EDITypeId\r\n5790000121786;2\r\n"
        with pytest.raises(InvalidSourceData) as caught:
            list(parse_gln_edi_types(stream(text), columns, KNOWN))
        assert str(caught.value).startswith(
            "LocationsCodeEDITypeMap.csv lacks required column(s) "
            "'LocationCode (or EanLocationCode)'"
        )
        assert caught.value.problems == [
            "expected headers: LocationCode (or EanLocationCode), EDITypeId "
            "(optional: FromDate, ToDate)",
            "found headers: GlnNumber, EDITypeId",
            "header names come from [gln_edi_types] in config/csv-columns.toml",
        ]

    def test_aliases_are_given_as_lists_and_the_first_name_is_the_column(self) -> None:
        columns = CsvColumns(
            edi_types={"id": "Id", "message_type": "Code", "version_code": "Version"},
            gln_edi_types={"gln": ["Gln", "GlnCode"], "edi_type_id": "Type"},
            glns={"gln": "Gln"},
        )
        assert columns.gln_edi_types == {"gln": "Gln", "edi_type_id": "Type"}
        assert columns.names("gln_edi_types", "gln") == ("Gln", "GlnCode")
        assert columns.names("gln_edi_types", "edi_type_id") == ("Type",)

    def test_a_copy_that_renames_a_column_does_not_keep_the_old_names_aliases(
        self, columns: CsvColumns
    ) -> None:
        renamed = columns.model_copy(
            update={"gln_edi_types": {**columns.gln_edi_types, "gln": "Gln"}}
        )
        assert renamed.names("gln_edi_types", "gln") == ("Gln",)

    def test_an_empty_list_of_names_is_refused(self) -> None:
        with pytest.raises(ValueError, match=r"\[glns\] gln: give a header name"):
            CsvColumns(edi_types={}, gln_edi_types={}, glns={"gln": []})


class TestExcelGuards:
    @pytest.mark.parametrize(
        ("raw", "value"),
        [
            ('="5790000121786"', "5790000121786"),
            ('=""', ""),
            ("5790000121786", "5790000121786"),
            ('="5790000121786', '="5790000121786'),  # not the exact form: left alone
            ("=5790000121786", "=5790000121786"),
            ('"="x""', '"="x""'),
        ],
    )
    def test_only_the_exact_form_is_unwrapped(self, raw: str, value: str) -> None:
        assert unguard(raw) == value

    def test_guarded_values_of_the_gln_file_are_read_as_what_they_guard(
        self, columns: CsvColumns
    ) -> None:
        row = ";".join(f'="{v}"' for v in AALBORG_ROW.rstrip("\r\n").split(";") if v) + ";\r\n"
        report: dict[str, dict[str, object]] = {}
        assert list(parse_glns(stream(GLNS_SOR2_STYLE + row), columns, headers=report)) == [AALBORG]
        assert report["LocationsCodes.csv"]["excel_guards"] == 10

    def test_a_guard_quoted_by_the_csv_writer_is_unwrapped_too(self, columns: CsvColumns) -> None:
        text = MAP + '"=""5790000121786""";="2";="2025-01-01";\r\n'
        assert list(parse_gln_edi_types(stream(text), columns, KNOWN)) == [
            Capability("5790000121786", "FDIS91", None)
        ]

    def test_guarded_dates_are_dates(self, columns: CsvColumns) -> None:
        text = MAP + '5790000121786;1;="2020-01-01";="2025-01-01"\r\n'
        assert list(parse_gln_edi_types(stream(text), columns, KNOWN, as_of=date(2025, 6, 1))) == []

    def test_guarded_edi_types_are_read(self, columns: CsvColumns) -> None:
        text = EDI_TYPES + '="1";="XDIS91";="XD9134L";Korrespondance\r\n2;FDIS91;;Care\r\n'
        assert parse_edi_types(stream(text), columns) == KNOWN
