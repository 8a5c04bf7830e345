from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from soredi_sync.domain.model import Gln, GlnMode, Unit, UnitKind, effective_gln
from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing import sor_xml
from soredi_sync.parsing.problems import Problems
from soredi_sync.parsing.sor_xml import parse_sor_xml
from tests.support.reference import sample
from tests.support.sor_writer import V1, V2, institution, owner, wrap
from tests.support.sor_writer import sor_xml as write_sor_xml

APOTEK_OWNER, APOTEK_HI, APOTEK_OU = "306011000016003", "306021000016007", "306031000016009"
SYGEHUS = ("347801000016001", "347811000016004", "347821000016008", "347831000016005")


def parse(data: bytes) -> sor_xml.SorXml:
    return parse_sor_xml(io.BytesIO(data))


def units_by_id(data: bytes) -> dict[str, Unit]:
    return {unit.sor_id: unit for unit in parse(data).units}


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(InvalidSourceData) as caught:
        parse(data)
    return caught.value.problems or [str(caught.value)]


class TestRealSamples:
    def test_pharmacy_tree_has_owner_institution_and_unit_in_order(self) -> None:
        result = parse(sample("ONE_APOTEK"))
        assert [(u.sor_id, u.kind, u.parent_sor_id) for u in result.units] == [
            (APOTEK_OWNER, UnitKind.INSTITUTION_OWNER, None),
            (APOTEK_HI, UnitKind.HEALTH_INSTITUTION, APOTEK_OWNER),
            (APOTEK_OU, UnitKind.ORGANISATIONAL_UNIT, APOTEK_HI),
        ]
        assert {u.owner_sor_id for u in result.units} == {APOTEK_OWNER}

    def test_danish_letters_survive_the_bom_and_utf8(self) -> None:
        units = units_by_id(sample("ONE_APOTEK"))
        assert units[APOTEK_OWNER].name == "Værløse Apotek"
        assert units_by_id(sample("ONE_SYGEHUS"))[SYGEHUS[0]].name == "Roskilde Øjenklinik"

    def test_escaped_ampersand_in_a_name_is_read_as_text(self) -> None:
        assert units_by_id(sample("ONE_PRAKSIS"))["8331000016009"].name == (
            "Michael Filtenborg & co"
        )

    def test_header_gives_creation_time_and_snapshot_date(self) -> None:
        result = parse(sample("ONE_APOTEK"))
        assert result.snapshot_date == date(2010, 1, 26)
        assert result.created_at == datetime(2010, 1, 26, tzinfo=timezone(timedelta(hours=1)))
        assert result.schema_version == "1.0.0"

    def test_owner_carrying_a_gln_entity_owns_it_with_all_its_attributes(self) -> None:
        result = parse(sample("ONE_APOTEK"))
        assert result.units[0].gln_mode is GlnMode.OWN
        assert result.units[0].gln == "5790000173624"
        assert result.glns == [
            Gln(
                gln="5790000173624",
                active=True,
                only_internal=False,
                system_supplier="1001000055001",
                system_type="221000045007",
                vans="41000035001",
                region_code="1084",
                edi_administrator="106",
                owner_sor_id=APOTEK_OWNER,
                from_date=date(1995, 2, 20),
                to_date=None,
            )
        ]

    def test_pharmacy_units_inherit_the_owners_gln(self) -> None:
        units = units_by_id(sample("ONE_APOTEK"))
        assert units[APOTEK_HI].gln_mode is GlnMode.INHERITED
        assert units[APOTEK_OU].gln_mode is GlnMode.INHERITED
        found = effective_gln(units, APOTEK_OU)
        assert found.gln == "5790000173624"
        assert found.path == (APOTEK_OU, APOTEK_HI, APOTEK_OWNER)
        assert found.inherited_from == APOTEK_OWNER

    def test_pharmacy_number_type_and_postal_code_are_read(self) -> None:
        units = units_by_id(sample("ONE_APOTEK"))
        assert units[APOTEK_OU].pharmacy_number == "362,1"
        assert units[APOTEK_OWNER].type_code == "550891000005100"
        assert units[APOTEK_HI].type_code == "264372000"
        assert units[APOTEK_OWNER].postal_code == "3500"
        assert units[APOTEK_OWNER].from_date == date(1995, 2, 20)
        assert units[APOTEK_OWNER].to_date is None

    def test_practice_has_gln_5790000141227_and_a_provider_number(self) -> None:
        result = parse(sample("ONE_PRAKSIS"))
        assert [g.gln for g in result.glns] == ["5790000141227"]
        assert result.glns[0].vans == "41000035001"
        units = {u.sor_id: u for u in result.units}
        assert units["8341000016002"].provider_number == "019062"
        assert effective_gln(units, "8341000016002").gln == "5790000141227"

    def test_eye_clinic_nests_two_units_and_has_no_gln_anywhere(self) -> None:
        result = parse(sample("ONE_SYGEHUS"))
        units = {u.sor_id: u for u in result.units}
        assert [u.parent_sor_id for u in result.units] == [None, *SYGEHUS[:3]]
        assert result.glns == []
        assert units[SYGEHUS[0]].gln_mode is GlnMode.NONE  # owner without EanLocationCodeEntity
        assert all(units[s].gln_mode is GlnMode.NONE for s in SYGEHUS[1:])
        assert all(effective_gln(units, s).gln is None for s in SYGEHUS)

    def test_eye_clinic_units_carry_shak_codes_and_unit_types(self) -> None:
        units = units_by_id(sample("ONE_SYGEHUS"))
        assert [units[s].shak for s in SYGEHUS] == [None, "2529", "252901", "2529010"]
        assert units[SYGEHUS[3]].type_code == "550851000005109"
        assert units[SYGEHUS[2]].from_date == date(2009, 10, 7)

    def test_the_file_can_be_read_without_its_bom(self) -> None:
        data = sample("ONE_SYGEHUS").removeprefix(b"\xef\xbb\xbf")
        assert len(parse(data).units) == 4


class TestSchemaVersions:
    def test_v2_namespace_and_v2_spellings_are_read(self) -> None:
        gln = Gln(
            gln="5790000121441",
            system_supplier="641000055002",
            system_type="1611000045003",
            vans="81000035007",
            owner_sor_id="1001",
        )
        unit = Unit(
            sor_id="1001",
            name="Region Æ",
            kind=UnitKind.INSTITUTION_OWNER,
            parent_sor_id=None,
            owner_sor_id="1001",
            type_code="1",
            gln_mode=GlnMode.OWN,
            gln=gln.gln,
        )
        result = parse(write_sor_xml([unit], [gln], namespace=V2, v2_spellings=True))
        assert result.schema_version == "2.0.0"
        assert result.glns == [gln]
        assert result.units == [unit]

    def test_any_organisation_namespace_version_is_accepted(self) -> None:
        data = wrap(owner(), namespace="urn:oio:sundhedsstyrelsen:organisation:3.0.0")
        assert [u.sor_id for u in parse(data).units] == ["1001"]

    def test_elements_are_matched_by_local_name_whatever_the_prefix(self) -> None:
        data = (
            b'<s:SorTree xmlns:s="urn:oio:sundhedsstyrelsen:organisation:2.0.0">'
            b"<s:InstitutionOwnerEntity><s:InstitutionOwner><s:SorIdentifier>7</s:SorIdentifier>"
            b"<s:EntityName>X</s:EntityName></s:InstitutionOwner></s:InstitutionOwnerEntity>"
            b"</s:SorTree>"
        )
        assert [u.sor_id for u in parse(data).units] == ["7"]

    def test_unit_owning_a_gln_through_optional_ean_location_code(self) -> None:
        ean = (
            "<EanLocationCodeEntity><EanLocationCode>5790000121786</EanLocationCode>"
            "<OnlyInternalIndicator>true</OnlyInternalIndicator>"
            "<NonActiveIndicator>true</NonActiveIndicator>"
            "<SorStatus><FromDate>2020-01-01</FromDate><ToDate>2024-12-31</ToDate>"
            "<FirstFromDate>2020-01-01</FirstFromDate></SorStatus></EanLocationCodeEntity>"
        )
        result = parse(wrap(owner(inner=institution(optional=ean))))
        assert result.units[1].gln_mode is GlnMode.OWN
        assert result.units[1].gln == "5790000121786"
        [gln] = result.glns
        assert (gln.owner_sor_id, gln.active, gln.only_internal) == ("2001", False, True)
        assert (gln.from_date, gln.to_date) == (date(2020, 1, 1), date(2024, 12, 31))
        # The GLN's own SorStatus is not the unit's.
        assert result.units[1].to_date is None

    def test_sor_identifiers_in_replaces_collections_are_not_the_units_own(self) -> None:
        extra = (
            "<ReplacesEntityCollection><SorIdentifier>999</SorIdentifier>"
            "</ReplacesEntityCollection>"
        )
        # The collection comes after SorStatus, as in the XSD.
        body = owner(inner=institution()).replace(
            "</HealthInstitution>", extra + "</HealthInstitution>"
        )
        assert [u.sor_id for u in parse(wrap(body)).units] == ["1001", "2001"]

    def test_whitespace_inside_a_value_is_kept_and_around_it_is_not(self) -> None:
        # The reader lets libxml2 drop indentation between elements; values read the same.
        body = owner(inner=institution()).replace(
            "<EntityName>Region</EntityName>",
            "\n  <EntityName>\n   Region  Nord\t</EntityName>\n  ",
        )
        body = body.replace("<EntityName>Sygehus</EntityName>", "<EntityName>  </EntityName>")
        data = wrap(body)
        problems = Problems()
        result = parse_sor_xml(io.BytesIO(data), problems)
        assert result.units[0].name == "Region  Nord"
        assert [p.split(": ", 1)[1] for p in problems] == [
            "HealthInstitution 2001 has no EntityName"
        ]

    def test_repeated_values_are_one_string_object(self) -> None:
        body = "".join(owner(str(1000 + n), institution(str(2000 + n))) for n in range(3))
        units = parse(wrap(body)).units
        assert len({id(u.type_code) for u in units if u.kind is UnitKind.INSTITUTION_OWNER}) == 1
        assert len({id(u.name) for u in units if u.kind is UnitKind.HEALTH_INSTITUTION}) == 1

    def test_iso_8859_1_is_read_when_declared(self) -> None:
        data = (
            wrap(owner())
            .replace(b"UTF-8", b"ISO-8859-1")
            .replace(b"Region", "Århus".encode("latin-1"))
        )
        assert parse(data).units[0].name == "Århus"


class TestHostileXml:
    def test_billion_laughs_is_refused_without_expansion(self) -> None:
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">'
            for i in range(1, 10)
        )
        data = wrap(owner().replace("Region", "&lol9;"), prolog=f"<!DOCTYPE SorTree [{entities}]>")
        with pytest.raises(InvalidSourceData, match="DOCTYPE"):
            parse(data)

    def test_a_plain_doctype_is_refused_too(self) -> None:
        with pytest.raises(InvalidSourceData, match="DOCTYPE"):
            parse(wrap(owner(), prolog="<!DOCTYPE SorTree>"))

    def test_external_file_entity_is_never_read(self, tmp_path: Path) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET")
        prolog = f'<!DOCTYPE SorTree [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        with pytest.raises(InvalidSourceData) as caught:
            parse(wrap(owner().replace("Region", "&xxe;"), prolog=prolog))
        assert "TOP-SECRET" not in str(caught.value)

    def test_tree_is_cleared_while_streaming(self, monkeypatch: pytest.MonkeyPatch) -> None:
        contexts: list[Any] = []
        real_iterparse = etree.iterparse

        def recording_iterparse(*args: Any, **kwargs: Any) -> Any:
            contexts.append(real_iterparse(*args, **kwargs))
            return contexts[-1]

        monkeypatch.setattr(etree, "iterparse", recording_iterparse)
        ous = "".join(
            f"<OrganizationalUnitEntity><OrganizationalUnit><SorIdentifier>{3000 + n}"
            "</SorIdentifier><EntityName>Afsnit</EntityName><OptionalEanLocationCode>"
            "<EntityInheritedIndicator>true</EntityInheritedIndicator></OptionalEanLocationCode>"
            "</OrganizationalUnit></OrganizationalUnitEntity>"
            for n in range(300)
        )
        body = "".join(
            owner(str(1000 + n), institution(str(2000 + n), ous if n == 0 else ""))
            for n in range(50)
        )
        result = parse(wrap(body))
        assert len(result.units) == 400
        root = contexts[0].root
        # What is left: the header elements and the last, emptied owner entity.
        assert sum(1 for _ in root.iter()) <= 5


class TestBrokenXml:
    def test_truncated_file_names_the_line(self) -> None:
        data = sample("ONE_SYGEHUS")
        with pytest.raises(InvalidSourceData, match=r"not well-formed XML \(line \d+\)"):
            parse(data[: len(data) // 2])

    def test_empty_file_is_refused(self) -> None:
        with pytest.raises(InvalidSourceData, match="not well-formed"):
            parse(b"")

    @pytest.mark.parametrize(
        "data",
        [
            b'<Organisation xmlns="urn:oio:sundhedsstyrelsen:organisation:1.0.0"/>',
            b'<Wrapper><SorTree xmlns="urn:oio:sundhedsstyrelsen:organisation:1.0.0"/></Wrapper>',
        ],
        ids=["other-root", "sortree-not-at-root"],
    )
    def test_wrong_root_is_refused(self, data: bytes) -> None:
        with pytest.raises(InvalidSourceData, match="expected 'SorTree'"):
            parse(data)

    @pytest.mark.parametrize("namespace", ["urn:example:other", ""])
    def test_foreign_or_missing_namespace_is_refused(self, namespace: str) -> None:
        data = wrap(owner()).replace(f'xmlns="{V1}"'.encode(), f'xmlns="{namespace}"'.encode())
        with pytest.raises(InvalidSourceData, match="namespace"):
            parse(data)

    def test_undeclared_latin1_bytes_are_refused(self) -> None:
        data = wrap(owner()).replace(b"Region", "Århus".encode("latin-1"))
        with pytest.raises(InvalidSourceData, match="not well-formed"):
            parse(data)

    def test_missing_sor_identifier_names_element_and_line(self) -> None:
        data = wrap(owner(inner=institution()).replace("<SorIdentifier>2001</SorIdentifier>", ""))
        [problem] = problems_of(data)
        assert "HealthInstitution has no SorIdentifier" in problem
        assert "line 1" in problem

    def test_bad_boolean_names_the_unit_and_element(self) -> None:
        data = wrap(
            owner(
                inner=institution(
                    optional="<EntityInheritedIndicator>yes</EntityInheritedIndicator>"
                )
            )
        )
        [problem] = problems_of(data)
        assert "HealthInstitution 2001" in problem
        assert "EntityInheritedIndicator" in problem and "'yes'" in problem

    def test_bad_date_names_the_unit(self) -> None:
        data = wrap(owner("1001").replace("2001-01-01</FromDate>", "2001-13-45</FromDate>"))
        [problem] = problems_of(data)
        assert "InstitutionOwner 1001" in problem and "FromDate" in problem

    def test_non_numeric_sor_identifier_is_refused(self) -> None:
        [problem] = problems_of(wrap(owner("12AB")))
        assert "'12AB'" in problem

    def test_gln_entity_without_a_code_is_refused(self) -> None:
        data = wrap(
            owner(
                extra="<EanLocationCodeEntity><NonActiveIndicator>false</NonActiveIndicator></EanLocationCodeEntity>"
            )
        )
        [problem] = problems_of(data)
        assert "EanLocationCodeEntity of unit 1001 has no EanLocationCode" in problem

    def test_misplaced_entity_is_refused(self) -> None:
        data = wrap(institution())
        assert any("HealthInstitutionEntity inside SorTree" in p for p in problems_of(data))

    def test_every_problem_is_reported_not_only_the_first(self) -> None:
        body = owner("1001").replace("2001-01-01</FromDate>", "x</FromDate>") + owner(
            "1002",
            inner=institution(optional="<EntityInheritedIndicator>nej</EntityInheritedIndicator>"),
        )
        problems = Problems()
        result = parse_sor_xml(io.BytesIO(wrap(body)), problems)
        assert len(problems) == 2
        assert [u.sor_id for u in result.units] == ["1001", "1002", "2001"]

    def test_descendants_of_an_unreadable_unit_are_not_emitted(self) -> None:
        body = owner("1001", inner=institution()).replace("<SorIdentifier>1001</SorIdentifier>", "")
        problems = Problems()
        result = parse_sor_xml(io.BytesIO(wrap(body)), problems)
        assert result.units == []
        assert len(problems) == 1
