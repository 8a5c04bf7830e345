"""``soredi-sync export``: the registry in other formats; ``export fhir`` writes the FHIR
directory (IHE mCSD Organization and Endpoint resources) as FHIR Bulk Data NDJSON."""

from __future__ import annotations

import time
from pathlib import Path

import click

from soredi_sync.cli.common import emit_json, fail, json_option, open_app
from soredi_sync.errors import SorediError


@click.group("export")
def export_group() -> None:
    """The registry in other formats."""


@export_group.command("fhir")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="folder for Organization.ndjson and Endpoint.ndjson (made if missing)",
)
@click.option(
    "--snapshot",
    "snapshot_id",
    type=click.IntRange(min=1),
    help="the versions current on this snapshot (default: the current snapshot)",
)
@json_option
@click.pass_context
def export_fhir(ctx: click.Context, out: Path, snapshot_id: int | None, as_json: bool) -> None:
    """Write the FHIR directory of a snapshot as NDJSON, one file per resource type.

    The resources are the versions stored after each sync; a database synced before they were
    stored gets the current snapshot's versions written first.
    """
    from soredi_sync.services.fhir_directory import ensure_versions, export_ndjson

    started = time.perf_counter()
    with open_app(ctx) as app:
        try:
            with app.uow() as uow:
                snapshot = ensure_versions(uow, app.reference.directory_context, snapshot_id)
                files = export_ndjson(uow, out, at_snapshot=snapshot.id)
        except SorediError as exc:
            fail(ctx, exc)
    seconds = time.perf_counter() - started
    if as_json:
        emit_json(
            {
                "snapshot_id": snapshot.id,
                "seconds": round(seconds, 2),
                "files": [
                    {
                        "type": f.resource_type,
                        "path": str(f.path),
                        "count": f.count,
                        "bytes": f.size,
                    }
                    for f in files
                ],
            }
        )
        return
    for f in files:
        click.echo(f"{f.path}: {f.count:,} {f.resource_type} resources, {f.size:,} bytes")
    click.echo(f"snapshot {snapshot.id} exported in {seconds:.1f} s")
