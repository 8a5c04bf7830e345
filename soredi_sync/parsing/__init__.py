"""Reading the sor-filer downloads (zip → XML/CSV → validated Registry).

Entry point: :func:`soredi_sync.parsing.load.load_registry`. Every data fault raises
:class:`soredi_sync.errors.InvalidSourceData`.
"""

from __future__ import annotations
