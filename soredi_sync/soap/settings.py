"""Settings of the SOAP clients: endpoints, WSDL locations, timeouts.

Defaults point at the modelled contracts shipped in ``contracts/`` and at no endpoint; the
composition root fills :class:`SoapSettings` (from ``Settings`` once it has a ``soap`` section)
and an unset address means "the address in the WSDL".
"""

from __future__ import annotations

from importlib import resources

from pydantic import BaseModel, Field

from soredi_sync.config import RetrySettings

SORLS_BINDING = "{urn:soredi:modelled:sorls:1}SorLookupBinding"
SKRS_BINDING = "{urn:soredi:modelled:skrs:1}StamdataReplicationBinding"
EAN_EDI_TYPE_DATATYPE = "sor/v2/eanlocationcodeeditype/v1"


def contract_path(name: str) -> str:
    """Filesystem path of a shipped (modelled) contract, e.g. ``sorls.wsdl``."""
    return str(resources.files("soredi_sync.soap").joinpath("contracts", name))


class ServiceEndpoint(BaseModel):
    """Where one service's WSDL is read and where its calls go."""

    wsdl: str
    address: str | None = None  # None: the soap:address of the WSDL
    binding: str


class SoapSettings(BaseModel):
    """Everything the SORLS and SKRS clients need; no I/O on construction."""

    sorls: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(
            wsdl=contract_path("sorls.wsdl"), binding=SORLS_BINDING
        )
    )
    skrs: ServiceEndpoint = Field(
        default_factory=lambda: ServiceEndpoint(
            wsdl=contract_path("skrs.wsdl"), binding=SKRS_BINDING
        )
    )
    # seconds for fetching the WSDL/XSD and for each operation call (zeep's default is none)
    timeout: float = Field(default=30.0, gt=0)
    operation_timeout: float = Field(default=60.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    skrs_register: str = "sor"
    skrs_datatype: str = EAN_EDI_TYPE_DATATYPE
    skrs_version: int = Field(default=1, ge=1)
    skrs_max_records: int = Field(default=1000, ge=1)
