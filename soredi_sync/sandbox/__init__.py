"""The sandbox: a synthetic, versioned SOR + SOR-EDI and loopback servers that play its services.

- :func:`~soredi_sync.sandbox.generate.generate` writes days of files plus a manifest of what
  they contain (counts, every defect, day-to-day changes, the SORUS submissions applied).
  The register behind them is a :class:`~soredi_sync.sandbox.world.World`: built in
  ``build``/``planted``, changed night by night in ``churn`` and ``capabilities``, written
  out by ``writer``.
- :class:`~soredi_sync.sandbox.server.SandboxServer` serves them with ETags and injectable
  faults, and owns the directory's SORUS journal: moving to a day that accepted submissions
  take effect on regenerates the files from that day;
  :func:`~soredi_sync.sandbox.server.serve_forever` is the CLI's entry point.
- :class:`~soredi_sync.sandbox.soap.SoapSandboxServer` plays SORLS, SKRS and SORUS, standalone
  or linked to a ``SandboxServer`` (``SoapSandboxServer(files=server)``) so that all of them
  follow one day and one journal; :class:`~soredi_sync.sandbox.sts.StsSandboxServer` issues
  DGWS ID cards. Both are imported from their modules (they need lxml, signxml).
- :class:`~soredi_sync.sandbox.journal.SubmissionJournal` records accepted SORUS changes, each
  effective the day after it was received.
"""

from __future__ import annotations

from soredi_sync.sandbox.catalog import PROFILES
from soredi_sync.sandbox.generate import (
    Manifest,
    expected_registry,
    expected_snapshot,
    generate,
)
from soredi_sync.sandbox.journal import JournalEntry, SubmissionJournal
from soredi_sync.sandbox.server import SandboxServer, serve_forever
from soredi_sync.sandbox.snapshot import DEFECT_CODES

__all__ = [
    "DEFECT_CODES",
    "PROFILES",
    "JournalEntry",
    "Manifest",
    "SandboxServer",
    "SubmissionJournal",
    "expected_registry",
    "expected_snapshot",
    "generate",
    "serve_forever",
]
