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

from soredi_sync.services.fhir_search.history import (
    HistoryPage,
    parse_instant,
    read_history,
)
from soredi_sync.services.fhir_search.index import (
    DirectoryCache,
    DirectoryIndex,
    Indexed,
    Marks,
    build_index,
    fold,
    has_newer_versions,
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
from soredi_sync.services.fhir_search.query import (
    DATE_PATTERN,
    Match,
    Search,
    SearchPage,
    date_span,
    decode_page,
    encode_page,
    parse_search,
    run_search,
)

__all__ = [
    "DATE_PATTERN",
    "DEFAULT_COUNT",
    "DirectoryCache",
    "DirectoryIndex",
    "ENDPOINT",
    "HistoryPage",
    "INCLUDES",
    "Indexed",
    "InvalidSearch",
    "MAX_COUNT",
    "Marks",
    "Match",
    "ORGANIZATION",
    "RESULT_PARAMETERS",
    "REVINCLUDES",
    "SEARCH_PARAMETERS",
    "Search",
    "SearchPage",
    "SearchParameter",
    "build_index",
    "date_span",
    "decode_page",
    "encode_page",
    "fold",
    "has_newer_versions",
    "name_words",
    "parse_instant",
    "parse_search",
    "read_history",
    "run_search",
    "visible",
]
