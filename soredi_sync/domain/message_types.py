"""The registry of MedCom message types, loaded from ``config/message-types.tsv``.

Nothing is hard-coded per type: syntax, business message, version codes and the
"replaced by" relation (which legacy types a FHIR type makes obsolete) all come from the data.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SYNTAXES = ("fhir", "oioxml", "edifact", "xml")


class UnknownMessageType(LookupError):
    def __init__(self, code: str) -> None:
        super().__init__(f"unknown MedCom message type {code!r}")
        self.code = code


@dataclass(frozen=True, slots=True)
class MessageType:
    code: str  # standard ID, e.g. FDIS91
    syntax: str  # fhir | oioxml | edifact | xml
    business_message: str  # e.g. correspondence
    version_codes: tuple[str, ...] = ()
    replaced_by: str | None = None  # the FHIR type that makes this one obsolete
    # FHIR: the MessageHeader event codes and message-definition canonicals naming this type
    definitions: tuple[str, ...] = ()


class MessageTypeRegistry:
    """Look-ups over the known message types."""

    def __init__(self, types: Iterable[MessageType]) -> None:
        self._by_code: dict[str, MessageType] = {}
        for message_type in types:
            if message_type.code in self._by_code:
                raise ValueError(f"message type {message_type.code!r} is listed twice")
            if message_type.syntax not in SYNTAXES:
                raise ValueError(
                    f"message type {message_type.code!r} has unknown syntax {message_type.syntax!r}"
                )
            self._by_code[message_type.code] = message_type
        for message_type in self._by_code.values():
            if message_type.replaced_by and message_type.replaced_by not in self._by_code:
                raise ValueError(
                    f"{message_type.code!r} is replaced by unknown type "
                    f"{message_type.replaced_by!r}"
                )
        self._by_version = {
            version: mt.code for mt in self._by_code.values() for version in mt.version_codes
        }
        self._by_definition = {
            definition: mt.code for mt in self._by_code.values() for definition in mt.definitions
        }

    @classmethod
    def from_tsv_lines(cls, lines: Iterable[str]) -> MessageTypeRegistry:
        """Read the tab-separated registry; lines starting with ``#`` are comments."""
        rows = csv.DictReader(
            (line for line in lines if line.strip() and not line.startswith("#")),
            delimiter="\t",
        )
        return cls(
            MessageType(
                code=row["code"].strip(),
                syntax=row["syntax"].strip(),
                business_message=row["business_message"].strip(),
                version_codes=tuple(v for v in (row.get("version_codes") or "").split(",") if v),
                replaced_by=(row.get("replaced_by") or "").strip() or None,
                definitions=tuple(
                    d.strip() for d in (row.get("definitions") or "").split(",") if d.strip()
                ),
            )
            for row in rows
        )

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> MessageType:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownMessageType(code) from None

    def code_for_version(self, version_code: str) -> str | None:
        """The standard ID a version code belongs to (``XD9134L`` → ``XDIS91``)."""
        return self._by_version.get(version_code)

    def code_for_definition(self, definition: str) -> str | None:
        """The FHIR type a MessageHeader event code or message definition names
        (``acknowledgement-message`` → ``FCTL``); a ``|version`` suffix is ignored."""
        return self._by_definition.get(definition.split("|", 1)[0].strip())

    def for_business_message(self, business_message: str) -> list[MessageType]:
        return [mt for mt in self._by_code.values() if mt.business_message == business_message]

    def business_messages(self) -> list[str]:
        return sorted({mt.business_message for mt in self._by_code.values()})

    def obsolete_on(self, codes: Iterable[str]) -> set[str]:
        """Of ``codes`` (one GLN's types), those whose FHIR successor is also present."""
        present = set(codes)
        return {
            code
            for code in present
            if code in self._by_code
            and (successor := self._by_code[code].replaced_by) is not None
            and successor in present
        }

    def replaced(self) -> Mapping[str, str]:
        return {mt.code: mt.replaced_by for mt in self._by_code.values() if mt.replaced_by}
