from __future__ import annotations

from soredi_sync.cli import main

main()
