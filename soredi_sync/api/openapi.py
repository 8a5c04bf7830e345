"""The published OpenAPI document, as committed in ``docs/openapi.json``.

Built by the same :func:`~soredi_sync.api.create_app` that serves ``GET /openapi.json``, over an
in-memory SQLite engine that is never connected: no configuration file, database or network is
read, so the document is the same wherever it is made. Regenerate the committed copy with::

    soredi-sync openapi > docs/openapi.json
    python -m soredi_sync.api.openapi > docs/openapi.json   # the same, without the CLI

``tests/integration/api/test_openapi_document.py`` fails when the served document drifts from it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

COMMITTED_PATH = "docs/openapi.json"


def build_document() -> dict[str, Any]:
    """What ``GET /openapi.json`` serves."""
    from soredi_sync.api.app import create_app
    from soredi_sync.api.settings import ApiSettings, DecisionLogSettings
    from soredi_sync.bootstrap import bootstrap
    from soredi_sync.config import Settings
    from soredi_sync.observability.metrics import Metrics

    # The document depends on no setting; the engine is made but never connected.
    with bootstrap(Settings(database_url="sqlite://")) as app:
        api = create_app(
            app, ApiSettings(), DecisionLogSettings(), Metrics(process_collectors=False)
        )
        return api.openapi()


def render(document: dict[str, Any]) -> str:
    """The committed form: two-space indents, keys sorted, a trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(render(build_document()))


if __name__ == "__main__":
    main()
