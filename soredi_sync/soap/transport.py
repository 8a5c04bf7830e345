"""Building zeep clients and calling them under the shared retry policy.

Transient (retried): ``requests`` connection errors and timeouts, and zeep ``TransportError``
with an HTTP status >= 500 (a 503 from a load balancer, a 502 from a proxy). Never retried:
``zeep.exceptions.Fault`` (a SOAP fault is the service's verdict), other transport errors
(4xx, a malformed envelope on a 200) and zeep's parse/validation errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar, cast

import requests
import zeep
from lxml import etree
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault, TransportError
from zeep.proxy import ServiceProxy
from zeep.transports import Transport

from soredi_sync.retry import retrying
from soredi_sync.soap.errors import (
    SoapFault,
    SoapNotConfigured,
    SoapProtocolError,
    SoapUnavailable,
)
from soredi_sync.soap.settings import ServiceEndpoint, SoapSettings, contract_path

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TransientSoapTransportError(Exception):
    """A zeep ``TransportError`` with HTTP status >= 500, re-raised so tenacity can retry it."""

    def __init__(self, error: TransportError) -> None:
        super().__init__(f"HTTP {error.status_code}")
        self.error = error
        self.status_code = int(error.status_code)


TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    TransientSoapTransportError,
)


def make_service(
    endpoint: ServiceEndpoint, settings: SoapSettings, plugins: Sequence[Any] = ()
) -> ServiceProxy:
    """A zeep service proxy with explicit timeouts, pointed at the configured address.

    Reads the WSDL (file path or URL) now; call from the composition root, not at import.
    ``plugins`` are zeep plugins, e.g. the DGWS security header (:mod:`soredi_sync.soap.dgws`).
    """
    # zeep's constructors are unannotated; the proxy is a ServiceProxy either way.
    if endpoint.address is None and _is_shipped(endpoint.wsdl):
        name = Path(endpoint.wsdl).stem
        raise SoapNotConfigured(name.upper(), f"SOREDI_SOAP__{name.upper()}__ADDRESS")
    transport = Transport(  # type: ignore[no-untyped-call]
        timeout=settings.timeout, operation_timeout=settings.operation_timeout
    )
    try:
        client = zeep.Client(  # type: ignore[no-untyped-call]
            endpoint.wsdl, transport=transport, plugins=list(plugins)
        )
    except requests.RequestException as exc:
        raise SoapUnavailable("WSDL", endpoint.wsdl, 1, f"cannot be fetched: {exc}") from exc
    except (ZeepError, OSError, etree.XMLSyntaxError) as exc:
        raise SoapProtocolError("WSDL", endpoint.wsdl, f"{type(exc).__name__}: {exc}") from exc
    if endpoint.address:
        proxy = client.create_service(  # type: ignore[no-untyped-call]
            endpoint.binding, endpoint.address
        )
    else:
        proxy = client.bind(*_service_and_port(client, endpoint.binding))
    return cast(ServiceProxy, proxy)


def _is_shipped(wsdl: str) -> bool:
    """True for a WSDL of ``soap/contracts`` (its soap:address is a placeholder)."""
    try:
        return Path(wsdl).resolve().parent == Path(contract_path("x")).resolve().parent
    except (OSError, ValueError):
        return False


def _service_and_port(client: zeep.Client, binding: str) -> tuple[str, str]:
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            if port.binding.name.text == binding:
                return service.name, port.name
    raise SoapProtocolError("WSDL", binding, f"no port uses binding {binding!r}")


def call(
    service_name: str,
    operation: str,
    invoke: Callable[[], Any],
    settings: SoapSettings,
    sleep: Callable[[float], None] | None = None,
) -> Any:
    """Run ``invoke`` (one SOAP call) under the retry policy; map failures to project errors.

    :raises SoapFault: the service answered a fault (never retried).
    :raises SoapUnavailable: transient failures through every attempt.
    :raises SoapProtocolError: a non-transient transport or parse error.
    """
    kwargs = {"sleep": sleep} if sleep else {}
    try:
        for attempt in retrying(settings.retry, TRANSIENT_EXCEPTIONS, **kwargs):
            with attempt:
                return _once(invoke)
    except Fault as exc:
        code = exc.code if isinstance(exc.code, str) or exc.code is None else str(exc.code)
        raise SoapFault(service_name, operation, code, str(exc.message)) from exc
    except TransientSoapTransportError as exc:
        raise SoapUnavailable(
            service_name, operation, settings.retry.attempts, f"HTTP {exc.status_code}"
        ) from exc
    except requests.Timeout as exc:
        raise SoapUnavailable(
            service_name,
            operation,
            settings.retry.attempts,
            f"timed out (operation_timeout={settings.operation_timeout} s)",
        ) from exc
    except requests.ConnectionError as exc:
        raise SoapUnavailable(
            service_name, operation, settings.retry.attempts, f"connection failed: {exc}"
        ) from exc
    except TransportError as exc:
        raise SoapProtocolError(
            service_name, operation, f"HTTP {exc.status_code}: {_first_line(exc.message)}"
        ) from exc
    except ZeepError as exc:
        raise SoapProtocolError(service_name, operation, f"{type(exc).__name__}: {exc}") from exc
    raise AssertionError("unreachable: tenacity re-raises the last error")


class SoapClient:
    """What every service client shares: the zeep proxy, settings, and one call wrapper.

    Subclasses set :attr:`SERVICE` (the name in errors and logs) and call :meth:`_call`.
    """

    SERVICE: ClassVar[str]

    def __init__(
        self,
        service: Any,
        settings: SoapSettings,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._service = service
        self._settings = settings
        self._sleep = sleep

    def _call(self, operation: str, invoke: Callable[[], Any], parse: Callable[[Any], T]) -> T:
        """Run one call under the retry policy and map the answer with ``parse``.

        :raises SoapProtocolError: ``parse`` found the answer unusable (ValueError, TypeError,
            KeyError), besides what :func:`call` raises
        """
        response = call(self.SERVICE, operation, invoke, self._settings, self._sleep)
        try:
            return parse(response)
        except (ValueError, TypeError, KeyError) as exc:
            raise SoapProtocolError(self.SERVICE, operation, str(exc)) from exc


def _once(invoke: Callable[[], Any]) -> Any:
    try:
        return invoke()
    except TransportError as exc:
        if exc.status_code is not None and int(exc.status_code) >= 500:
            raise TransientSoapTransportError(exc) from exc
        raise


def _first_line(text: object) -> str:
    return str(text).splitlines()[0] if str(text) else ""


def security_plugins(settings: SoapSettings) -> list[Any]:
    """The DGWS/SOSI header plugin when ``settings.dgws`` is configured, else none."""
    if settings.dgws is None:
        return []
    from soredi_sync.soap.dgws import make_dgws_plugin

    return [make_dgws_plugin(settings.dgws)]
