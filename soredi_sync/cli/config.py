"""``soredi-sync config``: an editable copy of the configuration, and the effective settings."""

from __future__ import annotations

from pathlib import Path

import click

from soredi_sync.cli.common import emit_json, json_option, lazy_settings


@click.group("config")
def config_group() -> None:
    """The configuration: an editable copy, the effective settings."""


@config_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that are there already.")
@click.pass_context
def config_init(ctx: click.Context, directory: Path, force: bool) -> None:
    """Write editable copies of every configuration file (settings, routing policy, data
    tables) to DIRECTORY; SOREDI_CONFIG_DIR=DIRECTORY makes soredi-sync read them."""
    import shutil

    from soredi_sync.config import default_config_files

    files = default_config_files()
    there = [directory / f.name for f in files if (directory / f.name).exists()]
    if there and not force:
        names = ", ".join(p.name for p in there)
        click.echo(f"error: {directory} has {names} already (--force overwrites)", err=True)
        ctx.exit(1)
    directory.mkdir(parents=True, exist_ok=True)
    for source in files:
        shutil.copyfile(source, directory / source.name)
        click.echo(f"wrote {directory / source.name}")
    click.echo(f"Use them with: export SOREDI_CONFIG_DIR={directory.resolve()}")


@config_group.command("show")
@json_option
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """The effective settings and where each comes from: default (the code or the package's
    soredi-sync.toml), file (an operator's), environment (SOREDI_*) or command line. Secrets
    are masked."""
    from soredi_sync.config_report import effective_settings, mask_secrets

    try:
        _, report = effective_settings(lazy_settings(ctx).overrides)
    except ValueError as exc:  # pydantic's ValidationError; its text quotes the input
        click.echo(f"error: invalid configuration: {mask_secrets(str(exc))}", err=True)
        ctx.exit(1)
    if as_json:
        emit_json(report.as_json())
        return
    click.echo(report.as_text())
