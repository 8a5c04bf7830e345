"""``soredi-sync config show``: the effective settings, where each one comes from (default,
file, environment, command line), secrets masked."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

from soredi_sync.config import Settings, config_file, default_config_files, packaged_dir

# default: the code or the package's own soredi-sync.toml; file: an operator's settings file
# (SOREDI_CONFIG_DIR's or SOREDI_CONFIG_FILE); environment: a SOREDI_* variable; command line:
# an option such as --database-url.
SettingSource = Literal["default", "file", "environment", "command line"]


@dataclass(frozen=True)
class EffectiveSetting:
    key: str  # dotted, as in the TOML file: "api.port"
    value: Any  # JSON-ready, secrets masked
    source: SettingSource
    origin: str | None = None  # the variable or the file that gave it


@dataclass(frozen=True)
class ConfigReport:
    """The effective settings, each with its source, and the files they were read from."""

    config_dir: Path
    config_dir_from: str | None  # "SOREDI_CONFIG_DIR", or None: the package's defaults
    config_file: Path
    config_file_exists: bool
    data_files: dict[str, bool]  # file name in config_dir -> present
    settings: tuple[EffectiveSetting, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "config_dir": {"path": str(self.config_dir), "from": self.config_dir_from},
            "config_file": {"path": str(self.config_file), "exists": self.config_file_exists},
            "data_files": {
                name: {"path": str(self.config_dir / name), "exists": exists}
                for name, exists in self.data_files.items()
            },
            "settings": {
                s.key: {"value": s.value, "source": s.source, "origin": s.origin}
                for s in self.settings
            },
        }

    def as_text(self) -> str:
        """The report for people: the files, then one aligned line per setting."""
        where = self.config_dir_from or "the package's defaults"
        missing = [name for name, exists in self.data_files.items() if not exists]
        lines = [
            f"config dir:    {self.config_dir} ({where})",
            f"settings file: {self.config_file}"
            + ("" if self.config_file_exists else " (missing: built-in defaults)"),
            "data files:    "
            + (f"missing {', '.join(missing)}" if missing else f"all {len(self.data_files)}"),
            "",
        ]
        rows = [
            (
                s.key,
                json.dumps(s.value, ensure_ascii=False),
                s.source if s.source != "environment" else f"environment {s.origin}",
            )
            for s in self.settings
        ]
        key_width = max(len(key) for key, _, _ in rows)
        value_width = min(60, max(len(value) for _, value, _ in rows))
        lines += [f"{k:<{key_width}}  {v:<{value_width}}  {src}" for k, v, src in rows]
        return "\n".join(lines)


def effective_settings(overrides: dict[str, Any] | None = None) -> tuple[Settings, ConfigReport]:
    """Build :class:`Settings` as an entrypoint would (``overrides`` being the command line's)
    and say where each value came from, secrets masked (:func:`mask_secrets`).

    :raises pydantic.ValidationError: the configuration is invalid
    """
    overrides = dict(overrides or {})
    settings = Settings(**overrides)
    from_env = EnvSettingsSource(Settings)()
    toml = config_file()
    from_file = TomlConfigSettingsSource(Settings, toml_file=toml)()
    packaged_toml = packaged_dir("config") / "soredi-sync.toml"
    file_source: SettingSource = (
        "default" if toml.exists() and toml.resolve() == packaged_toml.resolve() else "file"
    )
    entries = []
    for path, value in _leaves(settings.model_dump(mode="json")):
        key = ".".join(path)
        source: SettingSource = "default"
        origin: str | None = None
        if _provided(overrides, path):
            env_name = _env_name(path)
            same = env_name is not None and _provided(from_env, path)
            source, origin = ("environment", env_name) if same else ("command line", None)
        elif _provided(from_env, path):
            source, origin = "environment", _env_name(path)
        elif _provided(from_file, path):
            source, origin = file_source, str(toml)
        entries.append(EffectiveSetting(key, mask_secrets(value), source, origin))
    folder = settings.config_dir
    data_files = {
        p.name: (folder / p.name).is_file()
        for p in default_config_files()
        if p.name != "soredi-sync.toml"
    }
    report = ConfigReport(
        config_dir=folder,
        config_dir_from="SOREDI_CONFIG_DIR" if os.environ.get("SOREDI_CONFIG_DIR") else None,
        config_file=toml,
        config_file_exists=toml.is_file(),
        data_files=data_files,
        settings=tuple(entries),
    )
    return settings, report


def mask_secrets(value: Any) -> Any:
    """``value`` with secrets masked, for output: passwords in URLs, tokens and
    ``password=``-style pairs (the logs' :func:`~soredi_sync.observability.logging.redact`),
    and any PEM block (a key or certificate given inline). ``SecretStr`` values arrive masked
    already (``**********``). Paths to key and certificate files are shown: they are where to
    look, not the secret."""
    from soredi_sync.observability.logging import redact

    if isinstance(value, str):
        return "***" if "-----BEGIN" in value else redact(value)
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    return value


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) for every setting; sections are walked, lists are one value."""
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, data


def _provided(data: Any, path: tuple[str, ...]) -> bool:
    """Whether ``data`` (what one source gave) sets ``path``, itself or a section above it
    given whole (``SOREDI_SOAP__DGWS='{...}'``)."""
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
        if not isinstance(node, dict):
            return True
    return True


def _env_name(path: tuple[str, ...]) -> str | None:
    """The SOREDI_* variable that sets ``path``: the setting's own, or its section's."""
    present = {name.upper() for name in os.environ}
    for end in range(len(path), 0, -1):
        name = "SOREDI_" + "__".join(path[:end]).upper()
        if name in present:
            return name
    return None
