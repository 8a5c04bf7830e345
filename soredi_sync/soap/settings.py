"""Settings of the SOAP clients: endpoints, WSDL locations, timeouts (``[soap]`` in Settings).

Defaults point at the modelled contracts shipped in ``contracts/`` and at no endpoint; an unset
address means "the address in the WSDL".
"""

from __future__ import annotations

from soredi_sync.config import (
    EAN_EDI_TYPE_DATATYPE,
    SKRS_BINDING,
    SORLS_BINDING,
    SORUS_BINDING,
    ServiceEndpoint,
    SoapSettings,
    contract_path,
)

__all__ = [
    "EAN_EDI_TYPE_DATATYPE",
    "SKRS_BINDING",
    "SORLS_BINDING",
    "SORUS_BINDING",
    "ServiceEndpoint",
    "SoapSettings",
    "contract_path",
]
