"""Routing benchmark on the national sandbox profile, every figure from one run.

    .venv/bin/python -m benchmarks.bench_route [--decisions 50000] [--seconds 10]

1. In-process: p50/p99 of one decision, on the resolver alone and through the routing service
   (which also checks, per decision, which snapshot is current: one primary-key query).
2. Over HTTP on loopback, one uvicorn worker serving the project's app exactly as
   ``soredi-sync serve`` does (access log on), driven by ``wrk`` (Debian package ``wrk``):
   decisions/s for ``POST /v1/route`` side by side, in the same run, with two bare endpoints of
   the same stack: ``GET /healthz``, and ``POST /bench/bare``, added here, which takes the same
   JSON body through the same request model and answers a constant (no token, no decision).

Targets: p99 <= 200 us in process; >= 2,000 decisions/s and >= 50% of the bare endpoint.
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
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def over_http(database_url: str, seconds: int, body: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("the HTTP part needs wrk (apt-get install wrk)")
    env = os.environ | {"SOREDI_DATABASE_URL": database_url}
    created = subprocess.run(
        [*CLI, "token", "create", "--scope", "route:read", "--name", "benchmark"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    token = re.search(r"sst_[A-Za-z0-9_\-]+", created)
    if token is None:
        raise SystemExit(f"no token in the output of token create:\n{created}")
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_route", "--serve-port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("soredi-sync serve did not become ready")
            time.sleep(0.2)
        check = httpx.post(
            base + "/v1/route",
            json=body,
            timeout=10,
            headers={"Authorization": f"Bearer {token.group(0)}"},
        )
        check.raise_for_status()
        bare_check = httpx.post(base + "/bench/bare", json=body, timeout=10)
        if bare_check.status_code != 200:
            raise SystemExit(f"bare endpoint answered {bare_check.status_code}: {bare_check.text}")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(
                'wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(json.dumps(body))}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {token.group(0)}"\n'
            )
        script = Path(lua.name)
        _wrk(base + "/v1/route", 2, script)  # warm-up
        route_rps = _wrk(base + "/v1/route", seconds, script)
        bare_post_rps = _wrk(base + "/bench/bare", seconds, script)
        bare_rps = _wrk(base + "/healthz", seconds, None)
        script.unlink()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "route_rps": route_rps,
        "bare_rps": bare_rps,
        "bare_post_rps": bare_post_rps,
        "share": route_rps / bare_rps,
        "share_post": route_rps / bare_post_rps,
        "decision": check.json()["decision"],
    }


def serve_for_benchmark(port: int) -> None:
    """The project's API as `soredi-sync serve` runs it, plus one bare endpoint to compare."""
    import uvicorn

    from soredi_sync.api.app import create_app
    from soredi_sync.api.server import log_config
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings

    settings = Settings()
    app = bootstrap(settings)
    api = create_app(app, settings.api, settings.decision_log)

    @api.post("/bench/bare")
    async def bare(body: RouteIn) -> dict[str, str]:
        return {"decision": "none"}

    @api.post("/bench/auth")
    async def bare_with_token(body: RouteIn, caller: RouteReader) -> dict[str, str]:
        return {"decision": "none"}

    config = uvicorn.Config(
        api,
        host="127.0.0.1",
        port=port,
        workers=1,
        log_config=log_config(),
        access_log=True,
        server_header=False,
    )
    uvicorn.Server(config).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--profile", default="national")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--serve-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_port:
        serve_for_benchmark(args.serve_port)
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
        remote = None if args.skip_http else over_http(url, args.seconds, body)

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
        lines += [
            f"| HTTP POST /v1/route, 1 worker, wrk 2 threads x 32 connections | "
            f"{remote['route_rps']:,.0f} decisions/s | >= 2,000/s |",
            f"| HTTP GET /healthz (bare endpoint, same stack) | "
            f"{remote['bare_rps']:,.0f} req/s | |",
            f"| HTTP POST /bench/bare (same body and model, constant answer) | "
            f"{remote['bare_post_rps']:,.0f} req/s | |",
            f"| route / bare GET | {remote['share']:.0%} | >= 50% |",
            f"| route / bare POST | {remote['share_post']:.0%} | >= 50% |",
        ]
    lines += ["", f"outcomes over {local['decisions']} decisions: {local['outcomes']}"]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
