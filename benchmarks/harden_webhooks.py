"""Webhook hardening, before and after: a receiver that trickles its answer, and one that answers
a huge body, against a dispatcher in a child process on loopback.

    .venv/bin/python benchmarks/harden_webhooks.py                        # the code installed
    PYTHONPATH=/tmp/before-A .venv/bin/python benchmarks/harden_webhooks.py  # an old checkout

Three experiments, each bounded (the child is killed after ``--window`` + 60 s):

``dispatch-slow``
    ``dispatch`` (what ``soredi-sync webhook dispatch`` runs) against a receiver that sends
    its 200 answer one byte every ``--interval`` s for ``--trickle`` bytes: how long the call
    took, what the receiver saw (cut off or read to the end).
``daemon-slow``
    The daemon (``build_daemon``: scheduler, lease, jobs) with a full sync every 2 s; the day-1
    sync queues a delivery to the same trickling receiver. For ``--window`` s: how many full
    syncs ran after the delivery began (the old code ran the POST inside the sync job, so the
    scheduler skipped the syncs), how many POSTs the receiver got (a second POST of a delivery
    still in flight is a double send).
``dispatch-huge``
    ``dispatch`` against a receiver answering 200 with a ``--huge`` MiB body, generated as
    it is sent: time, and the dispatcher's peak RSS (``VmHWM`` of the child).

Prints one Markdown table. Which code ran is printed from ``soredi_sync.__file__``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SECRET = "whsec_benchmark-key"


# -- the receiver (parent process) ----------------------------------------------------------


class Receiver:
    """Answers each POST with ``mode``: ``trickle`` (one byte per ``interval`` s, ``trickle``
    bytes) or ``huge`` (``size`` bytes of zeros). Records each request's fate."""

    def __init__(self, mode: str, *, interval: float, trickle: int, size: int) -> None:
        self.mode, self.interval, self.trickle, self.size = mode, interval, trickle, size
        self.requests: list[dict[str, Any]] = []
        self._stop = threading.Event()
        receiver = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                receiver._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, sock: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            body += sock.recv(65536)
        seen: dict[str, Any] = {"at": time.monotonic(), "sent": 0, "cut_off": False}
        self.requests.append(seen)
        try:
            if self.mode == "trickle":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.trickle)
                for _ in range(self.trickle):
                    if self._stop.wait(self.interval):
                        break
                    sock.sendall(b".")
                    seen["sent"] += 1
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.size)
                chunk, left = bytes(256 * 1024), self.size
                while left > 0 and not self._stop.is_set():
                    piece = chunk[: min(left, len(chunk))]
                    sock.sendall(piece)
                    seen["sent"] += len(piece)
                    left -= len(piece)
        except OSError:
            seen["cut_off"] = True
        seen["seconds"] = time.monotonic() - seen["at"]


# -- the dispatcher (child process) ---------------------------------------------------------


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(experiment: str, url: str, timeout: float, window: float) -> dict[str, Any]:
    from pydantic import SecretStr
    from sqlalchemy import text

    import soredi_sync
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import (
        DaemonSettings,
        RetrySettings,
        Settings,
        WebhookConfig,
        WebhookSettings,
    )
    from soredi_sync.db.models import SyncRun
    from soredi_sync.db.schema import upgrade
    from soredi_sync.sandbox.generate import generate
    from soredi_sync.services.sync import sync_source

    work = Path(tempfile.mkdtemp(prefix="harden-webhooks-"))
    generate(work / "sandbox", profile="tiny", seed=11, days=2)
    database_url = f"sqlite:///{work / 'bench.db'}"
    upgrade(database_url)
    hooks = WebhookSettings(
        timeout=timeout,
        initial_backoff=600,
        # The new code refuses loopback receivers unless allowed; the old code ignores this.
        allow_networks=["127.0.0.0/8"],
        subscriptions=[WebhookConfig(name="bench", url=url, secret=SecretStr(SECRET))],
    )
    settings = Settings(
        database_url=database_url,
        retry=RetrySettings(attempts=1),
        webhooks=hooks,
        daemon=DaemonSettings(
            full_sync_interval_seconds=2, webhook_retry_seconds=600, lease_seconds=30
        ),
    )
    out: dict[str, Any] = {"code": str(Path(soredi_sync.__file__).parent)}
    with bootstrap(settings) as app:
        day = work / "sandbox" / "day-000"
        outcome = sync_source(app.uow_factory, app.files_client(from_dir=day), app.sync_config())
        assert outcome.ok, outcome.error
        _dispatch(app)  # registers the configured subscription at the end of the feed
        if experiment.startswith("dispatch"):
            day = work / "sandbox" / "day-001"
            sync_source(app.uow_factory, app.files_client(from_dir=day), app.sync_config())
            started = time.monotonic()
            report = _dispatch(app)
            out["dispatch_seconds"] = time.monotonic() - started
            out["delivered"] = report.delivered.delivered
        else:
            out.update(_daemon(app, work, window, SyncRun))
        with app.session_factory() as session:
            rows = session.execute(
                text("SELECT status, attempts, last_error FROM webhook_deliveries ORDER BY id")
            ).all()
        out["deliveries"] = [list(r) for r in rows]
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


def _dispatch(app: Any) -> Any:
    """What ``soredi-sync webhook dispatch`` runs: wired from the app (before the webhook
    services took a sender, an old checkout's ``dispatch`` took the app itself)."""
    from soredi_sync.services.webhooks import dispatch

    if hasattr(app, "webhook_sender"):
        return dispatch(app.uow_factory, app.settings.webhooks, app.webhook_sender())
    return dispatch(app)


def _daemon(app: Any, work: Path, window: float, sync_run: Any) -> dict[str, Any]:
    from sqlalchemy import select

    from soredi_sync.daemon.runner import build_daemon
    from soredi_sync.observability.metrics import Metrics
    from soredi_sync.sandbox.server import SandboxServer

    skipped = []

    class Skips(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "maximum number of running instances" in record.getMessage():
                skipped.append(record.getMessage())

    logging.getLogger("apscheduler").addHandler(Skips())
    server = SandboxServer(work / "sandbox", day=1).__enter__()
    app.settings.sources.base_url = server.base_url
    daemon = build_daemon(app, metrics=Metrics(process_collectors=False))
    daemon.jobs.refresh_lease()
    daemon.scheduler.start()
    started = time.monotonic()
    time.sleep(window)
    with app.session_factory() as session:
        runs = session.execute(
            select(sync_run.status, sync_run.started_at, sync_run.finished_at).order_by(sync_run.id)
        ).all()
    daemon.jobs.request_stop()
    daemon.scheduler.shutdown(wait=False)
    return {
        "window_seconds": time.monotonic() - started,
        "runs": [[str(getattr(s, "value", s)), str(a), str(f)] for s, a, f in runs],
        "scheduler_skips": len(skipped),
    }


# -- the parent -----------------------------------------------------------------------------


def run(experiment: str, args: argparse.Namespace) -> dict[str, Any]:
    mode = "huge" if experiment == "dispatch-huge" else "trickle"
    receiver = Receiver(
        mode, interval=args.interval, trickle=args.trickle, size=args.huge * 1024 * 1024
    )
    # By path, from a neutral directory: PYTHONPATH then decides which soredi_sync is imported.
    command = [
        sys.executable, str(Path(__file__).resolve()), "--child", experiment,
        "--url", receiver.url, "--timeout", str(args.timeout), "--window", str(args.window),
    ]  # fmt: skip
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=args.window + 60,
            check=False,
            cwd=tempfile.gettempdir(),
        )
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {}
        if done.returncode != 0:
            result["error"] = done.stderr[-2000:]
    except subprocess.TimeoutExpired:
        result = {"error": f"killed after {args.window + 60:g} s"}
    result["wall_seconds"] = time.monotonic() - started
    time.sleep(0.5)
    result["receiver"] = list(receiver.requests)
    receiver.close()
    return result


def _describe(experiment: str, r: dict[str, Any], args: argparse.Namespace) -> list[str]:
    if "error" in r:
        return [f"| {experiment} | ERROR: {r['error'][-300:]!r} |"]
    posts = r["receiver"]
    fates = ", ".join(
        f"{'cut off' if p['cut_off'] else 'read to the end'} after "
        f"{p.get('seconds', float('nan')):.1f} s ({p['sent']:,} bytes)"
        for p in posts
    )
    lines = [f"| {experiment} | POSTs received: {len(posts)} ({fates}) |"]
    if "dispatch_seconds" in r:
        lines.append(f"| {experiment} | dispatch took {r['dispatch_seconds']:.1f} s |")
    if "runs" in r:
        runs = r["runs"]
        lines.append(
            f"| {experiment} | full syncs in the {r['window_seconds']:.0f} s window: {len(runs)} "
            f"({', '.join(s for s, _a, _f in runs)}); scheduler skips ('maximum number of "
            f"running instances'): {r['scheduler_skips']} |"
        )
    lines.append(f"| {experiment} | dispatcher peak RSS (VmHWM): {r['peak_rss_mib']:.0f} MiB |")
    lines.append(f"| {experiment} | deliveries as stored: {r['deliveries']} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=2.0, help="webhooks.timeout (s)")
    parser.add_argument("--interval", type=float, default=0.5, help="s between trickled bytes")
    parser.add_argument("--trickle", type=int, default=40, help="bytes trickled")
    parser.add_argument("--huge", type=int, default=256, help="MiB of the huge answer")
    parser.add_argument("--window", type=float, default=25.0, help="daemon experiment (s)")
    parser.add_argument(
        "--only", choices=["dispatch-slow", "daemon-slow", "dispatch-huge"], action="append"
    )
    args = parser.parse_args(argv)
    if args.child:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        result = child(args.child, args.url, args.timeout, args.window)
        sys.stdout.write(json.dumps(result, default=str) + "\n")
        sys.stdout.flush()
        os._exit(0)  # a job thread of the old code may still be sending
    experiments = args.only or ["dispatch-slow", "daemon-slow", "dispatch-huge"]
    sys.stdout.write(
        f"webhooks.timeout {args.timeout:g} s; trickle: 1 byte / {args.interval:g} s, "
        f"{args.trickle} bytes ({args.interval * args.trickle:g} s); huge answer: "
        f"{args.huge} MiB; daemon window {args.window:g} s, a full sync every 2 s\n\n"
    )
    results = {e: run(e, args) for e in experiments}
    code = next((r.get("code") for r in results.values() if r.get("code")), "?")
    lines = [f"code: {code}", "", "| experiment | observed |", "|---|---|"]
    for experiment, result in results.items():
        lines.extend(_describe(experiment, result, args))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
