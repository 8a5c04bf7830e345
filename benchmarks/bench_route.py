"""Routing benchmark on the national sandbox profile, every figure from one run.

    .venv/bin/python -m benchmarks.bench_route [--decisions 50000] [--seconds 10]

1. In-process: p50/p99 of one decision, on the resolver alone and through the routing service
   (which also checks, per decision, which snapshot is current: one primary-key query).
2. Over HTTP on loopback, the project's app served exactly as ``soredi-sync serve`` does
   (access log on, the [api] connection limits), driven by ``wrk`` (Debian package ``wrk``):
   decisions/s for ``POST /v1/route`` on one worker side by side, in the same run, with two
   bare endpoints of the same stack: ``GET /healthz``, and ``POST /bench/bare``, added here,
   which takes the same JSON body through the same request model and answers a constant (no
   token, no decision); ``POST /v1/route/batch`` with 1,000 questions of the same mix as the
   in-process figures; latency at a fixed 1,000 requests/s with the open-loop generator
   ``benchmarks/loadgen.py`` (measured from when each request was due); and ``POST /v1/route``
   again on two workers (``serve --workers 2``).

Targets: p99 <= 200 us in process; route >= 75% of the bare POST; batch >= 20,000
decisions/s; p99 <= 5 ms at 1,000 requests/s; two workers >= 1.7x one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# At module level: FastAPI resolves the bare endpoint's (string) annotation in these globals.
from soredi_sync.api.deps import RouteReader
from soredi_sync.api.routers.routing_schemas import RouteIn

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / ".data"
CLI = [sys.executable, "-m", "soredi_sync"]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _requests(registry: Any, n: int, seed: int) -> list[Any]:
    """A realistic mix: receivers across the country, all three sender syntaxes, attachments."""
    from soredi_sync.domain.routing import Attachment, RouteRequest

    rng = random.Random(seed)
    glns = sorted(registry.glns)
    units = sorted(registry.units)
    mimes = ["application/pdf", "image/png", "image/jpeg", "application/msword"]
    requests = []
    for _ in range(n):
        by_unit = rng.random() < 0.3
        requests.append(
            RouteRequest(
                business_message=rng.choice(["correspondence"] * 8 + ["acknowledgement"] * 2),
                sender_syntax=rng.choice(["fhir"] * 6 + ["oioxml"] * 3 + ["edifact"]),
                receiver_gln=None if by_unit else rng.choice(glns),
                receiver_sor_id=rng.choice(units) if by_unit else None,
                text_length=rng.randint(50, 40_000),
                category="examination-results",
                topic="Svar på undersøgelse",
                attachments=tuple(
                    Attachment(rng.choice(mimes), rng.randint(1_000, 5_000_000))
                    for _ in range(rng.choice([0, 0, 1, 2, 3]))
                ),
            )
        )
    return requests


def in_process(app: Any, decisions: int) -> dict[str, Any]:
    service = app.routing()
    resolver = service.resolver()  # builds the index once, outside the timing
    today = service.today()
    requests = _requests(resolver.index.registry, decisions, seed=1)
    for request in requests[:2000]:  # warm caches
        resolver.resolve(request, today)
    timings = []
    outcomes: dict[str, int] = {}
    for request in requests:
        started = time.perf_counter_ns()
        decision = resolver.resolve(request, today)
        timings.append((time.perf_counter_ns() - started) / 1000)
        key = decision.reason.value if decision.reason else decision.decision.value
        outcomes[key] = outcomes.get(key, 0) + 1
    service_timings = []
    for request in requests[: decisions // 5]:
        started = time.perf_counter_ns()
        service.route(request)
        service_timings.append((time.perf_counter_ns() - started) / 1000)
    return {
        "resolver_p50_us": _percentile(timings, 0.50),
        "resolver_p99_us": _percentile(timings, 0.99),
        "resolver_mean_us": statistics.fmean(timings),
        "service_p50_us": _percentile(service_timings, 0.50),
        "service_p99_us": _percentile(service_timings, 0.99),
        "outcomes": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        "decisions": len(timings),
        "sample": requests[:BATCH],  # the batch benchmark's questions: the same mix
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


OPEN_LOOP_RATE = 1000  # requests/s for the latency figures
BATCH = 1000  # questions in the batch benchmark's body


def _wrk(url: str, seconds: int, script: Path | None, connections: int = 32) -> float:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if non2xx:
        raise SystemExit(f"wrk saw {non2xx.group(1)} error responses from {url}:\n{output}")
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    return float(match.group(1))


def _warm(url: str, script: Path, seconds: int = 2, limit: int = 90) -> None:
    """Load ``url`` until two rounds in a row agree within 10%: each worker builds its routing
    index at its first request (seconds on the national profile), which one short round of a
    few connections may not have reached in every worker."""
    previous = 0.0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rate = _wrk(url, seconds, script)
        if previous and abs(rate - previous) <= 0.1 * previous:
            return
        previous = rate


def _lua(path: Path, body: Any, token: str | None) -> Path:
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        + (f'wrk.headers["Authorization"] = "Bearer {token}"\n' if token else "")
    )
    return path


class _Server:
    """``serve_for_benchmark`` in a child process, ready when entered."""

    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_route",
                "--serve-port",
                str(self.port),
                "--serve-workers",
                str(workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> _Server:
        import httpx

        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self._process.poll() is not None:
                raise SystemExit("the benchmark server did not become ready")
            time.sleep(0.2)

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=60)


def _open_loop(url: str, body_file: Path, token: str, rate: int, seconds: int) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            url,
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--body",
            str(body_file),
            "--header",
            f"Authorization: Bearer {token}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def over_http(
    database_url: str, seconds: int, body: dict[str, Any], batch: list[dict[str, Any]]
) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("the HTTP part needs wrk (apt-get install wrk)")
    import httpx

    # The background warm-up off: it would prepare the audit, the cut-over and the FHIR index
    # (seconds of CPU) during the first measurements. The routing index is built by the first
    # request of each server, before anything is measured.
    env = os.environ | {"SOREDI_DATABASE_URL": database_url, "SOREDI_API__WARM_SECONDS": "0"}
    created = subprocess.run(
        [*CLI, "token", "create", "--scope", "route:read", "--name", "benchmark"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"sst_[A-Za-z0-9_\-]+", created)
    if found is None:
        raise SystemExit(f"no token in the output of token create:\n{created}")
    token = found.group(0)
    auth = {"Authorization": f"Bearer {token}"}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="soredi-bench-wrk-") as tmp:
        folder = Path(tmp)
        route_lua = _lua(folder / "route.lua", body, token)
        bare_lua = _lua(folder / "bare.lua", body, None)
        batch_lua = _lua(folder / "batch.lua", {"requests": batch}, token)
        body_file = folder / "body.json"
        body_file.write_text(json.dumps(body))
        with _Server(env, workers=1) as server:
            check = httpx.post(server.base + "/v1/route", json=body, timeout=10, headers=auth)
            check.raise_for_status()
            answered = httpx.post(
                server.base + "/v1/route/batch", json={"requests": batch}, timeout=60, headers=auth
            )
            answered.raise_for_status()
            if {r["status"] for r in answered.json()["results"]} != {200}:
                raise SystemExit("the batch benchmark's questions are not all decided")
            _wrk(server.base + "/v1/route", 2, route_lua)  # warm-up
            result["route_rps"] = _wrk(server.base + "/v1/route", seconds, route_lua)
            result["bare_post_rps"] = _wrk(server.base + "/bench/bare", seconds, bare_lua)
            result["bare_rps"] = _wrk(server.base + "/healthz", seconds, None)
            # Before the batches: their decision log (16,000 entries a second) is written for
            # seconds after they end.
            result["open_loop"] = _open_loop(
                server.base + "/v1/route", body_file, token, OPEN_LOOP_RATE, max(seconds, 10)
            )
            batch_rps = _wrk(server.base + "/v1/route/batch", seconds, batch_lua, connections=4)
            result["batch_decisions"] = batch_rps * len(batch)
            result["decision"] = check.json()["decision"]
        with _Server(env, workers=2) as server:
            _warm(server.base + "/v1/route", route_lua)  # until both workers have their index
            result["route_rps_2"] = _wrk(server.base + "/v1/route", seconds, route_lua)
    result["share"] = result["route_rps"] / result["bare_rps"]
    result["share_post"] = result["route_rps"] / result["bare_post_rps"]
    result["scaling"] = result["route_rps_2"] / result["route_rps"]
    return result


def serve_for_benchmark(port: int, workers: int) -> None:
    """The project's API as `soredi-sync serve --workers N` runs it (access log on, the [api]
    connection limits), plus the bare endpoints to compare with."""
    import uvicorn

    from soredi_sync.api.app import create_app
    from soredi_sync.api.connections import uvicorn_limits
    from soredi_sync.api.server import log_config
    from soredi_sync.api.workers import bind, supervise
    from soredi_sync.bootstrap import App, bootstrap
    from soredi_sync.config import Settings

    settings = Settings()

    def config(app: App) -> uvicorn.Config:
        api = create_app(app, settings.api, settings.decision_log)

        @api.post("/bench/bare")
        async def bare(body: RouteIn) -> dict[str, str]:
            return {"decision": "none"}

        @api.post("/bench/auth")
        async def bare_with_token(body: RouteIn, caller: RouteReader) -> dict[str, str]:
            return {"decision": "none"}

        return uvicorn.Config(
            api,
            host="127.0.0.1",
            port=port,
            log_config=log_config(),
            access_log=True,
            server_header=False,
            **uvicorn_limits(settings.api),
        )

    if workers == 1:
        with bootstrap(settings) as app:
            uvicorn.Server(config(app)).run()
        return
    listener = bind("127.0.0.1", port, settings.api.backlog)

    def run_worker(_number: int) -> None:
        with bootstrap(settings) as app:
            uvicorn.Server(config(app)).run(sockets=[listener])

    supervise(workers, run_worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_port:
        serve_for_benchmark(args.serve_port, args.serve_workers)
        return

    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.db.schema import upgrade
    from soredi_sync.sandbox.generate import generate
    from soredi_sync.services.sync import sync_source

    sandbox = DATA / f"{args.profile}-seed{args.seed}"
    if not (sandbox / "manifest.json").exists():
        generate(sandbox, profile=args.profile, seed=args.seed, days=1)
    manifest = json.loads((sandbox / "manifest.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="soredi-bench-route-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'route.db'}"
        upgrade(url)
        with bootstrap(Settings(database_url=url)) as app:
            outcome = sync_source(
                app.uow_factory, app.files_client(from_dir=sandbox / "day-000"), app.sync_config()
            )
            if not outcome.ok:
                raise SystemExit(f"sync failed: {outcome.error}")
            local = in_process(app, args.decisions)
        xmo = next(g for g, i in manifest["reference_glns"].items() if "XMO" in i["label"])
        body = {
            "receiver": {"gln": xmo},
            "business_message": "correspondence",
            "sender_syntax": "fhir",
            "text_length": 1200,
            "attachments": [{"mime_type": "application/pdf", "size": 250_000}],
        }
        batch = [
            {
                "receiver": {"gln": r.receiver_gln}
                if r.receiver_gln
                else {"sor_id": r.receiver_sor_id},
                "business_message": r.business_message,
                "sender_syntax": r.sender_syntax,
                "text_length": r.text_length,
                "attachments": [{"mime_type": a.mime_type, "size": a.size} for a in r.attachments],
            }
            for r in local["sample"]
        ]
        remote = None if args.skip_http else over_http(url, args.seconds, body, batch)

    counts = manifest["snapshots"][0]["counts"]
    lines = [
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite",
        f"data: profile {args.profile} seed {args.seed}: {counts['units']} units, "
        f"{counts['glns']} GLNs, {counts['capabilities']} GLN x type rows",
        "",
        "| measure | figure | target |",
        "|---|---:|---|",
        f"| resolver p50 per decision | {local['resolver_p50_us']:.1f} us | |",
        f"| resolver p99 per decision | {local['resolver_p99_us']:.1f} us | <= 200 us |",
        f"| service p50 (resolver + current-snapshot check) | {local['service_p50_us']:.1f} us | |",
        f"| service p99 (resolver + current-snapshot check) | {local['service_p99_us']:.1f} us | |",
    ]
    if remote is not None:
        loop = remote["open_loop"]
        lines += [
            f"| HTTP POST /v1/route, 1 worker, wrk 2 threads x 32 connections | "
            f"{remote['route_rps']:,.0f} decisions/s | |",
            f"| HTTP GET /healthz (bare endpoint, same stack) | "
            f"{remote['bare_rps']:,.0f} req/s | |",
            f"| HTTP POST /bench/bare (same body and model, constant answer) | "
            f"{remote['bare_post_rps']:,.0f} req/s | |",
            f"| route / bare GET | {remote['share']:.0%} | |",
            f"| route / bare POST | {remote['share_post']:.0%} | >= 75% |",
            f"| HTTP POST /v1/route/batch ({BATCH} questions), 1 worker, 4 connections | "
            f"{remote['batch_decisions']:,.0f} decisions/s | >= 20,000/s |",
            f"| POST /v1/route, 2 workers | {remote['route_rps_2']:,.0f} decisions/s | |",
            f"| 2 workers / 1 worker | {remote['scaling']:.2f}x | >= 1.7x |",
            f"| open loop at {loop['rate_asked']:,.0f}/s (achieved {loop['rate_achieved']:,.0f}/s, "
            f"{loop['errors']} errors): p50 / p99 / p99.9 | {loop['p50_ms']:.2f} / "
            f"{loop['p99_ms']:.2f} / {loop['p999_ms']:.2f} ms | p99 <= 5 ms |",
        ]
    lines += ["", f"outcomes over {local['decisions']} decisions: {local['outcomes']}"]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
