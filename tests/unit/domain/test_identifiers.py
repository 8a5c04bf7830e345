"""Reading a receiver's identifiers: systems as rules, values checked for their kind."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from soredi_sync.domain.identifiers import (
    GLN_SYSTEMS,
    LEGACY_GLN_SYSTEM,
    SOR_ID_SYSTEM,
    IdentifierKind,
    IdentifierSource,
    ReceiverIdentifier,
    SystemSpelling,
    classify_system,
    read_identifier,
    sor_id_from_endpoint,
)

GLN = "5790000209354"
SOR_ID = "265161000016000"


def _org(system: str | None, value: str) -> ReceiverIdentifier:
    return ReceiverIdentifier(IdentifierSource.ORGANIZATION, system, value)


class TestClassifySystem:
    @pytest.mark.parametrize("system", GLN_SYSTEMS)
    def test_the_gs1_urls_of_the_profiles_are_official_gln_systems(self, system) -> None:
        assert classify_system(system) == (IdentifierKind.GLN, SystemSpelling.OFFICIAL)

    def test_the_sor_oid_is_the_official_sor_system(self) -> None:
        assert classify_system(SOR_ID_SYSTEM) == (IdentifierKind.SOR_ID, SystemSpelling.OFFICIAL)

    def test_gs1s_oid_of_older_profiles_is_a_legacy_gln_system(self) -> None:
        assert classify_system(LEGACY_GLN_SYSTEM) == (IdentifierKind.GLN, SystemSpelling.LEGACY)

    @pytest.mark.parametrize(
        "system",
        [
            "urn:oid1.2.208.176.1.1",  # seen from a certified vendor system: no colon
            "oid:1.2.208.176.1.1",
            "urn:oid.1.2.208.176.1.1",
            "urn:oid: 1.2.208.176.1.1",
            "urn:oid::1.2.208.176.1.1",
            "1.2.208.176.1.1",
            "URN:OID:1.2.208.176.1.1",
            " urn:oid:1.2.208.176.1.1 ",
        ],
    )
    def test_recognisable_misspellings_of_the_sor_oid_are_misspelt_sor_systems(
        self, system
    ) -> None:
        assert classify_system(system) == (IdentifierKind.SOR_ID, SystemSpelling.MISSPELT)

    @pytest.mark.parametrize(
        "system",
        [
            "gs1.org/gln",
            "www.gs1.org/gln",
            "https://gs1.org/gln",
            "https://www.gs1.org/gln/",
            "HTTPS://WWW.GS1.ORG/GLN",
            "urn:oid1.3.88",
            "oid:1.3.88",
        ],
    )
    def test_recognisable_misspellings_of_the_gln_systems_are_misspelt_gln_systems(
        self, system
    ) -> None:
        assert classify_system(system) == (IdentifierKind.GLN, SystemSpelling.MISSPELT)

    @pytest.mark.parametrize(
        "system",
        [
            None,
            "",
            "urn:oid:1.2.208.176.1.2",  # CPR, not SOR
            "urn:oid:1.2.208.176.1.1.1",
            "urn:oid:1.2.208.176.1",
            "urn:oid:1.3.88.1",
            "https://www.gs1.org/gtin",
            "https://sor2.sum.dsdn.dk/#id=265161000016000",
            "urn:oid:1.2.208.176.1.١",  # a digit of another script
        ],
    )
    def test_anything_else_is_unknown(self, system) -> None:
        assert classify_system(system) == (IdentifierKind.UNKNOWN, SystemSpelling.UNKNOWN)

    @given(st.text(max_size=60))
    def test_any_text_is_classified_without_error(self, system) -> None:
        kind, spelling = classify_system(system)
        assert (kind is IdentifierKind.UNKNOWN) == (spelling is SystemSpelling.UNKNOWN)

    @given(
        st.sampled_from(["urn:oid:", "urn:oid", "oid:", ""]),
        st.from_regex(r"[1-9]\.[0-9]{1,3}(\.[0-9]{1,3}){1,4}", fullmatch=True),
    )
    def test_only_the_two_oids_are_recognised_among_oids(self, prefix, oid) -> None:
        kind, _ = classify_system(prefix + oid)
        expected = {
            "1.2.208.176.1.1": IdentifierKind.SOR_ID,
            "1.3.88": IdentifierKind.GLN,
        }.get(oid, IdentifierKind.UNKNOWN)
        assert kind is expected


class TestReadIdentifier:
    def test_a_gln_under_an_official_system_is_usable(self) -> None:
        read = read_identifier(_org(GLN_SYSTEMS[0], GLN))
        assert (read.kind, read.spelling, read.value, read.usable) == (
            IdentifierKind.GLN,
            SystemSpelling.OFFICIAL,
            GLN,
            True,
        )

    def test_a_gln_under_the_legacy_oid_is_usable_and_says_so(self) -> None:
        read = read_identifier(_org(LEGACY_GLN_SYSTEM, GLN))
        assert (read.kind, read.spelling, read.usable) == (
            IdentifierKind.GLN,
            SystemSpelling.LEGACY,
            True,
        )

    def test_a_sor_id_under_a_misspelt_system_is_usable_and_says_so(self) -> None:
        read = read_identifier(_org("urn:oid1.2.208.176.1.1", SOR_ID))
        assert (read.kind, read.spelling, read.value) == (
            IdentifierKind.SOR_ID,
            SystemSpelling.MISSPELT,
            SOR_ID,
        )

    def test_surrounding_blanks_of_a_value_are_dropped(self) -> None:
        assert read_identifier(_org(GLN_SYSTEMS[0], f" {GLN}\n")).value == GLN

    @pytest.mark.parametrize(
        ("system", "value"),
        [
            (GLN_SYSTEMS[0], GLN[:12]),  # 12 digits
            (GLN_SYSTEMS[0], GLN + "0"),
            (GLN_SYSTEMS[0], "579000020935A"),
            (GLN_SYSTEMS[0], "٥٧٩٠٠٠٠٢٠٩٣٥٤"),  # thirteen digits, not ASCII
            (GLN_SYSTEMS[0], ""),
            (SOR_ID_SYSTEM, "2651610000160001234567"),  # over 20 digits
            (SOR_ID_SYSTEM, "265161000016000x"),
            (SOR_ID_SYSTEM, "26516 1000016000"),
        ],
    )
    def test_a_value_wrong_for_its_kind_is_not_usable(self, system, value) -> None:
        read = read_identifier(_org(system, value))
        assert read.kind is not IdentifierKind.UNKNOWN
        assert read.value is None and not read.usable

    def test_an_unknown_system_is_not_usable(self) -> None:
        read = read_identifier(_org("urn:oid:1.2.208.176.1.2", "2509479989"))
        assert (read.kind, read.usable) == (IdentifierKind.UNKNOWN, False)

    def test_an_identifier_without_a_system_is_read_by_its_kind_hint(self) -> None:
        ean = ReceiverIdentifier(IdentifierSource.OIOXML, None, GLN, IdentifierKind.GLN)
        read = read_identifier(ean)
        assert (read.kind, read.spelling, read.value) == (
            IdentifierKind.GLN,
            SystemSpelling.OFFICIAL,
            GLN,
        )

    def test_an_identifier_without_a_system_or_a_hint_is_unknown(self) -> None:
        assert not read_identifier(_org(None, GLN)).usable

    def test_an_endpoint_is_read_as_the_sor_id_of_its_reference(self) -> None:
        endpoint = ReceiverIdentifier(
            IdentifierSource.ENDPOINT, None, f"https://sor2.sum.dsdn.dk/#id={SOR_ID}"
        )
        read = read_identifier(endpoint)
        assert (read.kind, read.value) == (IdentifierKind.SOR_ID, SOR_ID)

    def test_an_endpoint_without_a_sor_id_is_unknown(self) -> None:
        endpoint = ReceiverIdentifier(IdentifierSource.ENDPOINT, None, "https://example.org/inbox")
        assert read_identifier(endpoint).kind is IdentifierKind.UNKNOWN

    @given(st.from_regex(r"[0-9]{13}", fullmatch=True), st.sampled_from(GLN_SYSTEMS))
    def test_every_thirteen_digit_value_under_a_gln_system_is_usable(self, value, system) -> None:
        assert read_identifier(_org(system, value)).value == value

    @given(
        st.sampled_from([*GLN_SYSTEMS, LEGACY_GLN_SYSTEM, SOR_ID_SYSTEM, "urn:oid1.2.208.176.1.1"]),
        st.text(max_size=25),
    )
    def test_a_usable_value_is_always_ascii_digits_of_the_right_length(self, system, value) -> None:
        read = read_identifier(_org(system, value))
        if read.value is not None:
            assert read.value.isascii() and read.value.isdigit()
            if read.kind is IdentifierKind.GLN:
                assert len(read.value) == 13
            else:
                assert 1 <= len(read.value) <= 20


class TestSorIdFromEndpoint:
    @pytest.mark.parametrize(
        ("url", "sor_id"),
        [
            ("https://sor2.sum.dsdn.dk/#id=265161000016000", "265161000016000"),
            ("https://sor2.sum.dsdn.dk/#id=1017421000016003", "1017421000016003"),
            ("http://sor2.sum.dsdn.dk/?id=953741000016009", "953741000016009"),
            ("https://sor2.sum.dsdn.dk/#id=953741000016009&tab=1", "953741000016009"),
            (" https://sor2.sum.dsdn.dk/#id=953741000016009 ", "953741000016009"),
            ("https://sor2.sum.dsdn.dk/#/id=953741000016009", "953741000016009"),
        ],
    )
    def test_the_sor_id_of_a_sor_reference_is_read(self, url, sor_id) -> None:
        assert sor_id_from_endpoint(url) == sor_id

    @pytest.mark.parametrize(
        "url",
        [
            "https://sor2.sum.dsdn.dk/",
            "https://sor2.sum.dsdn.dk/#id=",
            "https://sor2.sum.dsdn.dk/#id=26516x",
            "https://sor2.sum.dsdn.dk/#grid=265161000016000",
            "https://sor2.sum.dsdn.dk/#id=123456789012345678901",  # 21 digits
            "",
        ],
    )
    def test_a_url_without_a_sor_id_gives_none(self, url) -> None:
        assert sor_id_from_endpoint(url) is None

    @given(st.integers(1, 10**20 - 1))
    def test_any_sor_id_round_trips_through_a_sor_reference(self, number) -> None:
        assert sor_id_from_endpoint(f"https://sor2.sum.dsdn.dk/#id={number}") == str(number)

    @given(st.text(max_size=80))
    def test_any_text_is_read_without_error(self, url) -> None:
        found = sor_id_from_endpoint(url)
        assert found is None or (found.isascii() and found.isdigit() and found in url)
