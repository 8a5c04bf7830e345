"""The systemd units: they migrate before they start, are hardened, and stop the way the
daemon stops (SIGTERM, then its shutdown grace), and systemd itself accepts them."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from soredi_sync.config import DaemonSettings, Settings
from tests.support.deploy import ROOT, SYSTEMD, Unit, read_unit

BINARY = "/opt/soredi-sync/bin/soredi-sync"
DAEMON = SYSTEMD / "soredi-sync.service"
SERVE = SYSTEMD / "soredi-sync-serve.service"
UNITS = [DAEMON, SERVE]


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key} given {len(values)} times"
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span in the forms the units use (``90``, ``90s``, ``2min``)."""
    match = re.fullmatch(r"(\d+)\s*(s|sec|min)?", value)
    assert match, f"unexpected time span {value!r}"
    return float(match[1]) * (60 if match[2] == "min" else 1)


def test_the_daemon_unit_migrates_the_database_then_runs_the_daemon() -> None:
    unit = read_unit(DAEMON)
    assert one(unit, "Service", "ExecStartPre") == f"{BINARY} db upgrade"
    assert one(unit, "Service", "ExecStart") == f"{BINARY} run"


def test_the_api_unit_migrates_the_database_then_serves_the_api() -> None:
    unit = read_unit(SERVE)
    assert one(unit, "Service", "ExecStartPre") == f"{BINARY} db upgrade"
    assert one(unit, "Service", "ExecStart") == f"{BINARY} serve"
    # Both bind the [api] port from the same environment file.
    assert one(unit, "Unit", "Conflicts") == DAEMON.name


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_a_unit_reads_the_environment_file_the_example_is_for(path: Path) -> None:
    unit = read_unit(path)
    assert one(unit, "Service", "EnvironmentFile") == "/etc/soredi-sync/soredi-sync.env"
    assert (SYSTEMD / "soredi-sync.env.example").is_file()


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_a_unit_runs_as_a_transient_user_in_a_read_only_system(path: Path) -> None:
    service = read_unit(path)["Service"]
    for key, value in {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "RestrictNamespaces": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "StateDirectory": "soredi-sync",
    }.items():
        assert service.get(key) == [value], key
    assert service["CapabilityBoundingSet"] == [""]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert "@system-service" in service["SystemCallFilter"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_default_sqlite_file_lands_in_the_state_directory(path: Path) -> None:
    service = read_unit(path)["Service"]
    state = "/var/lib/" + one({"Service": service}, "Service", "StateDirectory")
    assert service["WorkingDirectory"] == [state]
    # The shipped default is a relative SQLite path: it resolves in the working directory.
    default = make_url(Settings.model_fields["database_url"].default)
    assert default.get_backend_name() == "sqlite"
    assert not Path(default.database or "/").is_absolute()


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_a_unit_sets_no_setting_itself_so_the_operators_files_decide(path: Path) -> None:
    # An Environment=SOREDI_... here would override the operator's soredi-sync.toml unseen.
    environment = read_unit(path)["Service"].get("Environment", [])
    assert [e for e in environment if e.startswith("SOREDI_")] == []


def test_the_daemon_unit_stops_with_sigterm_and_waits_past_the_shutdown_grace() -> None:
    service = read_unit(DAEMON)["Service"]
    assert service["KillSignal"] == ["SIGTERM"]
    assert service["KillMode"] == ["mixed"]  # SIGTERM to the daemon, SIGKILL to all at the end
    shipped = tomllib.loads((ROOT / "config" / "soredi-sync.toml").read_text(encoding="utf-8"))
    grace = max(
        DaemonSettings().shutdown_grace_seconds, shipped["daemon"]["shutdown_grace_seconds"]
    )
    # The grace for running jobs, then the lease release and the API's drain.
    assert seconds(one({"Service": service}, "Service", "TimeoutStopSec")) >= grace + 60


def test_no_unit_offers_a_reload_because_the_daemon_has_none() -> None:
    package = ROOT / "soredi_sync"
    handles_sighup = [p for p in package.rglob("*.py") if "SIGHUP" in p.read_text(encoding="utf-8")]
    assert handles_sighup == [], "the daemon reloads now: give the units an ExecReload"
    for path in UNITS:
        assert "ExecReload" not in read_unit(path)["Service"], path.name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_systemd_analyze_verifies_both_units(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point the copies at a stand-in.
    program = tmp_path / "soredi-sync"
    program.write_text("#!/bin/sh\n", encoding="utf-8")
    program.chmod(0o755)
    copies = []
    for path in UNITS:
        copy = tmp_path / path.name
        copy.write_text(path.read_text(encoding="utf-8").replace(BINARY, str(program)))
        copies.append(str(copy))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *copies],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_a_clean_stop_of_serve_counts_as_success_for_its_unit(tmp_path: Path) -> None:
    """uvicorn re-raises SIGTERM after a clean shutdown; the unit must not call that a failure."""
    import os
    import signal
    import socket
    import sys
    import time
    import urllib.request

    accepted = {0, *(int(v) for v in one(read_unit(SERVE), "Service", "SuccessExitStatus").split())}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "SOREDI_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}"}
    command = [sys.executable, "-m", "soredi_sync"]
    subprocess.run([*command, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    status = 128 + signal.SIGTERM if code == -signal.SIGTERM else code
    assert status in accepted
