"""Reference data: the tables and the routing policy under ``config/`` (CSV headers, message
types, routing policy, VANS, owner kinds, certified systems, regions, categories, EHMI
message-definition URIs), validated with pydantic and loaded once per process by
``bootstrap`` (:meth:`ReferenceData.load`).
"""

from __future__ import annotations

import csv
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from soredi_sync.config import packaged_dir
from soredi_sync.domain.audit import AuditContext, OwnerKind
from soredi_sync.domain.mcsd import DirectoryContext
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.routing import ConversionStep, Limits, RoutingPolicy
from soredi_sync.errors import ReferenceDataError

logger = logging.getLogger(__name__)


EHMI_TABLE = "ehmi-message-definitions.tsv"


def _shipped_if_missing(folder: Path, name: str) -> Path:
    """``folder / name``, or the package's own copy when an operator's config folder (made by
    ``config init`` before the table existed) lacks it; said once in the log."""
    path = folder / name
    if path.exists():
        return path
    shipped = packaged_dir("config") / name
    logger.warning(
        "%s is not in the config folder %s: using the shipped one (soredi-sync config init "
        "copies it)",
        name,
        folder,
    )
    return shipped


@dataclass(frozen=True)
class ReferenceData:
    """Every reference table and the routing policy, read from one config folder."""

    csv_columns: CsvColumns
    message_types: MessageTypeRegistry
    routing_policy: RoutingPolicy
    audit_context: AuditContext
    vans_names: dict[str, str]  # VANS (communication supplier) code -> name
    # CareCommunication category code -> the Danish name a legacy subject starts with
    category_names: dict[str, str]
    # what the FHIR directory (domain/mcsd.py) reads: message types, VANS names, EHMI URIs
    directory_context: DirectoryContext

    @classmethod
    def load(cls, folder: Path) -> ReferenceData:
        """Read and check every file (``SOREDI_CONFIG_DIR``'s copy or the package's).

        :raises ReferenceDataError: a file is missing or wrong, named
        """
        message_types = _read(folder / "message-types.tsv", _message_types)
        certified = _rows(folder / "certified-systems.tsv", _CertifiedSystemRow)
        vans_names = {r.code: r.name for r in _rows(folder / "vans.tsv", _NamedRow)}
        return cls(
            csv_columns=_read(folder / "csv-columns.toml", CsvColumns.load),
            message_types=message_types,
            routing_policy=load_routing_policy(folder / "routing.toml"),
            audit_context=AuditContext(
                message_types=message_types,
                owner_kinds={
                    r.code: r.kind for r in _rows(folder / "owner-types.tsv", _OwnerTypeRow)
                },
                certified_system_types=frozenset(
                    r.system_type for r in certified if r.certified == "yes" and r.system_type
                ),
                region_names={r.code: r.name for r in _rows(folder / "regions.tsv", _NamedRow)},
            ),
            vans_names=vans_names,
            category_names={
                r.code: r.name_da
                for r in _rows(folder / "carecommunication-categories.tsv", _CategoryRow)
            },
            directory_context=DirectoryContext(
                message_types=message_types,
                vans_names=vans_names,
                ehmi_uris=_read(_shipped_if_missing(folder, EHMI_TABLE), _ehmi_uris),
            ),
        )


# -- csv-columns.toml ----------------------------------------------------------------------------


class CsvColumns(BaseModel):
    """Header names of the SOR2 CSV files, from ``config/csv-columns.toml`` ([assumed]).

    A column may be named by a list of headers (aliases, e.g. ``["LocationCode",
    "EanLocationCode"]``): the reader uses the first of them the file has. The sections keep
    the first name of each list (what the sandbox writes); :meth:`names` gives all of them.
    """

    delimiter: str = ";"
    encoding: str = "utf-8-sig"
    edi_types: dict[str, str]
    gln_edi_types: dict[str, str]
    glns: dict[str, str]
    # section -> key -> every accepted header, first name first (from lists in the file).
    aliases: dict[str, dict[str, tuple[str, ...]]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        aliases: dict[str, dict[str, tuple[str, ...]]] = {}
        for section in ("edi_types", "gln_edi_types", "glns"):
            raw = data.get(section)
            if not isinstance(raw, dict):
                continue
            names: dict[str, tuple[str, ...]] = {}
            for key, value in raw.items():
                listed = (value,) if isinstance(value, str) else tuple(value)
                if not listed or not all(isinstance(n, str) and n.strip() for n in listed):
                    raise ValueError(f"[{section}] {key}: give a header name or a list of them")
                names[key] = listed
            data[section] = {key: listed[0] for key, listed in names.items()}
            aliases[section] = {k: v for k, v in names.items() if len(v) > 1}
        data["aliases"] = {**aliases, **(data.get("aliases") or {})}
        return data

    def names(self, section: str, key: str) -> tuple[str, ...]:
        """Every header accepted for ``key`` in ``section``, in order of preference.

        Aliases apply while the first name is still the configured one (a copy with another
        name for the column does not inherit the old name's aliases)."""
        first: str = getattr(self, section)[key]
        listed = self.aliases.get(section, {}).get(key, ())
        return listed if listed and listed[0] == first else (first,)

    @classmethod
    def load(cls, path: Path) -> CsvColumns:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        dialect = data.pop("dialect", {})
        return cls(**dialect, **data)


# -- routing.toml --------------------------------------------------------------------------------

Mode = Literal["warn", "reject"]


def _mode(value: Any, key: str) -> Any:
    if value not in ("warn", "reject"):
        raise ValueError(f"{key} must be 'warn' or 'reject', not {value!r}")
    return value


class _StepEntry(BaseModel):
    """One ``[[conversions]]`` entry."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    valid_from: date | None = None
    valid_to: date | None = None  # inclusive
    requires_agreement: bool = False
    # The business messages the step converts (none listed: every one).
    messages: frozenset[str] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _messages_are_names(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        messages = data.get("messages", [])
        if not isinstance(messages, list) or not all(
            isinstance(m, str) and m.strip() for m in messages
        ):
            step = f"{data.get('from')}->{data.get('to')}"
            raise ValueError(
                f"messages of step {step} must be a list of business messages, not {messages!r}"
            )
        return {**data, "messages": [m.strip() for m in messages]}

    def step(self) -> ConversionStep:
        return ConversionStep(
            source=self.source,
            target=self.target,
            valid_from=self.valid_from,
            valid_to=self.valid_to,
            requires_agreement=self.requires_agreement,
            messages=self.messages,
        )


_DEFAULT_LIMITS = Limits()


class _LimitsTable(BaseModel):
    """The ``[limits]`` table: what a converted message may hold."""

    max_attachments: int = _DEFAULT_LIMITS.max_attachments
    allowed_mime_types: frozenset[str] = _DEFAULT_LIMITS.allowed_mime_types
    max_total_bytes: int = _DEFAULT_LIMITS.max_total_bytes
    legacy_subject_max: int = _DEFAULT_LIMITS.legacy_subject_max
    legacy_text_max: int = _DEFAULT_LIMITS.legacy_text_max
    on_long_subject: Mode = "warn"
    on_long_text: Mode = "warn"
    on_attachment_link: Mode = "reject"
    on_category_missing: Mode = "warn"

    @field_validator(
        "on_long_subject",
        "on_long_text",
        "on_attachment_link",
        "on_category_missing",
        mode="before",
    )
    @classmethod
    def _warn_or_reject(cls, value: Any, info: ValidationInfo) -> Any:
        return _mode(value, f"[limits] {info.field_name}")

    def limits(self) -> Limits:
        return Limits(
            max_attachments=self.max_attachments,
            allowed_mime_types=self.allowed_mime_types,
            max_total_bytes=self.max_total_bytes,
            legacy_subject_max=self.legacy_subject_max,
            legacy_text_max=self.legacy_text_max,
            reject_long_subject=self.on_long_subject == "reject",
            reject_long_text=self.on_long_text == "reject",
            reject_link_attachments=self.on_attachment_link == "reject",
            reject_missing_category=self.on_category_missing == "reject",
        )


class RoutingFile(BaseModel):
    """``config/routing.toml`` as written; :meth:`policy` is the domain's value."""

    syntax_preference: tuple[str, ...] = ("fhir", "oioxml", "edifact")
    on_address_mismatch: Mode = "warn"
    binary_attachment_letter: str = "correspondence"
    conversions: list[_StepEntry] = Field(default_factory=list)
    # VANS code -> the agreement steps it converts
    agreements: dict[str, frozenset[str]] = Field(default_factory=dict)
    limits: _LimitsTable = Field(default_factory=_LimitsTable)

    @field_validator("on_address_mismatch", mode="before")
    @classmethod
    def _warn_or_reject(cls, value: Any) -> Any:
        return _mode(value, "on_address_mismatch")

    @model_validator(mode="after")
    def _agreements_name_steps(self) -> RoutingFile:
        names = {entry.step().name for entry in self.conversions}
        for vans, agreed in self.agreements.items():
            unknown = sorted(agreed - names)
            if unknown:
                raise ValueError(f"VANS {vans} agrees to unknown steps {unknown}")
        return self

    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(
            conversions=tuple(entry.step() for entry in self.conversions),
            agreements=dict(self.agreements),
            syntax_preference=self.syntax_preference,
            limits=self.limits.limits(),
            reject_address_mismatch=self.on_address_mismatch == "reject",
            binary_attachment_letter=self.binary_attachment_letter,
        )


def load_routing_policy(path: Path) -> RoutingPolicy:
    """The routing policy from ``config/routing.toml``.

    :raises ReferenceDataError: a step, syntax or limit the file gets wrong, named
    """

    def parse(path: Path) -> RoutingPolicy:
        with path.open("rb") as fh:
            return RoutingFile.model_validate(tomllib.load(fh)).policy()

    return _read(path, parse)


# -- the tab-separated tables ------------------------------------------------------------------


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _NamedRow(_Row):
    """vans.tsv, regions.tsv."""

    code: str
    name: str


class _OwnerTypeRow(_Row):
    code: str  # SOR OwnerType code ([assumed])
    kind: OwnerKind


class _CertifiedSystemRow(_Row):
    system_type: str
    certified: str  # "yes" when certified for FDIS91


class _CategoryRow(_Row):
    code: str
    name_da: str


class _EhmiUriRow(_Row):
    message_type: str
    version_code: str
    uri: str = Field(pattern=r"^urn:\S+$")


R = TypeVar("R", bound=_Row)
T = TypeVar("T")


def _message_types(path: Path) -> MessageTypeRegistry:
    with path.open(encoding="utf-8") as fh:
        return MessageTypeRegistry.from_tsv_lines(fh)


def _ehmi_uris(path: Path) -> dict[tuple[str, str], str]:
    """(message type, version code) -> EHMI URI; a pair listed twice is an error."""
    uris: dict[tuple[str, str], str] = {}
    for row in _rows(path, _EhmiUriRow):
        key = (row.message_type, row.version_code)
        if key in uris:
            raise ValueError(f"{row.message_type} {row.version_code} is listed twice")
        uris[key] = row.uri
    return uris


def _rows(path: Path, model: type[R]) -> list[R]:
    """The rows of a tab-separated file (``#`` lines are comments), each validated.

    :raises ReferenceDataError: the file is missing, or a row lacks a column or holds a bad value
    """

    def parse(path: Path) -> list[R]:
        with path.open(encoding="utf-8") as fh:
            numbered = [
                (n, line) for n, line in enumerate(fh, 1) if line.strip() and line[0] != "#"
            ]
        rows = csv.DictReader([line for _, line in numbered], delimiter="\t")
        parsed = []
        for index, row in enumerate(rows, 1):
            values = {key: value for key, value in row.items() if key is not None}
            try:
                parsed.append(model.model_validate(values))
            except ValidationError as exc:
                line = numbered[index][0] if index < len(numbered) else index
                raise ValueError(f"line {line}: {_explain(exc)}") from exc
        return parsed

    return _read(path, parse)


def _read(path: Path, parse: Callable[[Path], T]) -> T:
    """``parse(path)``, any failure raised as a :class:`ReferenceDataError` naming the file."""
    try:
        return parse(path)
    except ReferenceDataError:
        raise
    except FileNotFoundError:
        raise ReferenceDataError(f"{path}: no such file") from None
    except ValidationError as exc:
        raise ReferenceDataError(f"{path}: {_explain(exc)}") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReferenceDataError(f"{path}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"no column {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ReferenceDataError(f"{path}: {detail}") from exc


def _explain(error: ValidationError) -> str:
    """pydantic's errors in the file's terms: our own messages as written, the others with
    where they are (``limits.max_attachments: Input should be a valid integer``)."""
    parts = []
    for item in error.errors(include_url=False):
        cause = (item.get("ctx") or {}).get("error")
        if item["type"] == "value_error" and cause is not None:
            parts.append(str(cause))
        else:
            where = ".".join(str(p) for p in item["loc"])
            parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)
