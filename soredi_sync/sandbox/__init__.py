"""The sandbox: a synthetic, versioned SOR + SOR-EDI and a loopback server that plays sor-filer.

- :func:`~soredi_sync.sandbox.generate.generate` writes days of files plus a manifest of what
  they contain (counts, every defect, day-to-day changes).
- :class:`~soredi_sync.sandbox.server.SandboxServer` serves them with ETags and injectable
  faults; :func:`~soredi_sync.sandbox.server.serve_forever` is the CLI's entry point.
"""

from __future__ import annotations

from soredi_sync.sandbox.catalog import PROFILES
from soredi_sync.sandbox.generate import (
    Manifest,
    expected_registry,
    expected_snapshot,
    generate,
)
from soredi_sync.sandbox.server import SandboxServer, serve_forever
from soredi_sync.sandbox.snapshot import DEFECT_CODES

__all__ = [
    "DEFECT_CODES",
    "PROFILES",
    "Manifest",
    "SandboxServer",
    "expected_registry",
    "expected_snapshot",
    "generate",
    "serve_forever",
]
