"""DGWS / SOSI security for the zeep clients: ID card from a SOSI STS, cached, added to each call.

MODELLED: the message shapes follow the published DGWS 1.0.1 / SOSI descriptions (a WS-Trust
``RequestSecurityToken`` carrying a SAML 2.0 assertion, the "ID card", signed with the
organisation's certificate; the STS answers with an ID card it signed itself), but they are not
checked against the real NSP STS. Names and namespaces live in :mod:`.names` only.

Signing and verification use ``signxml`` (XML-DSig, RSA-SHA256, exclusive C14N); keys and
certificates are loaded with ``cryptography``. Nothing here logs key material or card content.

Flow: :class:`IdCardProvider` asks :class:`StsClient` for a card, keeps it until
``refresh_margin`` seconds before it expires, and :class:`DgwsPlugin` (a zeep plugin) puts the
card into ``wsse:Security`` and a ``medcom:Header`` into every outgoing envelope.

Modules: :mod:`.names` (namespaces, attribute names, XML helpers), :mod:`.errors`,
:mod:`.signing` (credentials, XML-DSig), :mod:`.idcard` (the card), :mod:`.sts` (STS client and
cache), :mod:`.plugin` (the zeep plugin and :func:`make_dgws_plugin`). The settings are
:class:`soredi_sync.config.DgwsSettings`.
"""

from __future__ import annotations

from soredi_sync.soap.dgws.errors import (
    CredentialsError,
    DgwsError,
    IdCardExpired,
    IdCardInvalid,
    IdCardRefused,
    StsUnavailable,
)
from soredi_sync.soap.dgws.idcard import IdCard, build_id_card, card_attribute
from soredi_sync.soap.dgws.plugin import DgwsPlugin, make_dgws_plugin
from soredi_sync.soap.dgws.signing import (
    Credentials,
    certificate_in_signature,
    load_credentials,
    sign_enveloped,
    verify_enveloped,
)
from soredi_sync.soap.dgws.sts import IdCardProvider, StsClient

__all__ = [
    "Credentials",
    "CredentialsError",
    "DgwsError",
    "DgwsPlugin",
    "IdCard",
    "IdCardExpired",
    "IdCardInvalid",
    "IdCardProvider",
    "IdCardRefused",
    "StsClient",
    "StsUnavailable",
    "build_id_card",
    "card_attribute",
    "certificate_in_signature",
    "load_credentials",
    "make_dgws_plugin",
    "sign_enveloped",
    "verify_enveloped",
]
