"""Errors of the SOAP clients; all are :class:`~soredi_sync.errors.SourceError`."""

from __future__ import annotations

from soredi_sync.errors import SourceError


class SoapFault(SourceError):
    """The service answered with a SOAP Fault. Never retried: a fault is a verdict."""

    def __init__(self, service: str, operation: str, code: str | None, message: str) -> None:
        super().__init__(f"{service} {operation} answered a SOAP fault {code!r}: {message!r}")
        self.service = service
        self.operation = operation
        self.code = code
        self.fault_message = message


class SoapUnavailable(SourceError):
    """The service stayed unreachable, slow or 5xx through every retry."""

    def __init__(self, service: str, operation: str, attempts: int, cause: str) -> None:
        super().__init__(f"{service} {operation} kept failing after {attempts} attempts: {cause}")
        self.service = service
        self.operation = operation
        self.attempts = attempts


class SoapProtocolError(SourceError):
    """The answer was not a usable SOAP envelope (malformed XML, wrong shape, 4xx)."""

    def __init__(self, service: str, operation: str, detail: str) -> None:
        super().__init__(f"{service} {operation} gave an unusable answer: {detail}")
        self.service = service
        self.operation = operation


class SoapNotConfigured(SourceError):
    """A service is used while only the shipped, modelled contract and no address is set."""

    def __init__(self, service: str, setting: str) -> None:
        super().__init__(
            f"{service} has no endpoint configured: set {setting} (and the real WSDL, "
            "see docs/soap.md); the shipped contract's address is a placeholder"
        )
        self.service = service
