"""``soredi-sync sandbox``: a synthetic SOR to generate and serve on loopback; and ``demo``, the
offline tour that runs on one."""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soredi_sync.cli.common import console, reference_of, settings_of

if TYPE_CHECKING:
    from soredi_sync.sandbox.generate import Manifest
    from soredi_sync.sandbox.server import SandboxServer


@click.group("sandbox")
def sandbox_group() -> None:
    """A synthetic SOR served on loopback, for trying soredi-sync and for tests."""


@sandbox_group.command("generate")
@click.option(
    "--profile",
    type=click.Choice(["tiny", "small", "national"]),
    default="small",
    show_default=True,
)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--days", type=click.IntRange(0, 365), default=3, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.pass_context
def sandbox_generate(ctx: click.Context, profile: str, seed: int, days: int, out: Path) -> None:
    """Write day 0..DAYS of a synthetic SOR (sor.zip + Sor_complete.zip per day)."""
    from soredi_sync.sandbox.generate import generate

    columns = reference_of(ctx).csv_columns
    manifest = generate(out, profile=profile, seed=seed, days=days, columns=columns)
    click.echo(f"wrote {out} ({_manifest_summary(manifest)})")


def _manifest_summary(manifest: Manifest) -> str:
    counts = manifest.day(0).counts
    return (
        f"days 0..{manifest.days}; day 0: {counts['units']} units, {counts['glns']} GLNs, "
        f"{counts['capabilities']} GLN message types"
    )


@sandbox_group.command("serve")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True)
@click.option("--day", type=click.IntRange(0), default=0, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback only.")
@click.option(
    "--soap-port",
    type=click.IntRange(0, 65535),
    help="Also serve SORLS, SKRS and SORUS (SOAP) on this port, following the served day.",
)
@click.option(
    "--sts-port",
    type=click.IntRange(0, 65535),
    help="Also run a SOSI STS issuing DGWS ID cards on this port.",
)
@click.pass_context
def sandbox_serve(
    ctx: click.Context,
    directory: Path,
    port: int,
    day: int,
    host: str,
    soap_port: int | None,
    sts_port: int | None,
) -> None:
    """Serve a generated sandbox in the sor-filer URL layout until interrupted.

    Control it while it runs: POST /_sandbox/day/N switches the day, POST /_sandbox/fault
    injects a fault, GET /_sandbox/state shows both and the SORUS journal. Port 0 picks a free
    port; the URLs are printed once listening.

    With --soap-port the SOAP services answer for the day being served: SORLS (lookup), SKRS
    (replication feed) and SORUS (SubmitEdiTypeChanges). Changes SORUS accepts on day N are
    kept in DIR/sorus-journal.json (so a restart keeps them) and show in the files, the feed
    and the lookups from day N+1: switching to that day regenerates the days from N+1 on. On
    the last generated day SORUS refuses changes; generate more days. With --sts-port an STS
    issues DGWS ID cards (signed with a throwaway key) for clients that use one.
    """
    from soredi_sync.sandbox.server import is_loopback_host, serve_forever

    if not is_loopback_host(host):
        raise click.BadParameter(f"{host!r} is not a loopback address", param_hint="--host")
    columns = reference_of(ctx).csv_columns
    with ExitStack() as stack:

        def on_ready(server: SandboxServer) -> None:
            # The SOAP line comes first: scripts wait for it before they call the services.
            if soap_port is not None:
                _start_sandbox_soap(stack, server, host, soap_port)
            if sts_port is not None:
                from soredi_sync.sandbox.sts import StsSandboxServer

                sts = stack.enter_context(StsSandboxServer(host=host, port=sts_port))
                click.echo(f"STS: {sts.url}")
            click.echo(
                f"serving {directory} day {server.day} on {server.base_url} (Ctrl-C to stop)"
            )

        try:
            serve_forever(
                directory, host=host, port=port, day=day, on_ready=on_ready, columns=columns
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc


def _start_sandbox_soap(stack: ExitStack, server: SandboxServer, host: str, port: int) -> None:
    """SORLS, SKRS and SORUS linked to the running HTTP sandbox ``server``."""
    from soredi_sync.sandbox.soap import SoapSandboxServer

    soap = stack.enter_context(SoapSandboxServer(files=server, host=host, port=port))
    click.echo(
        f"SOAP: SORLS {soap.wsdl_url('sorls')}, SKRS {soap.wsdl_url('skrs')}, "
        f"SORUS {soap.wsdl_url('sorus')}"
    )


@sandbox_group.command("traffic")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A generated sandbox: senders and receivers are drawn from its register.",
)
@click.option(
    "--day",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="The sandbox day whose register to draw from (the day the API has synced).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=1,
    show_default=True,
    help="Spread the messages over the N days ending today (Danish date), each dated `at` its day.",
)
@click.option(
    "--per-day",
    type=click.IntRange(1),
    help="Messages a day (default: 1.4 per GLN of the register, as MedCom's 825k "
    "letters a month over about 20,000 GLNs).",
)
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=0.0,
    help="At most R requests a second (default 0: as fast as the API answers, 1,000 a batch).",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="The same seed, register and days give the same requests, message ids included.",
)
@click.option("--url", help="The API's base URL (default from config [api]: http://HOST:PORT).")
@click.option(
    "--token",
    envvar="SOREDI_TRAFFIC_TOKEN",
    required=True,
    help="Bearer token with route:read (or SOREDI_TRAFFIC_TOKEN); never shown.",
)
# Until every API takes a question's `sender`: leave it out.
@click.option("--no-sender", "without_sender", is_flag=True, hidden=True)
@click.pass_context
def sandbox_traffic(
    ctx: click.Context,
    directory: Path,
    day: int,
    days: int,
    per_day: int | None,
    rate: float,
    seed: int,
    url: str | None,
    token: str,
    without_sender: bool,
) -> None:
    """Post a gateway's routing traffic to a running API (POST /v1/route/batch), so that its
    decision log has realistic days to work on.

    Senders and receivers are the sandbox's locations by owner kind (most letters between
    hospitals, general practice and municipalities), a few receivers getting most of them;
    each sender writes in the syntax it advertises, some letters carry attachments. Prints one
    line per day and a total: requests sent, decisions by outcome, errors.
    """
    from soredi_sync.clients.sor_files import make_http_client
    from soredi_sync.domain.days import today_in_denmark
    from soredi_sync.errors import InvalidSourceData
    from soredi_sync.sandbox.traffic import (
        TrafficCounts,
        TrafficError,
        TrafficSender,
        traffic_from_sandbox,
    )
    from soredi_sync.sandbox.traffic_mix import TrafficDay

    settings = settings_of(ctx)
    reference = reference_of(ctx)
    try:
        traffic = traffic_from_sandbox(
            directory,
            day,
            reference,
            last_day=today_in_denmark(),
            days=days,
            per_day=per_day,
            seed=seed,
        )
    except (ValueError, InvalidSourceData) as exc:
        raise click.ClickException(str(exc)) from exc
    base_url = url or f"http://{settings.api.host}:{settings.api.port}"

    def on_day(traffic_day: TrafficDay, counts: TrafficCounts) -> None:
        click.echo(f"{traffic_day.day}: {counts.summary()}")

    started = time.monotonic()
    with make_http_client(settings.http) as http:
        sender = TrafficSender(
            http,
            base_url,
            token,
            retry=settings.retry,
            rate=rate,
            with_sender=not without_sender,
        )
        try:
            total = sender.send(traffic, on_day)
        except TrafficError as exc:
            click.echo(f"stopped after {exc.counts.summary()}", err=True)
            raise click.ClickException(str(exc)) from exc
    click.echo(
        f"total: {total.summary()} in {total.batches} batches, "
        f"{time.monotonic() - started:.1f} s, to {base_url}"
    )


@click.command("demo")
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Leave the database, the sandbox and the messages in DIR and print the commands "
    "to explore them (default: a temporary folder, removed at the end).",
)
@click.option("--dir", "old_dir", type=click.Path(file_okay=False, path_type=Path), hidden=True)
@click.option("--profile", type=click.Choice(["tiny", "small"]), default="small", show_default=True)
@click.pass_context
def demo(ctx: click.Context, keep: Path | None, old_dir: Path | None, profile: str) -> None:
    """Offline tour: a sandbox SOR served on loopback and synced for two days; then a gateway's
    routing decisions on CareCommunication bundles, a region's audit summary, and a
    municipality's switch plan submitted to the sandbox SORUS and verified the next day."""
    from soredi_sync.demo import run_demo

    if keep is not None and old_dir is not None:
        raise click.UsageError("--dir is the older name of --keep: give one of them")
    ctx.exit(run_demo(keep or old_dir, profile=profile, console=console()))
