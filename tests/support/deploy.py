"""Reading the deployment files as their tools would: systemd units, the environment file,
and which ``SOREDI_*`` variables the application knows."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from soredi_sync import config
from soredi_sync.config import Settings
from tests.support.paths import REPO_ROOT

ROOT = REPO_ROOT
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"

Unit = dict[str, dict[str, list[str]]]


def read_unit(path: Path) -> Unit:
    """A unit file as section -> key -> every value given (systemd keys may repeat; an empty
    assignment resets the list, as systemd does)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}: {line!r} before any section"
        assert "=" in line, f"{path.name}: {line!r} is not key=value"
        key, value = (part.strip() for part in line.split("=", 1))
        section.setdefault(key, []).append(value)
    return unit


def env_file_names(path: Path) -> dict[str, list[tuple[str, bool]]]:
    """Variable name -> [(value, commented out)] of every ``NAME=value`` line, the commented
    examples (``#NAME=value``) included."""
    names: dict[str, list[tuple[str, bool]]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"(#?)\s*([A-Z][A-Z0-9_]*)=(.*)", raw.strip())
        if match:
            names.setdefault(match[2], []).append((match[3], match[1] == "#"))
    return names


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings model an annotation holds (``DgwsSettings | None`` -> ``DgwsSettings``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None


def is_known_setting(name: str) -> bool:
    """True when the application reads ``name``: a ``Settings`` field path
    (``SOREDI_SECTION__KEY``, the way pydantic-settings maps it) or a variable that
    ``soredi_sync/config.py`` reads itself (``SOREDI_CONFIG_FILE``)."""
    if name in read_directly():
        return True
    if not name.startswith("SOREDI_"):
        return False
    model: type[BaseModel] | None = Settings
    for part in name.removeprefix("SOREDI_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        model = _model_of(model.model_fields[part].annotation)
    return True


def read_directly() -> set[str]:
    """Variables ``soredi_sync/config.py`` reads with ``os.environ`` (not through Settings)."""
    source = Path(config.__file__).read_text(encoding="utf-8")
    return set(re.findall(r"os\.environ\.get\(\s*\"(SOREDI_[A-Z0-9_]+)\"", source))
