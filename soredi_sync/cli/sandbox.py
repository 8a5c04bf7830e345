"""``soredi-sync sandbox``: a synthetic SOR to generate and serve on loopback; and ``demo``, the
offline tour that runs on one."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from soredi_sync.cli.common import console, reference_of

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
