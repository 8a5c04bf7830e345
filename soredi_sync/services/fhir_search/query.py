"""Parsing a search, matching it on the index, and its pages."""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from soredi_sync.services.fhir_search.index import (
    DirectoryIndex,
    Indexed,
    fold,
    name_words,
    visible,
)
from soredi_sync.services.fhir_search.parameters import (
    DEFAULT_COUNT,
    ENDPOINT,
    INCLUDES,
    MAX_COUNT,
    ORGANIZATION,
    RESULT_PARAMETERS,
    REVINCLUDES,
    SEARCH_PARAMETERS,
    InvalidSearch,
    SearchParameter,
)

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
        if name in RESULT_PARAMETERS or name in ("_include", "_revinclude", "_sort"):
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
    words = [w for w in (name_words(fold(t)) for t in texts) if w]
    # A value without a word character ("-") matches from the start of a name as written.
    starts = ["\n" + fold(t) for t in texts if not name_words(fold(t))]
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
DATE_PATTERN = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end): the range a FHIR date search value covers, end exclusive."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    text = value[2:] if value[:2] in _PREFIXES else value
    found = DATE_PATTERN.fullmatch(text)
    if found is None:
        raise InvalidSearch(f"not a FHIR date, dateTime or instant: {value!r}")
    try:
        start, end = date_span(found)
    except ValueError as exc:
        raise InvalidSearch(f"not a valid date: {value!r} ({exc})") from None
    return prefix, start, end


def date_span(found: re.Match[str]) -> tuple[datetime, datetime]:
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
