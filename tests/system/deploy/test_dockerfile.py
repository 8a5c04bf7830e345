"""The Dockerfile: the wheel built in one stage and installed with [postgres] into a slim
runtime, a non-root user, a HEALTHCHECK on /healthz that works, soredi-sync as entrypoint."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.deploy import ROOT

Instruction = tuple[str, str]


def instructions(path: Path) -> list[Instruction]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.partition(" ")
        result.append((word.upper(), rest.strip()))
        pending = ""
    return result


def stages(path: Path) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM."""
    found: list[list[Instruction]] = []
    for word, rest in instructions(path):
        if word == "FROM":
            found.append([])
        if found:
            found[-1].append((word, rest))
    return found


@pytest.fixture(scope="module")
def build() -> list[Instruction]:
    return stages(ROOT / "Dockerfile")[0]


@pytest.fixture(scope="module")
def runtime() -> list[Instruction]:
    return stages(ROOT / "Dockerfile")[-1]


def last(stage: list[Instruction], word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert found, f"no {word}"
    return found[-1]


def test_the_image_is_built_in_two_stages_from_one_base() -> None:
    froms = [rest for word, rest in instructions(ROOT / "Dockerfile") if word == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE} AS runtime"]
    args = [rest for word, rest in instructions(ROOT / "Dockerfile") if word == "ARG"]
    assert args[0].startswith("BASE_IMAGE=python:3.")
    assert "slim" in args[0]


def test_the_build_stage_builds_the_wheel_and_installs_it_with_the_postgres_extra(
    build: list[Instruction],
) -> None:
    script = " ".join(rest for word, rest in build if word == "RUN")
    assert "pip wheel --no-deps --wheel-dir /dist ." in script
    assert '/opt/soredi-sync/bin/pip install "$(ls /dist/soredi_sync-*.whl)[postgres]"' in script


def test_the_runtime_stage_copies_only_the_installed_virtualenv(
    runtime: list[Instruction],
) -> None:
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert copies == ["--from=build /opt/soredi-sync /opt/soredi-sync"]


def test_the_runtime_runs_as_a_non_root_user(runtime: list[Instruction]) -> None:
    user = last(runtime, "USER").split(":")[0]
    assert user not in ("root", "0", "")
    assert last(runtime, "ARG") == "APP_UID=10001"
    assert user == "${APP_UID}"


def test_soredi_sync_is_the_entrypoint_and_the_daemon_the_default_command(
    runtime: list[Instruction],
) -> None:
    assert json.loads(last(runtime, "ENTRYPOINT")) == ["soredi-sync"]
    assert json.loads(last(runtime, "CMD")) == ["run"]
    assert last(runtime, "STOPSIGNAL") == "SIGTERM"


def healthcheck_program(runtime: list[Instruction]) -> list[str]:
    check = last(runtime, "HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv: list[str] = json.loads(command)
    return argv


def test_the_healthcheck_asks_healthz_with_python_alone(runtime: list[Instruction]) -> None:
    argv = healthcheck_program(runtime)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2]
    assert "curl" not in argv[2] and "wget" not in argv[2]


class _Health(BaseHTTPRequestHandler):
    healthy = True

    def do_GET(self) -> None:
        ok = self.path == "/healthz" and self.healthy
        self.send_response(200 if ok else 503)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Health.healthy = True


def run_check(code: str, port: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={"SOREDI_API__PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


def test_the_healthcheck_passes_on_a_healthy_api_on_the_configured_port(
    runtime: list[Instruction], health_server: ThreadingHTTPServer
) -> None:
    code = healthcheck_program(runtime)[2]
    assert run_check(code, health_server.server_address[1]) == 0


def test_the_healthcheck_fails_when_healthz_is_not_ok(
    runtime: list[Instruction], health_server: ThreadingHTTPServer
) -> None:
    code = healthcheck_program(runtime)[2]
    _Health.healthy = False
    assert run_check(code, health_server.server_address[1]) != 0


def test_the_healthcheck_fails_when_nothing_listens(
    runtime: list[Instruction], health_server: ThreadingHTTPServer
) -> None:
    code = healthcheck_program(runtime)[2]
    port = health_server.server_address[1]
    health_server.shutdown()
    health_server.server_close()
    assert run_check(code, port) != 0


def test_the_build_context_leaves_out_working_state_but_keeps_what_the_wheel_needs() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests", "*.db"} <= ignored
    kept = {"soredi_sync", "config", "migrations", "pyproject.toml", "README.md", "LICENSE"}
    assert not kept & ignored
