"""Sync decisions that depend on what each file did: through a scripted files client."""

from __future__ import annotations

import shutil
from pathlib import Path

from soredi_sync.bootstrap import App
from soredi_sync.clients.sor_files import FetchedFile, Validators, sha256_of
from soredi_sync.ports.records import RunStatus
from soredi_sync.services.sync import sync_source


class ScriptedFilesClient:
    """Serves files from a day folder, answering 'not modified' for the names it is told to,
    but only when asked conditionally (as a server would)."""

    location = "scripted://sandbox/"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.unchanged: set[str] = set()
        self.calls: list[tuple[str, bool]] = []

    def fetch(self, name, dest_dir, validators: Validators | None = None, progress=None):
        conditional = validators is not None
        self.calls.append((name, conditional))
        if conditional and name in self.unchanged:
            return FetchedFile(name, None, None, 0, validators.etag, validators.last_modified)
        target = dest_dir / name
        shutil.copyfile(self.directory / name, target)
        return FetchedFile(
            name, target, sha256_of(target), target.stat().st_size, f'"{name}-etag"', None
        )


class TestPartialChanges:
    def test_when_only_one_file_changed_both_are_fetched_again_as_a_pair(
        self, app: App, sandbox_dir: Path
    ) -> None:
        client = ScriptedFilesClient(sandbox_dir / "day-000")
        sync_source(app.uow_factory, client, app.sync_config())
        client.directory = sandbox_dir / "day-001"
        client.unchanged = {"sor.zip"}
        client.calls.clear()
        outcome = sync_source(app.uow_factory, client, app.sync_config())
        assert outcome.status is RunStatus.SUCCEEDED
        assert client.calls == [
            ("sor.zip", True),
            ("Sor_complete.zip", True),
            ("sor.zip", False),
            ("Sor_complete.zip", False),
        ]
        with app.uow() as uow:
            snap = uow.registry.current_snapshot()
        assert snap.id == 2

    def test_both_files_not_modified_is_unchanged_without_parsing(
        self, app: App, sandbox_dir: Path
    ) -> None:
        client = ScriptedFilesClient(sandbox_dir / "day-000")
        sync_source(app.uow_factory, client, app.sync_config())
        client.unchanged = {"sor.zip", "Sor_complete.zip"}
        client.directory = sandbox_dir / "does-not-exist"  # parsing would fail loudly
        outcome = sync_source(app.uow_factory, client, app.sync_config())
        assert outcome.status is RunStatus.UNCHANGED
        assert outcome.counts == {"reason": "not modified"}
