"""``python -m soredi_sync``: the ``soredi-sync`` command line."""

from __future__ import annotations

from soredi_sync.cli import main

main()
