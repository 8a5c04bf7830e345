"""SORUS update client: submit message-type changes on GLNs, get a receipt per batch.

The operation is MODELLED (see ``contracts/sorus.xsd`` and docs/soap.md). Calls run under the
shared retry policy like every SOAP call: a change is "advertise type T on GLN G" or "stop
advertising it", so sending a batch twice (a retry after a lost answer) asks for the same end
state, and SORUS answers with a second receipt rather than a second change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from soredi_sync.soap import mapping
from soredi_sync.soap.errors import SoapProtocolError
from soredi_sync.soap.records import EdiTypeChange, SubmissionReceipt
from soredi_sync.soap.settings import SoapSettings
from soredi_sync.soap.transport import SoapClient, make_service, security_plugins

logger = logging.getLogger(__name__)

SERVICE = "SORUS"


class SorUpdater(Protocol):
    def submit(self, reference: str, changes: Sequence[EdiTypeChange]) -> SubmissionReceipt:
        """:raises SourceError: (``SoapFault``, ``SoapUnavailable``, ``SoapProtocolError``)."""
        ...


class SorusClient(SoapClient):
    """SORUS over zeep (see :func:`make_sorus_client`)."""

    SERVICE = SERVICE

    @property
    def batch_size(self) -> int:
        return self._settings.sorus_batch_size

    def submit(self, reference: str, changes: Sequence[EdiTypeChange]) -> SubmissionReceipt:
        """Send one batch; the receipt holds exactly one result per change, in any order.

        :raises ValueError: no changes, or repeated change ids.
        :raises SoapProtocolError: the answer misses or invents a change id.
        :raises SourceError: (``SoapFault``, ``SoapUnavailable``) from the call.
        """
        if not changes:
            raise ValueError("a SORUS submission needs at least one change")
        ids = [change.change_id for change in changes]
        if len(set(ids)) != len(ids):
            raise ValueError("change ids must be unique within a submission")
        request = mapping.sorus_request(reference, changes)
        receipt = self._call(
            "SubmitEdiTypeChanges",
            lambda: self._service.SubmitEdiTypeChanges(**request),
            mapping.submission_receipt,
        )
        answered = [result.change_id for result in receipt.results]
        if sorted(answered) != sorted(ids):
            missing = sorted(set(ids) - set(answered))
            extra = sorted(set(answered) - set(ids))
            raise SoapProtocolError(
                SERVICE,
                "SubmitEdiTypeChanges",
                f"the receipt {receipt.submission_id} does not answer each change once "
                f"(missing {missing}, unexpected {extra})",
            )
        accepted = sum(result.accepted for result in receipt.results)
        logger.info(
            "SORUS receipt %s for %r: %d accepted, %d rejected",
            receipt.submission_id,
            reference,
            accepted,
            len(receipt.results) - accepted,
        )
        return receipt


def make_sorus_client(
    settings: SoapSettings, sleep: Callable[[float], None] | None = None
) -> SorusClient:
    """Read the configured WSDL and bind to the configured address (does I/O for a URL WSDL)."""
    return SorusClient(
        make_service(settings.sorus, settings, security_plugins(settings)), settings, sleep
    )
