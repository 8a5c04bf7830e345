"""SKRS replication client: pages of capability row versions after an offset.

The caller stores ``page.next_offset`` in the same transaction as the page's data and passes
it back on the next run; paging from a stored offset therefore neither skips nor repeats
entries, even after a crash between pages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from soredi_sync.soap import mapping
from soredi_sync.soap.errors import SoapProtocolError
from soredi_sync.soap.records import ReplicationPage
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.transport import SoapClient, make_service, security_plugins

logger = logging.getLogger(__name__)

SERVICE = "SKRS"


class SkrsReplicationClient(SoapClient):
    """The replication service over zeep (see :func:`make_skrs_client`)."""

    SERVICE = SERVICE

    def replicate(
        self,
        offset: str | None = None,
        *,
        register: str | None = None,
        datatype: str | None = None,
        version: int | None = None,
        max_records: int | None = None,
    ) -> ReplicationPage:
        """One page of entries after ``offset`` (None: from the start).

        :raises SourceError: (``SoapFault``, ``SoapUnavailable``, ``SoapProtocolError``).
        """
        s = self._settings
        limit = max_records if max_records is not None else s.skrs_max_records
        if limit < 1:
            raise ValueError(f"max_records must be >= 1, got {limit}")
        request = mapping.replication_request(
            register or s.skrs_register,
            datatype or s.skrs_datatype,
            version if version is not None else s.skrs_version,
            offset,
            limit,
        )
        entries = self._call(
            "replicate", lambda: self._service.replicate(**request), mapping.capability_versions
        )
        if len(entries) > limit:
            raise SoapProtocolError(
                SERVICE, "replicate", f"asked for {limit} records, got {len(entries)}"
            )
        next_offset = entries[-1].offset if entries else offset
        logger.info(
            "SKRS %s after offset %r: %d entries, next offset %r",
            request["datatype"],
            offset,
            len(entries),
            next_offset,
        )
        return ReplicationPage(
            entries=entries, requested_offset=offset, next_offset=next_offset, max_records=limit
        )

    def pages(
        self,
        offset: str | None = None,
        *,
        register: str | None = None,
        datatype: str | None = None,
        version: int | None = None,
        max_records: int | None = None,
    ) -> Iterator[ReplicationPage]:
        """Pages from ``offset`` until caught up (a page that is not full; it is yielded too).

        Each page is yielded before the next is asked for, so the caller commits page *n* and
        its ``next_offset`` before page *n + 1* exists: a crash loses at most uncommitted work.
        """
        current = offset
        while True:
            page = self.replicate(
                current,
                register=register,
                datatype=datatype,
                version=version,
                max_records=max_records,
            )
            yield page
            if page.caught_up:
                return
            current = page.next_offset


def make_skrs_client(
    settings: SoapSettings, sleep: Callable[[float], None] | None = None
) -> SkrsReplicationClient:
    """Read the configured WSDL and bind to the configured address (does I/O for a URL WSDL)."""
    return SkrsReplicationClient(
        make_service(settings.skrs, settings, security_plugins(settings)), settings, sleep
    )
