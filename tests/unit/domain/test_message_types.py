from __future__ import annotations

import pytest

from soredi_sync.config import config_dir
from soredi_sync.domain.message_types import MessageTypeRegistry, UnknownMessageType


@pytest.fixture(scope="module")
def types() -> MessageTypeRegistry:
    with (config_dir() / "message-types.tsv").open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


class TestShippedRegistry:
    def test_correspondence_exists_in_all_three_syntaxes(self, types: MessageTypeRegistry) -> None:
        syntaxes = {mt.code: mt.syntax for mt in types.for_business_message("correspondence")}
        assert syntaxes == {"DIS91": "edifact", "XDIS91": "oioxml", "FDIS91": "fhir"}

    def test_version_codes_resolve_to_their_standard(self, types: MessageTypeRegistry) -> None:
        assert types.code_for_version("XD9134L") == "XDIS91"
        assert types.code_for_version("D9134L") == "DIS91"

    def test_legacy_types_name_their_fhir_successor(self, types: MessageTypeRegistry) -> None:
        assert types.get("XDIS91").replaced_by == "FDIS91"
        assert types.get("XDIS17").replaced_by == "FDIS20"
        assert types.get("XCTL03").replaced_by == "FCTL"
        assert types.get("FDIS91").replaced_by is None

    def test_leftover_legacy_types_beside_fdis91_are_obsolete(
        self, types: MessageTypeRegistry
    ) -> None:
        assert types.obsolete_on(["FDIS91", "DIS91", "XDIS91", "XBIN01", "XDIS01"]) == {
            "DIS91",
            "XDIS91",
        }
        assert types.obsolete_on(["DIS91", "XDIS91"]) == set()

    def test_an_unknown_code_is_a_clear_error(self, types: MessageTypeRegistry) -> None:
        with pytest.raises(UnknownMessageType, match="'NOPE1'"):
            types.get("NOPE1")


class TestRegistryData:
    def test_a_duplicate_code_is_refused(self) -> None:
        lines = [
            "code\tsyntax\tbusiness_message\tversion_codes\treplaced_by",
            "A\tfhir\tx\t\t",
            "A\tfhir\tx\t\t",
        ]
        with pytest.raises(ValueError, match="twice"):
            MessageTypeRegistry.from_tsv_lines(lines)

    def test_a_successor_that_does_not_exist_is_refused(self) -> None:
        lines = ["code\tsyntax\tbusiness_message\tversion_codes\treplaced_by", "A\toioxml\tx\t\tB"]
        with pytest.raises(ValueError, match="unknown type 'B'"):
            MessageTypeRegistry.from_tsv_lines(lines)
