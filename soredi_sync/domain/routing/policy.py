"""The routing policy as a value (built from ``config/routing.toml``): the conversions a VANS
makes, on which dates and with which agreements, and the limits of a converted message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True, slots=True)
class ConversionStep:
    """One conversion a VANS can make, e.g. ``fhir->oioxml``, valid on the dates given."""

    source: str
    target: str
    valid_from: date | None = None
    valid_to: date | None = None  # inclusive
    requires_agreement: bool = False  # only with an agreement with the receiver's VANS
    # The business messages this step converts; empty: every one.
    messages: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    def covers(self, business_message: str) -> bool:
        return not self.messages or business_message in self.messages

    def open_on(self, day: date) -> bool:
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_to is None or day <= self.valid_to


@dataclass(frozen=True, slots=True)
class Limits:
    max_attachments: int = 10
    allowed_mime_types: frozenset[str] = frozenset(
        {"application/pdf", "image/gif", "image/jpeg", "image/png", "image/tiff", "image/bmp"}
    )
    max_total_bytes: int = 100 * 1024 * 1024
    legacy_subject_max: int = 70
    legacy_text_max: int = 31_150
    reject_long_subject: bool = False  # False: warn
    reject_long_text: bool = False  # False: warn
    reject_link_attachments: bool = True  # on conversion; False: convert and warn
    reject_missing_category: bool = False  # on conversion; False: warn


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    conversions: tuple[ConversionStep, ...]
    agreements: Mapping[str, frozenset[str]]  # VANS code -> step names agreed with it
    syntax_preference: tuple[str, ...] = ("fhir", "oioxml", "edifact")
    limits: Limits = field(default_factory=Limits)
    reject_address_mismatch: bool = False  # on_address_mismatch; False: warn
    # The business message whose letters carry binary attachments where a syntax has no binary
    # type of its own (XDIS91 + XBIN01 -> one CareCommunication): a lone XBIN01/BIN01 is routed
    # as part of such a letter.
    binary_attachment_letter: str = "correspondence"
