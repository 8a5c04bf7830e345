"""Typed settings: defaults from ``config/soredi-sync.toml``, overridden by ``SOREDI_*`` variables.

The ``config/`` folder ships inside the package (``soredi_sync/_config`` in a wheel);
``SOREDI_CONFIG_DIR`` points at an operator's copy instead (``soredi-sync config init DIR``).
Its tables and routing policy are :mod:`soredi_sync.reference_data`, not settings.

Construct :class:`Settings` only in an entrypoint (CLI, tests); nothing here runs at import time.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def packaged_dir(name: Literal["config", "migrations"]) -> Path:
    """The folder the package ships: ``soredi_sync/_config`` or ``soredi_sync/_migrations``
    in an installed wheel, the checkout's top-level ``config/`` or ``migrations/`` in a
    checkout or an editable install (pyproject.toml's ``package-dir`` maps one to the other).
    """
    inside = resources.files("soredi_sync").joinpath(f"_{name}")
    if isinstance(inside, Path) and inside.is_dir():
        return inside
    return Path(__file__).resolve().parent.parent / name


def config_dir() -> Path:
    """Where the TOML defaults and data files live: ``SOREDI_CONFIG_DIR`` (an operator's copy,
    made by ``soredi-sync config init``) when set, otherwise the package's own defaults."""
    override = os.environ.get("SOREDI_CONFIG_DIR")
    if override:
        return Path(override)
    return packaged_dir("config")


def config_file() -> Path:
    """The settings file read: ``SOREDI_CONFIG_FILE``, else ``soredi-sync.toml`` in
    :func:`config_dir` (a missing file gives the built-in defaults)."""
    override = os.environ.get("SOREDI_CONFIG_FILE")
    return Path(override) if override else config_dir() / "soredi-sync.toml"


class SourceSettings(BaseModel):
    base_url: str = "https://sor-filer.sundhedsdata.dk/"
    sor_xml_path: str = "sor.zip"
    sor_csv_path: str = "Sor_complete.zip"
    sor_xml_member: str = "Sor.xml"
    edi_types_member: str = "EDITypes.csv"
    gln_edi_types_member: str = "LocationsCodeEDITypeMap.csv"
    glns_member: str = "LocationsCodes.csv"

    @field_validator("base_url")
    @classmethod
    def _end_with_slash(cls, value: str) -> str:
        # Relative file paths are joined onto the base URL, which needs its trailing slash.
        return value if value.endswith("/") else value + "/"

    def url(self, path: str) -> str:
        return self.base_url + path.lstrip("/")


class HttpSettings(BaseModel):
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    write_timeout: float = 30.0
    pool_timeout: float = 10.0
    user_agent: str = "soredi-sync"


class RetrySettings(BaseModel):
    attempts: int = Field(default=4, ge=1)
    initial_wait: float = Field(default=1.0, ge=0)
    max_wait: float = Field(default=30.0, ge=0)


class GuardSettings(BaseModel):
    max_gln_removal_ratio: float = Field(default=0.05, ge=0, le=1)
    max_capability_removal_ratio: float = Field(default=0.10, ge=0, le=1)
    max_unpacked_bytes: int = Field(default=4 * 1024**3, gt=0)
    max_compression_ratio: float = Field(default=200.0, gt=1)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # How long a verified token is trusted without asking the database: a revoked token keeps
    # working in a running server for at most this long.
    token_cache_seconds: float = Field(default=30.0, ge=0)
    # Largest bundle body accepted by POST /v1/route/bundle: 100 MB of attachments grow by a
    # third in base64.
    max_bundle_bytes: int = Field(default=150 * 1024 * 1024, gt=0)
    # What one bundle may cost beyond its bytes: a real CareCommunication has a few hundred
    # elements, nested about 10 deep (XML elements; JSON members and array items).
    max_bundle_elements: int = Field(default=100_000, ge=100)
    max_bundle_depth: int = Field(default=64, ge=16)
    # Largest body of any other request (a routing question is well under 2 KB).
    max_body_bytes: int = Field(default=16 * 1024, gt=0)
    # Slow or idle clients: a request's head (request line and headers) must be complete within
    # header_timeout_seconds of the connection being opened or of the previous answer, and be
    # at most max_header_bytes; its body must be complete within body_timeout_seconds.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    # uvicorn: idle seconds between requests on a kept-alive connection; connections (and
    # requests) at once before new requests get 503; queued connections the kernel holds.
    timeout_keep_alive: int = Field(default=5, ge=1)
    limit_concurrency: int = Field(default=500, ge=1)
    backlog: int = Field(default=2048, ge=1)
    http_protocol: Literal["auto", "h11", "httptools"] = "auto"
    # Look this often (seconds) for a new current snapshot and prepare the routing index, its
    # audit findings and the console's cut-over report before a request needs them; 0: on
    # first use (soredi_sync/api/warmup.py). The shipped soredi-sync.toml turns it on.
    warm_seconds: float = Field(default=0.0, ge=0)
    # Processes of `soredi-sync serve` answering on the one socket (api/workers.py); each holds
    # its own routing index and caches. About one per core.
    workers: int = Field(default=1, ge=1, le=64)


class DecisionLogSettings(BaseModel):
    retention_days: int = Field(default=90, ge=1)
    flush_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1)
    max_pending: int = Field(default=100_000, ge=1)


# -- SOAP services (NSP). The shipped contracts are MODELLED: see docs/soap.md. --------------

SORLS_BINDING = "{urn:soredi:modelled:sorls:1}SorLookupBinding"
SKRS_BINDING = "{urn:soredi:modelled:skrs:1}StamdataReplicationBinding"
SORUS_BINDING = "{urn:soredi:modelled:sorus:1}SorUpdateBinding"
EAN_EDI_TYPE_DATATYPE = "sor/v2/eanlocationcodeeditype/v1"


def contract_path(name: str) -> str:
    """Filesystem path of a shipped (modelled) SOAP contract, e.g. ``sorls.wsdl``."""
    return str(resources.files("soredi_sync.soap").joinpath("contracts", name))


class ServiceEndpoint(BaseModel):
    """Where one service's WSDL is read and where its calls go."""

    wsdl: str
    address: str | None = None  # None: the soap:address of the WSDL
    binding: str


class SorlsEndpoint(ServiceEndpoint):
    # Defaults per service, so that one overridden key (SOREDI_SOAP__SORLS__ADDRESS) keeps
    # the others.
    wsdl: str = Field(default_factory=lambda: contract_path("sorls.wsdl"))
    binding: str = SORLS_BINDING


class SkrsEndpoint(ServiceEndpoint):
    wsdl: str = Field(default_factory=lambda: contract_path("skrs.wsdl"))
    binding: str = SKRS_BINDING


class SorusEndpoint(ServiceEndpoint):
    wsdl: str = Field(default_factory=lambda: contract_path("sorus.wsdl"))
    binding: str = SORUS_BINDING


class DgwsSettings(BaseModel):
    """Where the STS is and which organisation certificate (VOCES/FOCES) signs the request.

    ``certificate``: a PKCS#12 file (``.p12``/``.pfx``) holding key and certificate, or a PEM
    certificate; for PEM, ``private_key`` is the PEM key (default: the same file).
    ``sts_certificate``: PEM certificate the STS signs ID cards with; when set, every card's
    signature is verified against it.
    """

    sts_url: str
    certificate: Path
    private_key: Path | None = None
    password: SecretStr | None = None
    sts_certificate: Path | None = None
    system_name: str = "soredi-sync"
    care_provider_cvr: str
    care_provider_name: str
    security_level: int = Field(default=3, ge=1, le=5)
    refresh_margin: float = Field(default=300.0, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)


class SoapSettings(BaseModel):
    """Everything the SORLS, SKRS and SORUS clients need; no I/O on construction."""

    sorls: SorlsEndpoint = Field(default_factory=SorlsEndpoint)
    skrs: SkrsEndpoint = Field(default_factory=SkrsEndpoint)
    sorus: SorusEndpoint = Field(default_factory=SorusEndpoint)
    # seconds for fetching the WSDL/XSD and for each operation call (zeep's default is none)
    timeout: float = Field(default=30.0, gt=0)
    operation_timeout: float = Field(default=60.0, gt=0)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    skrs_register: str = "sor"
    skrs_datatype: str = EAN_EDI_TYPE_DATATYPE
    skrs_version: int = Field(default=1, ge=1)
    skrs_max_records: int = Field(default=1000, ge=1)
    # changes per SORUS call; each batch's answer is stored before the next is sent
    sorus_batch_size: int = Field(default=200, ge=1)
    # DGWS/SOSI security for the real NSP; None (the default) sends no security header, which
    # only the sandbox and unsecured test endpoints accept.
    dgws: DgwsSettings | None = None


class DaemonSettings(BaseModel):
    """``soredi-sync run``: the schedule, leadership, failure handling and shutdown."""

    timezone: str = "Europe/Copenhagen"
    # The daily full pull, as a crontab line (minute hour day month weekday) in ``timezone``:
    # after the sources' publish window (sor-filer rebuilds 01:00-04:30).
    full_sync_cron: str = "15 5 * * *"
    # Overrides the cron line with a fixed interval (tests, trials).
    full_sync_interval_seconds: float | None = Field(default=None, gt=0)
    # The incremental SKRS pull; None: not configured (needs [soap.skrs]). 900 = every 15 min.
    incremental_interval_seconds: float | None = Field(default=None, gt=0)
    # Decision-log retention purge, as a crontab line.
    retention_cron: str = "30 3 * * *"
    # The decision log counted into the daily traffic counts, as a crontab line.
    traffic_cron: str = "7 * * * *"
    # Webhook deliveries that failed are retried this often.
    webhook_retry_seconds: float = Field(default=60.0, gt=0)
    # A job that could not start on time (process down, previous run busy) still runs when it
    # is at most this late; later ones are skipped (coalesced into one run).
    misfire_grace_seconds: int = Field(default=3600, ge=1)
    # Leadership lease: the leader renews it every lease_seconds / 3; when the leader dies,
    # another replica takes over at most lease_seconds later.
    lease_seconds: float = Field(default=60.0, gt=0)
    # A source is marked degraded after this many failed runs in a row.
    degraded_after_failures: int = Field(default=3, ge=1)
    # /readyz turns not-ready when the current snapshot is older than this (hours); set
    # ready_requires_fresh_data = false to only report the age.
    max_data_age_hours: float = Field(default=36.0, gt=0)
    ready_requires_fresh_data: bool = True
    # On SIGTERM a running job may finish for this long; then it is cancelled and rolled back.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # With --no-api: serve /metrics on this port (None: no metrics endpoint).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)


class UiSettings(BaseModel):
    """The web console (``/ui``)."""

    # Signs the console's session cookies. Give it through the environment
    # (SOREDI_UI__SECRET_KEY), the same on every replica; unset: a random key per process, so
    # sessions end when the process restarts and differ between replicas.
    secret_key: SecretStr | None = None
    # A console session ends this many hours after sign-in.
    session_hours: float = Field(default=8, gt=0, le=24 * 30)


class LoggingSettings(BaseModel):
    # "text" for people, "json" (one object per line) for log shippers.
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class WebhookConfig(BaseModel):
    """A change subscription registered by configuration (``[[webhooks.subscriptions]]``).

    Filters are ANDed between fields and ORed within one; an empty field matches everything.
    """

    name: str = Field(min_length=1, max_length=100)
    url: str
    # The HMAC key: give secret_env (the name of an environment variable holding it), or the
    # secret itself through the environment (never in a file under version control).
    secret: SecretStr | None = None
    secret_env: str | None = None
    glns: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)  # SOR-IDs of institution owners
    message_types: list[str] = Field(default_factory=list)
    kinds: list[Literal["added", "removed", "changed"]] = Field(default_factory=list)
    entities: list[Literal["unit", "gln", "capability"]] = Field(default_factory=list)

    def signing_key(self) -> str:
        """:raises ValueError: neither or both of secret and secret_env, or the variable unset"""
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError(f"webhook {self.name!r}: give exactly one of secret and secret_env")
        if self.secret is not None:
            return self.secret.get_secret_value()
        value = os.environ.get(self.secret_env or "")
        if not value:
            raise ValueError(
                f"webhook {self.name!r}: environment variable {self.secret_env} is unset"
            )
        return value


class WebhookSettings(BaseModel):
    # The whole of one delivery (resolve, connect, send, read the answer) must end within
    # this many seconds; a receiver still sending then is cut off and the attempt fails.
    timeout: float = Field(default=10.0, gt=0)
    # Bytes of a receiver's answer body read at most (the rest is not read: the connection
    # is closed); the body is only drained, never stored.
    max_answer_bytes: int = Field(default=4096, ge=0, le=1024 * 1024)
    # Deliveries sent at the same time (to different subscriptions) by one dispatcher.
    max_concurrency: int = Field(default=4, ge=1, le=64)
    # A delivery due for this long without being sent, or claimed by a dispatcher for longer
    # than the timeout and a margin, is "stuck" (metric, /readyz detail).
    stuck_after_seconds: float = Field(default=900.0, gt=0)
    # Receivers are refused when any address their host resolves to is loopback, private,
    # link-local, unique-local, multicast, unspecified or reserved, unless named here: as
    # networks (CIDR, e.g. "10.20.0.0/16") or as host names (allowed whatever they resolve to).
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)
    allow_hosts: list[str] = Field(default_factory=list)
    max_attempts: int = Field(default=8, ge=1)
    # Retry backoff between attempts of one delivery: initial, doubling, capped.
    initial_backoff: float = Field(default=30.0, ge=0)
    max_backoff: float = Field(default=3600.0, ge=0)
    # Changes per delivery (one POST); more changes make more deliveries.
    batch_size: int = Field(default=500, ge=1)
    subscriptions: list[WebhookConfig] = Field(default_factory=list)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOREDI_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    database_url: str = "sqlite:///soredi-sync.db"
    config_dir: Path = Field(default_factory=config_dir)
    sources: SourceSettings = Field(default_factory=SourceSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    guards: GuardSettings = Field(default_factory=GuardSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)
    soap: SoapSettings = Field(default_factory=SoapSettings)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

    @field_validator("database_url")
    @classmethod
    def _use_psycopg_driver(cls, value: str) -> str:
        # Plain postgres URLs would pick psycopg2, which we do not install.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_file()),
        )


def default_config_files() -> list[Path]:
    """Every file the package ships as configuration (what ``config init`` copies)."""
    folder = packaged_dir("config")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in (".toml", ".tsv"))
