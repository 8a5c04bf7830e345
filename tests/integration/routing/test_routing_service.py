"""The routing index follows the snapshots: decided on the current one, swapped after a sync."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest

from soredi_sync.bootstrap import App
from soredi_sync.domain.routing import Decision, RouteRequest
from soredi_sync.errors import NoSnapshot
from soredi_sync.sandbox.generate import Manifest
from soredi_sync.services.sync import sync_source


def _sync(app: App, directory: Path):
    return sync_source(app.uow_factory, app.files_client(from_dir=directory), app.sync_config())


def _request(manifest: Manifest) -> RouteRequest:
    vena = next(g for g, info in manifest.reference_glns.items() if "VENA" in info["label"])
    return RouteRequest("correspondence", "fhir", receiver_gln=vena)


class _Cycle:
    def __init__(self) -> None:
        self.me = self


class TestIndexLifecycle:
    def test_an_index_rebuild_leaves_garbage_cycles_collectable(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _sync(app, sandbox_dir / "day-000")
        service = app.routing()
        gc.disable()  # the cycle must still be uncollected garbage when the index is built
        try:
            garbage = weakref.ref(_Cycle())
            assert garbage() is not None
            service.route(_request(manifest))  # builds the index (and freezes what is live)
        finally:
            gc.enable()
        gc.collect()
        assert garbage() is None, "a garbage cycle was frozen with the index and never freed"

    def test_without_a_snapshot_there_is_no_answer(self, app: App, manifest: Manifest) -> None:
        with pytest.raises(NoSnapshot):
            app.routing().route(_request(manifest))

    def test_decisions_name_the_snapshot_they_were_made_on(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        first = _sync(app, sandbox_dir / "day-000")
        decision = app.routing().route(_request(manifest))
        assert decision.decision is Decision.DELIVER
        assert decision.snapshot.id == first.snapshot.id
        assert decision.snapshot.taken_at == first.snapshot.taken_at

    def test_the_first_answer_after_a_sync_lands_is_decided_on_the_new_snapshot(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _sync(app, sandbox_dir / "day-000")
        service = app.routing()
        old = service.route(_request(manifest)).snapshot.id
        second = _sync(app, sandbox_dir / "day-001")
        assert second.snapshot.id != old
        assert service.route(_request(manifest)).snapshot.id == second.snapshot.id

    def test_answers_during_a_sync_are_each_on_one_whole_snapshot_and_never_go_back(
        self, app: App, sandbox_dir: Path, manifest: Manifest
    ) -> None:
        _sync(app, sandbox_dir / "day-000")
        service = app.routing()
        request = _request(manifest)
        service.route(request)
        seen: list[int] = []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                seen.append(service.route(request).snapshot.id)

        worker = threading.Thread(target=ask)
        worker.start()
        try:
            landed = _sync(app, sandbox_dir / "day-001").snapshot.id
            after = service.route(request).snapshot.id
        finally:
            stop.set()
            worker.join(timeout=30)
        assert after == landed
        assert seen == sorted(seen), "an answer went back to an older snapshot"
        assert set(seen) <= {landed - 1, landed}
