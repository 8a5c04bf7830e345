"""What goes wrong in the console, as pages: a page raises :class:`UiError` (or one of its
kinds) and ``ui/route.py`` renders it in the console's layout, translated. The use cases' own
errors (not found, no snapshot yet, another owner's data) are shown the same way."""

from __future__ import annotations

from typing import Any

from soredi_sync.errors import NoSnapshot, NotFound
from soredi_sync.services.tokens import OutsideOwners
from soredi_sync.ui.i18n import N_


class UiError(Exception):
    """An error page: ``message`` is an English msgid (translated when shown), formatted with
    ``params`` after translation (``UiError("No unit %(sor_id)s.", sor_id=...)``)."""

    status = 400
    title = N_("Something is wrong with the request")

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


class UiForbidden(UiError):
    """A 403 page: outside the token's scopes or owners."""

    status = 403
    title = N_("Not allowed")


class UiNotFound(UiError):
    status = 404
    title = N_("Not found")


class UiUnavailable(UiError):
    status = 503
    title = N_("Not available yet")


class CsrfRefused(UiForbidden):
    def __init__(self) -> None:
        super().__init__(
            N_(
                "The form has expired or did not come from this console. Reload the page "
                "and try again."
            )
        )


class SignInRequired(Exception):
    """Not signed in, or the session's token was revoked: off to the sign-in page."""

    def __init__(self, next_path: str | None, ended: bool) -> None:
        super().__init__("sign-in required")
        self.next_path = next_path
        self.ended = ended


INVALID_INPUT = N_("The address or the form has a value that is not valid.")
NOT_ANSWERED = N_("The request could not be answered.")
FAILED = N_("Something went wrong on the server. It has been logged; try again later.")


def from_use_case(exc: Exception) -> UiError | None:
    """The page for an error of the use cases, or None when it is not one of theirs."""
    if isinstance(exc, NotFound):
        return UiNotFound(N_("Nothing was found for %(key)s."), key=exc.key)
    if isinstance(exc, NoSnapshot):
        return UiUnavailable(N_("Nothing has been synced yet: run soredi-sync sync first."))
    if isinstance(exc, OutsideOwners):
        return UiForbidden(N_("Your token may not see the data of this owner."))
    return None
