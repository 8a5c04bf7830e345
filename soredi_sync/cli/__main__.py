"""``python -m soredi_sync.cli``, as before the command line became a package (and as
``python -m soredi_sync``)."""

from __future__ import annotations

from soredi_sync.cli import main

main()
