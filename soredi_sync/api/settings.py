"""Settings of the HTTP API and the decision log (``[api]`` and ``[decision_log]`` in the TOML)."""

from __future__ import annotations

from soredi_sync.config import ApiSettings, DecisionLogSettings, Settings

__all__ = ["ApiSettings", "DecisionLogSettings", "api_settings"]


def api_settings(settings: Settings) -> tuple[ApiSettings, DecisionLogSettings]:
    """The API and decision-log settings that go with ``settings``."""
    return settings.api, settings.decision_log
