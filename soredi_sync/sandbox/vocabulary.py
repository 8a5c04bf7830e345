"""Which MedCom message types the sandbox uses, and the EDITypes.csv rows they make.

The types come from ``config/message-types.tsv`` through the domain's
:class:`~soredi_sync.domain.message_types.MessageTypeRegistry`; only business-message names are
fixed here, so the codes stay configuration.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from soredi_sync.domain.message_types import MessageTypeRegistry


@dataclass(frozen=True, slots=True)
class EdiType:
    """One row of EDITypes.csv: a message type in one version, with a stable id."""

    id: str
    message_type: str
    version_code: str  # "" for the FHIR types, which SOR-EDI lists without a version code
    name: str


class Vocabulary:
    """The message types the generator needs, looked up from the registry by business message.

    Only the business-message names (``correspondence``, ``acknowledgement``,
    ``binary-attachment``, ``hospital-notification``) are fixed here; the codes come from
    ``config/message-types.tsv``.
    """

    def __init__(self, registry: MessageTypeRegistry) -> None:
        self.registry = registry

        def one(business: str, syntax: str) -> str:
            found = [
                mt.code
                for mt in registry.for_business_message(business)
                if mt.syntax == syntax and (syntax == "fhir" or mt.replaced_by)
            ]
            if not found:
                raise ValueError(f"message types have no {syntax} type for {business!r}")
            return sorted(found)[0]

        def many(business: str, syntax: str) -> tuple[str, ...]:
            return tuple(
                sorted(
                    mt.code for mt in registry.for_business_message(business) if mt.syntax == syntax
                )
            )

        self.fhir_correspondence = one("correspondence", "fhir")  # FDIS91
        self.fhir_ack = one("acknowledgement", "fhir")  # FCTL
        self.fhir_notification = one("hospital-notification", "fhir")  # FDIS20
        self.correspondence = {s: one("correspondence", s) for s in ("edifact", "oioxml")}
        self.attachment = {s: many("binary-attachment", s) for s in ("edifact", "oioxml")}
        self.ack = {s: many("acknowledgement", s) for s in ("edifact", "oioxml")}
        for syntax in ("edifact", "oioxml"):
            if not self.attachment[syntax] or not self.ack[syntax]:
                raise ValueError(f"message types lack {syntax} attachment/acknowledgement types")
        self.legacy_correspondence = tuple(sorted(self.correspondence.values()))  # DIS91, XDIS91
        self.attachments = tuple(sorted(self.attachment["edifact"] + self.attachment["oioxml"]))
        self.fhir_types = tuple(sorted(mt.code for mt in registry if mt.syntax == "fhir"))
        # EDITypes.csv: one row per (type, version code), ids stable for a given registry.
        rows: list[EdiType] = []
        for mt in registry:
            for version in mt.version_codes or ("",):
                rows.append(
                    EdiType(
                        id=str(101 + len(rows)),
                        message_type=mt.code,
                        version_code=version,
                        name=f"{mt.business_message} ({mt.syntax})",
                    )
                )
        self.edi_types: tuple[EdiType, ...] = tuple(rows)
        self._ids: dict[str, list[EdiType]] = {}
        for row in rows:
            self._ids.setdefault(row.message_type, []).append(row)
        self.by_id = {row.id: row for row in rows}

    def __contains__(self, code: str) -> bool:
        return code in self._ids

    def id_for(self, code: str, version_code: str | None) -> str | None:
        """The EDI type id of ``code`` in ``version_code``, or None when there is no such row.

        A blank ``version_code`` names the row without one (the FHIR types).
        """
        wanted = version_code or ""
        for row in self._ids.get(code, ()):
            if row.version_code == wanted:
                return row.id
        return None

    def pick_version(self, code: str, rng: random.Random) -> str:
        """An EDI type id for ``code``: mostly the newest version, sometimes an older one."""
        options = self._ids[code]
        if len(options) == 1 or rng.random() < 0.8:
            return options[-1].id
        return rng.choice(options[:-1]).id

    def legacy_set(self, syntax: str) -> tuple[str, ...]:
        """Correspondence, its attachment type and the receipts in one legacy syntax."""
        return (
            (self.correspondence[syntax],)
            + self.attachment[syntax][:1]  # BIN01 / XBIN01, not the referral attachment
            + self.ack[syntax][-2:]  # the negative and positive receipts (CTL02/03)
        )
