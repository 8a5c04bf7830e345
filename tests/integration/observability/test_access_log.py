"""The access log of a real `soredi-sync serve`, in its default text format.

A caller that puts a token in a query string (``?t=sst_...``) must get its access line written,
with the token masked: the redaction keeps the shape of uvicorn's access record, whose formatter
unpacks five arguments.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import serve_process

TOKEN = "sst_" + "Q" * 43


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`soredi-sync serve` on a free loopback port; its stderr and stdout go to one file."""
    log = tmp_path / "serve.log"
    with serve_process(database_url, log) as (_process, base):
        yield base, log


class TestTextAccessLog:
    def test_a_token_in_a_query_string_is_masked_and_the_access_line_is_still_written(
        self, served: tuple[str, Path]
    ) -> None:
        base, log = served
        answers = [
            httpx.get(f"{base}/healthz?t={TOKEN}", timeout=5).status_code,
            httpx.get(f"{base}/v1/snapshots/current?access_token={TOKEN}", timeout=5).status_code,
        ]
        assert answers == [200, 401]
        deadline = time.monotonic() + 10
        while "/v1/snapshots/current" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        text = log.read_text()
        assert TOKEN not in text and TOKEN[4:20] not in text
        assert "Logging error" not in text and "Traceback" not in text
        lines = [line for line in text.splitlines() if '"GET /' in line]
        assert any('"GET /healthz?t=sst_*** HTTP/1.1" 200' in line for line in lines), text
        assert any(
            '"GET /v1/snapshots/current?access_token=*** HTTP/1.1" 401' in line for line in lines
        ), text
