"""The DGWS/SOSI security errors: credentials, the STS's refusals and unusable ID cards."""

from __future__ import annotations

from datetime import datetime

from soredi_sync.errors import SourceError


class DgwsError(SourceError):
    """Base of the DGWS/SOSI security errors."""


class CredentialsError(DgwsError):
    """The organisation certificate or key could not be loaded (never names the password)."""


class IdCardRefused(DgwsError):
    """The STS answered a SOAP fault instead of an ID card."""

    def __init__(self, sts_url: str, code: str | None, message: str) -> None:
        super().__init__(f"the STS at {sts_url} refused the ID card: {code}: {message}")
        self.sts_url = sts_url
        self.code = code
        self.fault_message = message


class IdCardExpired(DgwsError):
    """The STS issued a card that is already (or not yet) valid; retrying will not help."""

    def __init__(self, sts_url: str, not_before: datetime, not_on_or_after: datetime) -> None:
        super().__init__(
            f"the STS at {sts_url} issued an ID card valid {not_before.isoformat()} .. "
            f"{not_on_or_after.isoformat()}, which is not valid now (check the clocks)"
        )
        self.not_before = not_before
        self.not_on_or_after = not_on_or_after


class IdCardInvalid(DgwsError):
    """The STS answer was not a usable, correctly signed ID card."""

    def __init__(self, sts_url: str, detail: str) -> None:
        super().__init__(f"the STS at {sts_url} gave an unusable ID card answer: {detail}")
        self.sts_url = sts_url


class StsUnavailable(DgwsError):
    def __init__(self, sts_url: str, attempts: int, cause: str) -> None:
        super().__init__(f"the STS at {sts_url} kept failing after {attempts} attempts: {cause}")
