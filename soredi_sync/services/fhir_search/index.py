"""The per-process index of the current versions (:class:`DirectoryCache`) and who sees what."""

from __future__ import annotations

import itertools
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import zstandard

from soredi_sync.ports.records import FhirVersion
from soredi_sync.ports.storage import UnitOfWork
from soredi_sync.services.fhir_directory import RESOURCE_TYPES
from soredi_sync.services.fhir_search.parameters import ENDPOINT, ORGANIZATION
from soredi_sync.services.once import OnceCache

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


_PACKER_SAMPLES = 2000  # the first resources of a type, the packer's dictionary is made of


class _Packer:
    """Compresses the JSON of one resource type with a Zstandard dictionary trained on its
    first resources: the national directory's 184 MB of JSON is held in about 15 MB (Python's
    bytes objects included), and a page of 1,000 is inflated in a few milliseconds. Packing is
    for the one thread that builds the index; unpacking is safe from any thread (each has its
    own decompressor)."""

    _DICTIONARY_BYTES = 16 * 1024

    def __init__(self, samples: Sequence[bytes]) -> None:
        dictionary: zstandard.ZstdCompressionDict | None = None
        if samples:
            try:
                dictionary = zstandard.train_dictionary(self._DICTIONARY_BYTES, list(samples))
            except zstandard.ZstdError:  # too few or too alike to train on: their bytes
                raw = b"".join(samples)[-self._DICTIONARY_BYTES :]
                dictionary = zstandard.ZstdCompressionDict(
                    raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT
                )
        self._dictionary = dictionary
        self._compressor = zstandard.ZstdCompressor(level=3, dict_data=dictionary)
        self._local = threading.local()

    def pack(self, data: bytes) -> bytes:
        # compress() answers in a buffer of the worst-case size, only marked shorter: copied
        # out, the national index holds 15 MB of it instead of 185 MB (tracemalloc).
        return memoryview(self._compressor.compress(data)).tobytes()

    def unpack(self, data: bytes) -> bytes:
        decompressor = getattr(self._local, "decompressor", None)
        if decompressor is None:
            decompressor = zstandard.ZstdDecompressor(dict_data=self._dictionary)
            self._local.decompressor = decompressor
        return decompressor.decompress(data)


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


def build_index(uow: UnitOfWork) -> DirectoryIndex:
    """The index of the latest versions: the newest version id is read first and only the
    latest version of each resource up to it is then read (a version stored meanwhile is newer
    than the marks, so the next look finds the index stale)."""
    shared: dict[Any, Any] = {}  # one object for the many equal ids, systems, codes and times

    def share(value: Any) -> Any:
        return shared.setdefault(value, value)

    newest_id = uow.fhir.newest_id()
    resources: dict[str, dict[str, Indexed]] = {}
    deleted: dict[str, frozenset[str]] = {}
    packers: dict[str, _Packer] = {}
    newest_time: datetime | None = None
    for resource_type in RESOURCE_TYPES:
        latest: dict[str, Indexed] = {}
        gone: set[str] = set()
        versions = map(_parsed, uow.fhir.iter_latest(resource_type, up_to_id=newest_id))
        first = list(itertools.islice(versions, _PACKER_SAMPLES))
        packer = _Packer([orjson.dumps(content) for _v, content in first if content is not None])
        for version, content in itertools.chain(first, versions):
            if newest_time is None or version.last_updated > newest_time:
                newest_time = version.last_updated
            rid = share(version.resource_id)
            if content is None:
                gone.add(rid)
            else:
                packed = packer.pack(orjson.dumps(content))
                latest[rid] = _indexed(version, content, packed, share)
        resources[resource_type] = {rid: latest[rid] for rid in sorted(latest)}
        deleted[resource_type] = frozenset(gone)
        packers[resource_type] = packer
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


def _parsed(version: FhirVersion) -> tuple[FhirVersion, dict[str, Any] | None]:
    """A version read as JSON text, with its content decoded (None: deleted)."""
    if version.deleted or version.content_json is None:
        return version, None
    return version, orjson.loads(version.content_json)


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


def _indexed(
    version: FhirVersion, content: dict[str, Any], packed: bytes, share: Callable[[Any], Any]
) -> Indexed:
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
        words=" ".join(map(name_words, folded)),
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


def name_words(folded: str) -> str:
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

    @property
    def held(self) -> DirectoryIndex | None:
        """The index built last (None before the first), without looking for newer versions."""
        return self._index

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
