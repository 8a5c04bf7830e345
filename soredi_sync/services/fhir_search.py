"""The read side of the FHIR directory: search, read and history over the stored versions
(``services/fhir_directory.py`` writes them), for the ``/fhir`` API.

Searches never query the database: :class:`DirectoryCache` holds one :class:`DirectoryIndex`
of the current versions per process, each resource kept as its compact JSON (deflated) plus
the few values searches compare: about 95 MB for the national profile's 94,000 resources, built
in about 15 s. Before each use the cache asks whether a version newer than the index is stored
(one look-up per type that finds nothing, about 0.5 ms on SQLite and 1.5 ms on PostgreSQL); if
one is, a new index is built once however many requests ask (``services/once.OnceCache``), and
they all wait for it, so no answer is given from older versions once newer ones are stored.
History is read from the database page by page: it is the change feed, not a search.

Searches follow FHIR R4 (http://hl7.org/fhir/R4/search.html) for the parameters in
:data:`SEARCH_PARAMETERS`, which ``/fhir/metadata`` publishes as they are: an unknown parameter
is ignored and reported (or refused under ``Prefer: handling=strict``), an unsupported modifier
or a malformed value is refused (:class:`InvalidSearch`). Matches come in id order and are paged
by an opaque token naming the id a page starts after (or ends before), so a client paging
while a sync lands neither skips nor repeats a resource that is there all along.

Owner restrictions: an Organization belongs to the institution owner at the root of its
``partOf`` chain, an Endpoint to the owners of the Organizations that reference it. An
owner-restricted token sees only its owners' resources; the others are absent, not forbidden.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import unicodedata
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from soredi_sync.errors import SorediError
from soredi_sync.ports.records import FhirVersion
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from soredi_sync.services.once import OnceCache

ORGANIZATION = "Organization"
ENDPOINT = "Endpoint"
DEFAULT_COUNT = 100
MAX_COUNT = 1000


class InvalidSearch(SorediError, ValueError):
    """A search or history request FHIR says to refuse: a malformed value, an unsupported
    modifier, or (under ``Prefer: handling=strict``) an unknown parameter. The API answers 400."""


# -- what is supported, as /fhir/metadata publishes it ------------------------------------------


@dataclass(frozen=True)
class SearchParameter:
    name: str
    type: str  # FHIR search parameter type: token, string, reference, date
    definition: str  # the canonical of the standard SearchParameter
    documentation: str
    modifiers: tuple[str, ...] = ()


_SP = "http://hl7.org/fhir/SearchParameter/"
_COMMON = (
    SearchParameter(
        "_id", "token", _SP + "Resource-id", "the resource id (comma-separated: any of them)"
    ),
    SearchParameter(
        "_lastUpdated",
        "date",
        _SP + "Resource-lastUpdated",
        "meta.lastUpdated, with the prefixes eq, ne, gt, ge, lt, le, sa and eb; a date or a "
        "partial date is a range (without a time zone: UTC)",
    ),
)
SEARCH_PARAMETERS: dict[str, tuple[SearchParameter, ...]] = {
    ORGANIZATION: (
        *_COMMON,
        SearchParameter(
            "identifier",
            "token",
            _SP + "Organization-identifier",
            "system|value, value or |value: the SOR-ID (urn:oid:1.2.208.176.1.1) or the "
            "unit's own GLN (https://www.gs1.org/gln)",
            ("not",),
        ),
        SearchParameter(
            "name",
            "string",
            _SP + "Organization-name",
            "the name or an alias: by default case- and accent-insensitive, matching from the "
            "start of any word; :contains anywhere, :exact the whole name as written",
            ("contains", "exact"),
        ),
        SearchParameter(
            "partof",
            "reference",
            _SP + "Organization-partof",
            "the parent Organization (id, Organization/id or its URL); :missing=true gives "
            "the institution owners at the top of the tree",
            ("missing", "Organization"),
        ),
        SearchParameter("active", "token", _SP + "Organization-active", "true or false", ("not",)),
        SearchParameter(
            "type",
            "token",
            _SP + "Organization-type",
            "a code of Organization.type: the SOR type (SNOMED CT) or the unit kind",
            ("not",),
        ),
    ),
    ENDPOINT: (
        *_COMMON,
        SearchParameter(
            "identifier",
            "token",
            _SP + "Endpoint-identifier",
            "system|value, value or |value: the GLN (https://www.gs1.org/gln)",
            ("not",),
        ),
        SearchParameter(
            "name",
            "string",
            _SP + "Endpoint-name",
            "as Organization's name",
            ("contains", "exact"),
        ),
        SearchParameter(
            "status", "token", _SP + "Endpoint-status", "active or off (...)", ("not",)
        ),
        SearchParameter(
            "connection-type",
            "token",
            _SP + "Endpoint-connection-type",
            "a code of Endpoint.connectionType",
            ("not",),
        ),
    ),
}
# (search type, the include, the type it brings in); each once per search page.
INCLUDES: dict[str, tuple[str, ...]] = {ORGANIZATION: ("Organization:endpoint",), ENDPOINT: ()}
REVINCLUDES: dict[str, tuple[str, ...]] = {
    ORGANIZATION: ("Organization:partof",),
    ENDPOINT: ("Organization:endpoint",),
}
# Result parameters taken as they are: _count and _page page; _format is the API's;
# _total: the total is always exact; _sort=_id is the order anyway.
_RESULT_PARAMETERS = {"_count", "_page", "_format", "_pretty", "_total"}


# -- the index ----------------------------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Indexed:
    """A current resource: its JSON as served (packed: :meth:`DirectoryIndex.json`) and what
    searches compare. Never changed once its index is built."""

    resource_type: str
    id: str
    packed: bytes  # compact JSON, deflated against its type's dictionary
    version_id: str
    last_updated: datetime
    identifiers: tuple[tuple[str | None, str], ...]
    codes: tuple[tuple[str | None, str], ...]  # Organization.type / Endpoint.connectionType
    names: tuple[str, ...]
    words: str  # " word word ..." of every name, folded: starts-with at a word
    folded: str  # "\nname\nalias ...", folded: contains, and starts-with where no word is
    part_of: str | None = None
    active: bool | None = None
    status: str | None = None
    endpoints: tuple[str, ...] = ()
    owners: frozenset[str] = frozenset()  # institution owners (SOR-IDs) it belongs to

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


class _Packer:
    """Deflates the JSON of one resource type against a dictionary taken from its first
    resources: the national directory's 184 MB of JSON is held in about 11 MB, and a page of
    1,000 is inflated in about 15 ms."""

    _DICTIONARY_BYTES = 16 * 1024  # measured: 8 KB leaves Endpoints 2.4x larger

    def __init__(self, samples: Sequence[bytes]) -> None:
        step = max(1, len(samples) // 64)
        self.dictionary = b"".join(samples[::step])[-self._DICTIONARY_BYTES :]

    def pack(self, data: bytes) -> bytes:
        if not self.dictionary:
            return zlib.compress(data)
        packer = zlib.compressobj(6, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, self.dictionary)
        return packer.compress(data) + packer.flush()

    def unpack(self, data: bytes) -> bytes:
        if not self.dictionary:
            return zlib.decompress(data)
        unpacker = zlib.decompressobj(15, self.dictionary)
        return unpacker.decompress(data) + unpacker.flush()


@dataclass(frozen=True)
class Marks:
    """How far an index has read: the newest version id (ids are shared by every type) and the
    newest version time."""

    version_id: int = 0
    last_updated: datetime | None = None


@dataclass
class DirectoryIndex:
    """The current version of every Organization and Endpoint, by type and id."""

    marks: Marks
    resources: dict[str, dict[str, Indexed]]
    ids: dict[str, list[str]]  # sorted
    deleted: dict[str, frozenset[str]]  # ids whose latest version is a deletion
    children: dict[str, list[str]]  # Organization id -> ids of the Organizations part of it
    referrers: dict[str, list[str]]  # Endpoint id -> ids of the Organizations linking it
    by_identifier: dict[str, dict[str, str | tuple[str, ...]]]  # type -> value -> id(s)
    packers: dict[str, _Packer]

    def get(self, resource_type: str, resource_id: str) -> Indexed | None:
        return self.resources.get(resource_type, {}).get(resource_id)

    def is_deleted(self, resource_type: str, resource_id: str) -> bool:
        return resource_id in self.deleted.get(resource_type, frozenset())

    def json(self, resource: Indexed) -> bytes:
        """The resource as served: compact JSON, UTF-8."""
        return self.packers[resource.resource_type].unpack(resource.packed)

    def with_identifier(self, resource_type: str, value: str) -> tuple[str, ...]:
        found = self.by_identifier.get(resource_type, {}).get(value, ())
        return (found,) if isinstance(found, str) else found


def has_newer_versions(uow: UnitOfWork, marks: Marks) -> bool:
    """Whether a version newer than ``marks`` is stored: one look-up per type that finds
    nothing at once, by id on PostgreSQL and by time on SQLite (whose planner takes the
    (type, time) index for these queries).

    A sync writes its snapshot's versions in one transaction, stamped with the snapshot's time,
    and a later snapshot is taken later; so new versions are newer both by id and by time.
    (Versions written again for a snapshot already read are not seen until the next snapshot;
    nothing the sync or the export does writes those.)
    """
    return any(
        uow.fhir.history(
            resource_type, since=marks.last_updated, after_id=marks.version_id, limit=1
        )
        for resource_type in RESOURCE_TYPES
    )


_BATCH = 2000  # versions read at a time while building


def build_index(uow: UnitOfWork) -> DirectoryIndex:
    """The index of the latest versions: every version read once, oldest first, a page at a
    time (the versions are only ever added, so the newest read of each resource is its
    current one)."""
    shared: dict[Any, Any] = {}  # one object for the many equal ids, systems, codes and times

    def share(value: Any) -> Any:
        return shared.setdefault(value, value)

    resources: dict[str, dict[str, Indexed]] = {}
    deleted: dict[str, frozenset[str]] = {}
    packers: dict[str, _Packer] = {}
    newest_id = 0
    newest_time: datetime | None = None
    for resource_type in RESOURCE_TYPES:
        latest: dict[str, Indexed] = {}
        gone: set[str] = set()
        mark = 0
        packer: _Packer | None = None
        while page := uow.fhir.history(resource_type, since=None, after_id=mark, limit=_BATCH):
            mark = page[-1].id
            newest_id = max(newest_id, mark)
            stamp = max(v.last_updated for v in page)
            newest_time = stamp if newest_time is None else max(newest_time, stamp)
            bodies = [_compact(v.content) if v.content is not None else b"" for v in page]
            if packer is None:
                packer = _Packer([body for body in bodies if body])
            for version, body in zip(page, bodies, strict=True):
                rid = share(version.resource_id)
                if version.deleted or version.content is None:
                    latest.pop(rid, None)
                    gone.add(rid)
                else:
                    latest[rid] = _indexed(version, packer.pack(body), share)
                    gone.discard(rid)
        resources[resource_type] = {rid: latest[rid] for rid in sorted(latest)}
        deleted[resource_type] = frozenset(gone)
        packers[resource_type] = packer or _Packer([])
    organizations = resources[ORGANIZATION]
    children: dict[str, list[str]] = {}
    referrers: dict[str, list[str]] = {}
    for org in organizations.values():  # in id order: the lists come out sorted
        if org.part_of is not None:
            children.setdefault(org.part_of, []).append(org.id)
        for endpoint_id in org.endpoints:
            referrers.setdefault(endpoint_id, []).append(org.id)
    roots = _roots(organizations)
    for org_id, org in organizations.items():
        org.owners = share(frozenset((roots[org_id],)))
    for endpoint_id, endpoint in resources[ENDPOINT].items():
        endpoint.owners = share(frozenset(roots[o] for o in referrers.get(endpoint_id, ())))
    by_identifier: dict[str, dict[str, str | tuple[str, ...]]] = {}
    for resource_type, found in resources.items():
        values: dict[str, str | tuple[str, ...]] = {}
        for resource in found.values():
            for _system, value in resource.identifiers:
                held = values.get(value)
                if held is None:
                    values[value] = resource.id
                elif resource.id not in held:  # the same value under two systems: once
                    values[value] = (*((held,) if isinstance(held, str) else held), resource.id)
        by_identifier[resource_type] = values
    return DirectoryIndex(
        marks=Marks(newest_id, newest_time),
        resources=resources,
        ids={t: list(found) for t, found in resources.items()},
        deleted=deleted,
        children=children,
        referrers=referrers,
        by_identifier=by_identifier,
        packers=packers,
    )


def _compact(content: dict[str, Any]) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _roots(organizations: dict[str, Indexed]) -> dict[str, str]:
    """Each Organization's root: the top of its ``partOf`` chain (a parent that is not in the
    directory ends the chain; a cycle, which SOR cannot have, at the first repeat)."""
    roots: dict[str, str] = {}
    for start in organizations:
        path: list[str] = []
        seen: set[str] = set()
        current = start
        while current not in roots:
            path.append(current)
            seen.add(current)
            parent = organizations[current].part_of
            if parent is None or parent not in organizations or parent in seen:
                roots[current] = current
                break
            current = parent
        root = roots[current]
        for walked in path:
            roots[walked] = root
    return roots


def _indexed(version: FhirVersion, packed: bytes, share: Callable[[Any], Any]) -> Indexed:
    content = version.content
    assert content is not None
    names = tuple(
        n for n in (content.get("name"), *(content.get("alias") or ())) if isinstance(n, str)
    )
    identifiers = tuple(
        share((share(i.get("system")), share(str(i["value"]))))
        for i in content.get("identifier") or ()
        if isinstance(i, dict) and i.get("value") is not None
    )
    if version.resource_type == ORGANIZATION:
        codes = _codings(content.get("type") or [], share)
        part_of = _reference_id(content.get("partOf"), ORGANIZATION)
        endpoints = share(
            tuple(
                share(found)
                for found in (_reference_id(e, ENDPOINT) for e in content.get("endpoint") or ())
                if found is not None
            )
        )
        active = content.get("active")
        status = None
    else:
        connection = content.get("connectionType")
        codes = _codings([{"coding": [connection]}] if connection else [], share)
        part_of = None
        endpoints = ()
        active = None
        status = share(content.get("status"))
    meta = content.get("meta") or {}
    folded = [fold(name) for name in names]
    return Indexed(
        resource_type=share(version.resource_type),
        id=share(version.resource_id),
        packed=packed,
        version_id=share(str(meta.get("versionId", version.snapshot_id))),
        last_updated=share(version.last_updated),
        identifiers=identifiers,
        codes=share(codes),
        names=names,
        words=" ".join(map(_words, folded)),
        folded="".join("\n" + name for name in folded),
        part_of=share(part_of),
        active=active if isinstance(active, bool) else None,
        status=status,
        endpoints=endpoints,
    )


def _codings(
    concepts: Iterable[Any], share: Callable[[Any], Any]
) -> tuple[tuple[str | None, str], ...]:
    found = []
    for concept in concepts:
        for coding in (concept or {}).get("coding") or ():
            if isinstance(coding, dict) and coding.get("code") is not None:
                found.append(share((share(coding.get("system")), share(str(coding["code"])))))
    return tuple(found)


def _reference_id(reference: Any, resource_type: str) -> str | None:
    """The id in a literal reference ``<resource_type>/<id>`` (None for another type)."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    kind, _, rid = text.rpartition("/")
    return rid if kind.rpartition("/")[2] == resource_type and rid else None


_WORD = re.compile(r"\w+")


# The blocks of combining marks (accents once NFKD has taken them off their letters).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def fold(text: str) -> str:
    """``text`` as FHIR string search compares it: case- and accent-insensitive (å is a, but
    æ and ø, letters of their own, stay)."""
    if text.isascii():
        return text.lower()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold()))


def _words(folded: str) -> str:
    """`` word word`` of a folded text (each word after a space): ``" " + value`` found in it
    is a match from the start of a word."""
    return "".join(" " + w for w in _WORD.findall(folded))


class DirectoryCache:
    """The :class:`DirectoryIndex` of the latest versions, one per process.

    Versions are only ever added, each sync's in one transaction, so an index is current as
    long as no version is newer than its marks. A stale index is replaced once: the requests
    that find it stale share one build (keyed by the stale index's marks).

    :param uow_factory: a unit of work for the freshness check and for building
    """

    def __init__(self, uow_factory: Callable[[], UnitOfWork]) -> None:
        self._uow_factory = uow_factory
        self._builds: OnceCache[Marks | None, DirectoryIndex] = OnceCache(1)
        self._index: DirectoryIndex | None = None
        self._lock = threading.Lock()

    def index(self) -> DirectoryIndex:
        """The index of what is stored now (built by this call if it must be)."""
        held = self._index
        if held is not None:
            with self._uow_factory() as uow:
                if not has_newer_versions(uow, held.marks):
                    return held
        built = self._builds.get(held.marks if held else None, self._build)
        with self._lock:  # never back to an older index than one already taken
            if self._index is None or built.marks.version_id >= self._index.marks.version_id:
                self._index = built
        return built

    def _build(self) -> DirectoryIndex:
        with self._uow_factory() as uow:
            return build_index(uow)


# -- who sees what ------------------------------------------------------------------------------


def visible(resource: Indexed, owners: frozenset[str]) -> bool:
    """Whether a token restricted to ``owners`` (empty: unrestricted) sees ``resource``."""
    return not owners or not owners.isdisjoint(resource.owners)


# -- search -------------------------------------------------------------------------------------

Match = Callable[[Indexed], bool]


@dataclass
class Search:
    """A parsed search: the criteria (all must hold), what to include, the page asked for."""

    resource_type: str
    criteria: list[Match] = field(default_factory=list)
    ids: set[str] | None = None  # _id: the only candidates
    identifier_values: set[str] | None = None  # identifier: candidates by value
    part_of: set[str] | None = None  # partof: candidates among the children
    includes: list[str] = field(default_factory=list)
    revincludes: list[str] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    page: tuple[str, str] | None = None  # ("after" | "before", id)
    applied: list[tuple[str, str]] = field(default_factory=list)  # as the self link says
    ignored: list[str] = field(default_factory=list)


@dataclass
class SearchPage:
    search: Search
    total: int
    matches: list[Indexed]
    included: list[Indexed]
    next_page: str | None  # tokens for _page
    previous_page: str | None


def parse_search(
    resource_type: str, parameters: Sequence[tuple[str, str]], *, strict: bool = False
) -> Search:
    """``parameters`` (name, value) pairs in request order, as a :class:`Search`.

    :param strict: refuse unknown parameters (``Prefer: handling=strict``) instead of ignoring
    :raises InvalidSearch: see the class
    """
    search = Search(resource_type)
    known = {p.name: p for p in SEARCH_PARAMETERS[resource_type]}
    for raw_name, value in parameters:
        name, _, modifier = raw_name.partition(":")
        if name in _RESULT_PARAMETERS or name in ("_include", "_revinclude", "_sort"):
            _result_parameter(search, raw_name, name, modifier, value, strict)
            continue
        parameter = known.get(name)
        if parameter is None:
            if strict:
                raise InvalidSearch(f"unknown search parameter {raw_name!r}")
            search.ignored.append(raw_name)
            continue
        if modifier and modifier not in parameter.modifiers:
            raise InvalidSearch(f"the modifier :{modifier} is not supported on {name!r}")
        if value == "":
            continue  # FHIR: a parameter without a value is ignored
        _criterion(search, parameter, modifier, value)
        search.applied.append((raw_name, value))
    return search


def _result_parameter(
    search: Search, raw_name: str, name: str, modifier: str, value: str, strict: bool
) -> None:
    if name == "_count":
        if not re.fullmatch(r"\d{1,9}", value):
            raise InvalidSearch(f"_count must be a whole number from 0, not {value!r}")
        search.count = min(int(value), MAX_COUNT)
    elif name == "_page":
        search.page = decode_page(value)
    elif name in ("_include", "_revinclude"):
        allowed = (INCLUDES if name == "_include" else REVINCLUDES)[search.resource_type]
        wanted = value.removesuffix(":" + _include_target(value))
        if modifier or wanted not in allowed:
            if strict:
                raise InvalidSearch(f"{raw_name}={value} is not supported")
            search.ignored.append(f"{raw_name}={value}")
            return
        chosen = search.includes if name == "_include" else search.revincludes
        if wanted not in chosen:
            chosen.append(wanted)
        search.applied.append((name, wanted))
    elif name == "_sort":
        if value not in ("_id", ""):
            if strict:
                raise InvalidSearch("results are sorted by _id only")
            search.ignored.append(f"{raw_name}={value}")
    # _format, _pretty, _total: nothing to do here


def _include_target(value: str) -> str:
    parts = value.split(":")
    return parts[2] if len(parts) == 3 else "\0"


def _criterion(search: Search, parameter: SearchParameter, modifier: str, value: str) -> None:
    name = parameter.name
    if name == "_id":
        wanted = {_unescape(v) for v in _values(value)}
        search.ids = wanted if search.ids is None else search.ids & wanted
        search.criteria.append(lambda r: r.id in wanted)
    elif name == "_lastUpdated":
        search.criteria.append(_date_match([_date_range(v) for v in _values(value)]))
    elif name == "identifier":
        tokens = [_token(v) for v in _values(value)]
        search.criteria.append(_negated(_token_match(tokens, "identifiers"), modifier))
        if modifier != "not" and all(code for _, code in tokens):
            values = {code for _, code in tokens if code}
            found = search.identifier_values
            search.identifier_values = values if found is None else found & values
    elif name in ("type", "connection-type"):
        tokens = [_token(v) for v in _values(value)]
        search.criteria.append(_negated(_token_match(tokens, "codes"), modifier))
    elif name == "name":
        search.criteria.append(_name_match(_values(value), modifier))
    elif name == "partof":
        search.criteria.append(_part_of_match(search, value, modifier))
    elif name == "active":
        flags = {_boolean(v) for v in _values(value)}
        search.criteria.append(_negated(lambda r: r.active in flags, modifier))
    elif name == "status":
        codes = {_unescape(v) for v in _values(value)}
        search.criteria.append(_negated(lambda r: r.status in codes, modifier))
    else:  # pragma: no cover - SEARCH_PARAMETERS and this function go together
        raise AssertionError(name)


def _negated(match: Match, modifier: str) -> Match:
    return (lambda r: not match(r)) if modifier == "not" else match


def _split(value: str, separator: str) -> list[str]:
    """``value`` split at each ``separator`` not escaped with a backslash (the escapes are
    kept: :func:`_unescape` undoes them once the value is in its parts)."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _values(value: str) -> list[str]:
    """The values of a comma-separated list (any of them matches), empty ones left out."""
    return [part for part in _split(value, ",") if part]


def _unescape(value: str) -> str:
    return re.sub(r"\\([\\,|$])", r"\1", value)


def _token(value: str) -> tuple[str | None, str | None]:
    """``system|code`` -> (system, code); ``|code`` -> ("", code) (no system); ``code`` ->
    (None, code) (any system); ``system|`` -> (system, None) (any code)."""
    parts = _split(value, "|")
    if len(parts) == 1:
        return None, _unescape(parts[0])
    if len(parts) != 2:
        raise InvalidSearch(f"a token is system|code, not {value!r}")
    system, code = (_unescape(p) for p in parts)
    if not system and not code:
        raise InvalidSearch("a token needs a system or a code")
    return system, code or None


def _token_match(tokens: list[tuple[str | None, str | None]], attribute: str) -> Match:
    def match(resource: Indexed) -> bool:
        held: tuple[tuple[str | None, str], ...] = getattr(resource, attribute)
        for system, code in tokens:
            for held_system, held_code in held:
                if code is not None and held_code != code:
                    continue
                if system is None or (system == "" and not held_system) or system == held_system:
                    return True
        return False

    return match


def _name_match(values: list[str], modifier: str) -> Match:
    texts = [_unescape(v) for v in values]
    if modifier == "exact":
        exact = set(texts)
        return lambda r: any(n in exact for n in r.names)
    if modifier == "contains":
        folded = [fold(t) for t in texts]
        if len(folded) == 1:
            part = folded[0]
            return lambda r: part in r.folded
        return lambda r: any(f in r.folded for f in folded)
    words = [w for w in (_words(fold(t)) for t in texts) if w]
    # A value without a word character ("-") matches from the start of a name as written.
    starts = ["\n" + fold(t) for t in texts if not _words(fold(t))]
    if len(words) == 1 and not starts:  # the usual case, on every resource of a type: lean
        word = words[0]
        return lambda r: word in r.words
    return lambda r: any(w in r.words for w in words) or any(s in r.folded for s in starts)


def _part_of_match(search: Search, value: str, modifier: str) -> Match:
    if modifier == "missing":
        missing = _boolean(value)
        return lambda r: (r.part_of is None) is missing
    wanted = {_reference_value(v) for v in _values(value)}
    search.part_of = wanted if search.part_of is None else search.part_of & wanted
    return lambda r: r.part_of in wanted


def _reference_value(value: str) -> str:
    text = _unescape(value).rstrip("/")
    if "/" not in text:
        return text
    kind, _, rid = text.rpartition("/")
    if kind.rpartition("/")[2] != ORGANIZATION:
        raise InvalidSearch(f"partof refers to an Organization, not {value!r}")
    return rid


def _boolean(value: str) -> bool:
    if value not in ("true", "false"):
        raise InvalidSearch(f"expected true or false, not {value!r}")
    return value == "true"


_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end): the range a FHIR date search value covers, end exclusive."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    found = _DATE.fullmatch(text)
    if found is None:
        raise InvalidSearch(f"not a FHIR date, dateTime or instant: {value!r}")
    try:
        start, end = _span(found)
    except ValueError as exc:
        raise InvalidSearch(f"not a valid date: {value!r} ({exc})") from None
    return prefix, start, end


def _span(found: re.Match[str]) -> tuple[datetime, datetime]:
    parts = found.groupdict()
    year = int(parts["year"])
    if parts["month"] is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    month = int(parts["month"])
    if parts["day"] is None:
        start = datetime(year, month, 1, tzinfo=UTC)
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        return start, following
    day = datetime(year, month, int(parts["day"]), tzinfo=UTC)
    if parts["hour"] is None:
        return day, day + timedelta(days=1)
    zone: tzinfo = UTC  # without a time zone: UTC (FHIR leaves it to the server)
    if parts["zone"] and parts["zone"] != "Z":
        sign = 1 if parts["zone"][0] == "+" else -1
        hours, minutes = int(parts["zone"][1:3]), int(parts["zone"][4:6])
        zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    start = day.replace(hour=int(parts["hour"]), minute=int(parts["minute"]), tzinfo=zone)
    if parts["second"] is None:
        return start, start + timedelta(minutes=1)
    start = start.replace(second=int(parts["second"]))
    fraction = parts["fraction"]
    if fraction is None:
        return start, start + timedelta(seconds=1)
    micros = int((fraction + "000000")[:6])
    start = start.replace(microsecond=micros)
    return start, start + timedelta(microseconds=max(1, 10 ** (6 - len(fraction))))


def _date_match(ranges: list[tuple[str, datetime, datetime]]) -> Match:
    def holds(moment: datetime, prefix: str, start: datetime, end: datetime) -> bool:
        if prefix == "eq":
            return start <= moment < end
        if prefix == "ne":
            return not start <= moment < end
        if prefix in ("gt", "sa"):
            return moment >= end
        if prefix in ("lt", "eb"):
            return moment < start
        if prefix == "ge":
            return moment >= start
        return moment < end  # le

    if len(ranges) == 1:
        prefix, start, end = ranges[0]
        return lambda r: holds(r.last_updated, prefix, start, end)
    return lambda r: any(holds(r.last_updated, *found) for found in ranges)


# -- pages --------------------------------------------------------------------------------------


def encode_page(direction: str, resource_id: str) -> str:
    text = f"{direction}:{resource_id}".encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_page(token: str) -> tuple[str, str]:
    """(``after`` | ``before``, id) from a ``_page`` token of a link this API gave."""
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidSearch("_page is not a page of this server's links") from None
    direction, _, resource_id = text.partition(":")
    if direction not in ("after", "before", "version") or not resource_id:
        raise InvalidSearch("_page is not a page of this server's links")
    return direction, resource_id


def run_search(index: DirectoryIndex, search: Search, owners: frozenset[str]) -> SearchPage:
    """The page of matches ``search`` asks for, with its includes, as ``owners`` see them."""
    found = index.resources[search.resource_type]
    candidates = _candidates(index, search)
    criteria = search.criteria
    if not owners and not criteria and candidates is index.ids[search.resource_type]:
        matched = candidates  # everything, as it is: no copy
    else:
        matched = []
        for rid in candidates:
            resource = found.get(rid)
            if resource is None or (owners and owners.isdisjoint(resource.owners)):
                continue
            for match in criteria:
                if not match(resource):
                    break
            else:
                matched.append(rid)
    if search.page is None:
        start = 0
        end = search.count
    elif search.page[0] == "after":
        start = bisect_right(matched, search.page[1])
        end = start + search.count
    elif search.page[0] == "before":
        end = bisect_left(matched, search.page[1])
        start = max(0, end - search.count)
    else:
        raise InvalidSearch("_page is not a page of this search")
    end = min(end, len(matched))
    page = [found[rid] for rid in matched[start:end]]
    next_page = previous_page = None
    if start < end < len(matched):
        next_page = encode_page("after", matched[end - 1])
    if search.count > 0 and 0 < start < len(matched):
        previous_page = encode_page("before", matched[start])
    return SearchPage(
        search=search,
        total=len(matched),
        matches=page,
        included=_included(index, search, page, owners),
        next_page=next_page,
        previous_page=previous_page,
    )


def _candidates(index: DirectoryIndex, search: Search) -> list[str]:
    """The ids that may match, in id order: from the most selective look-up at hand."""
    if search.ids is not None:
        return sorted(search.ids)
    if search.identifier_values is not None:
        kind = search.resource_type
        return sorted(
            {rid for v in search.identifier_values for rid in index.with_identifier(kind, v)}
        )
    if search.part_of is not None:
        return sorted({rid for p in search.part_of for rid in index.children.get(p, ())})
    return index.ids[search.resource_type]


def _included(
    index: DirectoryIndex, search: Search, page: list[Indexed], owners: frozenset[str]
) -> list[Indexed]:
    shown = {(r.resource_type, r.id) for r in page}
    wanted: list[tuple[str, str]] = []
    for include in search.includes:  # Organization:endpoint
        assert include == "Organization:endpoint"
        wanted += sorted({(ENDPOINT, e) for r in page for e in r.endpoints})
    for revinclude in search.revincludes:
        source = index.children if revinclude == "Organization:partof" else index.referrers
        wanted += sorted({(ORGANIZATION, o) for r in page for o in source.get(r.id, ())})
    included = []
    for key in wanted:
        resource = index.get(*key)
        if key in shown or resource is None or not visible(resource, owners):
            continue
        shown.add(key)
        included.append(resource)
    return included


# -- history ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryPage:
    versions: list[FhirVersion]  # oldest first
    next_after: int | None  # the version id the next page starts after


def parse_instant(value: str) -> datetime:
    """``_since``: a FHIR instant (a date and time with a time zone); a date alone is its
    midnight UTC."""
    found = _DATE.fullmatch(value)
    if found is None or found["day"] is None or (found["hour"] and not found["zone"]):
        raise InvalidSearch(f"_since is an instant such as 2026-12-02T10:00:00Z, not {value!r}")
    try:
        return _span(found)[0]
    except ValueError as exc:
        raise InvalidSearch(f"not a valid instant: {value!r} ({exc})") from None


def read_history(
    uow: UnitOfWork,
    resource_types: Sequence[str],
    *,
    since: datetime | None,
    after_id: int,
    count: int,
) -> HistoryPage:
    """Up to ``count`` versions of ``resource_types`` made at or after ``since`` (FHIR's
    ``_since``), oldest first, from the version after ``after_id``."""
    # The repository takes versions strictly after; times are kept to the microsecond.
    after = since - timedelta(microseconds=1) if since is not None else None
    fetched: list[FhirVersion] = []
    for resource_type in resource_types:
        fetched += uow.fhir.history(resource_type, since=after, after_id=after_id, limit=count + 1)
    fetched.sort(key=lambda v: v.id)
    page = fetched[:count]
    more = len(fetched) > count
    return HistoryPage(page, page[-1].id if more and page else None)
