"""Settings of the HTTP API and the decision log: ``[api]`` and ``[decision_log]`` in the TOML.

They are read with the same sources and precedence as :class:`soredi_sync.config.Settings`
(init values, then ``SOREDI_API__*`` / ``SOREDI_DECISION_LOG__*`` variables, then the TOML
file). When ``Settings`` gains ``api`` and ``decision_log`` fields, :func:`api_settings` uses them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from soredi_sync.config import Settings


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # How long a verified token is trusted without asking the database: a revoked token keeps
    # working in a running server for at most this long.
    token_cache_seconds: float = Field(default=30.0, ge=0)
    # Largest bundle body accepted by POST /v1/route/bundle: 100 MB of attachments grow by a
    # third in base64.
    max_bundle_bytes: int = Field(default=150 * 1024 * 1024, gt=0)


class DecisionLogSettings(BaseModel):
    retention_days: int = Field(default=90, ge=1)
    flush_seconds: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1)
    max_pending: int = Field(default=100_000, ge=1)


class _Sections(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SOREDI_", env_nested_delimiter="__", extra="ignore"
    )

    api: ApiSettings = Field(default_factory=ApiSettings)
    decision_log: DecisionLogSettings = Field(default_factory=DecisionLogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return Settings.settings_customise_sources(
            settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        )


def api_settings(settings: Settings) -> tuple[ApiSettings, DecisionLogSettings]:
    """The API and decision-log settings that go with ``settings``."""
    api = getattr(settings, "api", None)
    log = getattr(settings, "decision_log", None)
    if isinstance(api, ApiSettings) and isinstance(log, DecisionLogSettings):
        return api, log
    sections = _Sections()
    return sections.api, sections.decision_log
