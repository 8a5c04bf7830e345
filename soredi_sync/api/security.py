"""Bearer-token authentication and scope checks.

Missing, unknown or revoked token → 401; a token without the endpoint's scope → 403. Owner
restrictions are checked by each endpoint once it knows whose data it is about. The token is
never logged; log the record's id or name.
"""

from __future__ import annotations

from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from soredi_sync.api.problems import Forbidden, Unauthorized
from soredi_sync.ports.records import TokenRecord
from soredi_sync.services.tokens import Scope, TokenVerifier

# Request scope key: (token, record) as api/limits.RequestLimits verified it for this request.
VERIFIED_TOKEN = "soredi.verified_token"
# Configuration only (no I/O): tells OpenAPI that endpoints take a bearer token.
bearer_scheme = HTTPBearer(
    auto_error=False,
    bearerFormat="sst_…",
    description="A token from `soredi-sync token create --scope …`.",
)


def authorize(
    verifier: TokenVerifier,
    credentials: HTTPAuthorizationCredentials | None,
    scope: Scope,
    verified: tuple[str, TokenRecord] | None = None,
) -> TokenRecord:
    """The caller's token record if the token is live and has ``scope``.

    :param verified: the request's ``VERIFIED_TOKEN``, if any: the same token's verdict of a
        moment ago in this request, taken instead of a second look-up
    :raises Unauthorized: no token, or an unknown or revoked one
    :raises Forbidden: the token lacks ``scope``
    """
    if credentials is None or not credentials.credentials:
        raise Unauthorized("a bearer token is required")
    if verified is not None and verified[0] == credentials.credentials:
        record: TokenRecord | None = verified[1]
    else:
        record = verifier.verify(credentials.credentials)
    if record is None:
        raise Unauthorized("the bearer token is unknown or revoked")
    if scope not in record.scopes:
        raise Forbidden(f"the token lacks the scope {scope.value!r}")
    return record
