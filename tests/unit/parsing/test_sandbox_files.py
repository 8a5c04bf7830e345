"""The parsers against the sandbox generator: both sides of the docs/sources.md contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.parsing.load import load_registry_from_dir
from soredi_sync.sandbox.generate import day_directory, expected_registry, generate


class TestSandboxFiles:
    @pytest.mark.parametrize("day", [0, 1])
    def test_generated_files_load_to_the_generators_own_model(
        self, tmp_path: Path, message_types: MessageTypeRegistry, day: int
    ) -> None:
        generate(tmp_path, profile="tiny", seed=3, days=1, message_types=message_types)
        loaded = load_registry_from_dir(tmp_path / day_directory(day), message_types=message_types)
        expected = expected_registry("tiny", 3, day, message_types=message_types)
        assert loaded.source_date == expected.source_date
        assert dict(loaded.units) == dict(expected.units)
        assert dict(loaded.glns) == dict(expected.glns)
        assert {g: dict(c) for g, c in loaded.capabilities.items()} == {
            g: dict(c) for g, c in expected.capabilities.items()
        }
