"""``soredi-sync demo``: the whole pipeline offline, on SQLite and a loopback sandbox.

The tour generates a sandbox, serves it (files, and SORUS over SOAP) on loopback and syncs day 0
twice and day 1; then it shows what each of the three users does with the result:

- the conversion gateway routes two CareCommunication bundles written for sandbox receivers,
  one delivered natively and one converted to XDIS91 by the receiver's VANS;
- a region reads its audit summary;
- MedCom plans one municipality's switch to CareCommunication, submits it to the sandbox SORUS
  and, after the sync of the next day, sees it verified.

Without ``keep`` everything happens in a temporary folder that is removed afterwards; with it
the database, the sandbox and the messages stay there and the commands to explore them are
printed.

The steps live beside this module: :mod:`~soredi_sync.demo.syncing` (2-6),
:mod:`~soredi_sync.demo.gateway` (7), :mod:`~soredi_sync.demo.region` (8) and
:mod:`~soredi_sync.demo.medcom` (9); what they share is :mod:`~soredi_sync.demo.story`.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import bootstrap
from soredi_sync.config import Settings
from soredi_sync.db.schema import upgrade
from soredi_sync.demo.gateway import route_bundles
from soredi_sync.demo.medcom import plan_switch
from soredi_sync.demo.region import read_audit
from soredi_sync.demo.story import DAYS, Story, current_snapshot
from soredi_sync.demo.syncing import sync_and_show
from soredi_sync.errors import SorediError
from soredi_sync.reference_data import ReferenceData

logger = logging.getLogger(__name__)

DEMO_SEED = 7
DATABASE = "demo.db"
SANDBOX = "sandbox"
MESSAGES = "messages"
# What a kept folder may already hold: what an earlier demo left (the database and its
# companions: -wal, -shm, -journal, the schema lock), and the older layout's per-profile
# sandboxes. Anything else there is not ours to overwrite.
_OURS = frozenset({SANDBOX, MESSAGES, "sandbox-tiny", "sandbox-small"})


def _is_ours(name: str) -> bool:
    return name in _OURS or name == DATABASE or name.startswith(f"{DATABASE}-")


def run_demo(
    keep: Path | None = None, *, profile: str = "small", console: Console | None = None
) -> int:
    """Run the tour; returns an exit code (0: every step did what it shows).

    :param keep: the folder to leave the database, the sandbox and the messages in (created if
        missing; what an earlier demo left there is replaced). None: a temporary folder,
        removed at the end.
    """
    console = console or Console()
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="soredi-demo-") as tmp:
            code, _story = _tour(Path(tmp), profile, console)
        console.print(
            "Done. The demo's files are removed again; "
            "[bold]soredi-sync demo --keep DIR[/bold] keeps them to explore."
        )
        return code
    others = _foreign_entries(keep)
    if others:
        console.print(
            f"[red]{escape(str(keep))} holds files the demo did not write "
            f"({escape(', '.join(others[:5]))}): give a new or empty folder, or one an earlier "
            "demo wrote[/red]"
        )
        return 2
    code, story = _tour(keep, profile, console)
    if code == 0:
        _explore(console, keep, story)
    return code


def _foreign_entries(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    if not directory.is_dir():
        return [directory.name]
    return sorted(child.name for child in directory.iterdir() if not _is_ours(child.name))


def _fresh(directory: Path) -> None:
    """Remove what an earlier demo left in ``directory``: each run starts from scratch."""
    directory.mkdir(parents=True, exist_ok=True)
    for companion in directory.glob(f"{DATABASE}*"):
        if companion.is_file() and _is_ours(companion.name):
            companion.unlink()
    for name in (SANDBOX, MESSAGES):
        shutil.rmtree(directory / name, ignore_errors=True)


def _tour(directory: Path, profile: str, console: Console) -> tuple[int, Story]:
    from soredi_sync.sandbox.generate import generate
    from soredi_sync.sandbox.server import SandboxServer
    from soredi_sync.sandbox.soap import SoapSandboxServer

    _fresh(directory)
    database = directory.resolve() / DATABASE
    settings = Settings(database_url=f"sqlite:///{database}")
    reference = ReferenceData.load(settings.config_dir)
    story = Story(database_url=settings.database_url)

    console.print(
        f"[bold]1. Sandbox[/bold]: a synthetic SOR ({profile} profile), days 0..{DAYS}, "
        f"in {escape(str(directory / SANDBOX))}"
    )
    sandbox = directory / SANDBOX
    generate(
        sandbox,
        profile=profile,
        seed=DEMO_SEED,
        days=DAYS,
        columns=reference.csv_columns,
        message_types=reference.message_types,
    )
    upgrade(settings.database_url)

    with (
        SandboxServer(
            sandbox,
            day=0,
            xml_path=settings.sources.sor_xml_path,
            csv_path=settings.sources.sor_csv_path,
            columns=reference.csv_columns,
            message_types=reference.message_types,
        ) as server,
        SoapSandboxServer(files=server) as soap,
    ):
        settings.soap.sorus.address = soap.url("sorus")
        with bootstrap(settings, reference) as app:
            console.print(
                f"   served on {server.base_url} in the sor-filer layout; "
                f"SORUS on {soap.url('sorus')}"
            )
            code = sync_and_show(console, app, server, story)
            if code:
                return code, story
            current = current_snapshot(app)
            steps: tuple[Callable[[], int], ...] = (
                lambda: route_bundles(console, app, current, directory.resolve() / MESSAGES, story),
                lambda: read_audit(console, app, current, story),
                lambda: plan_switch(console, app, current, server, story),
            )
            for step in steps:
                try:
                    code = step()
                except SorediError as exc:
                    console.print(f"[red]{escape(str(exc))}[/red]")
                    return 1, story
                if code:
                    return code, story
    return 0, story


# -- --keep: how to explore what is left --------------------------------------------------------


def _explore(console: Console, directory: Path, story: Story) -> None:
    url = story.database_url
    run = f"soredi-sync --database-url {shlex.quote(url)}"
    console.print(
        f"Done. Kept in {escape(str(directory))}: the database ({DATABASE}), the sandbox "
        f"({SANDBOX}/, days 0..{DAYS} and the SORUS journal) and the messages ({MESSAGES}/). "
        "Explore it:"
    )
    lines = [
        f"{run} status",
        f"{run} changes --since 0 --limit 20",
    ]
    if story.gln:
        lines.append(f"{run} history gln {story.gln}")
    if story.messages and story.decided_on:
        message = shlex.quote(str(story.messages[-1]))
        lines.append(f"{run} route-message {message} --at {story.decided_on}")
    if story.region:
        lines.append(f"{run} audit --region {story.region}")
    if story.plan_id is not None:
        lines.append(f"{run} plan show {story.plan_id}")
    lines.append(f"{run} serve      # the HTTP API (tokens: soredi-sync token --help)")
    sandbox = shlex.quote(str(directory.resolve() / SANDBOX))
    lines.append(f"soredi-sync sandbox serve --dir {sandbox} --day {DAYS}")
    for line in lines:
        console.print(f"  {escape(line)}", soft_wrap=True)
