"""The SOR XML parser never reaches the network: a document whose prolog points at a local
HTTP server (an external DTD, an external entity, a parameter entity) is refused, and the server
is never asked for anything. The parser's other hostile-XML cases are unit tests
(``tests/unit/parsing/test_sor_xml.py``); this one needs a socket."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from soredi_sync.errors import InvalidSourceData
from soredi_sync.parsing import sor_xml
from soredi_sync.parsing.sor_xml import parse_sor_xml
from tests.support.sor_writer import owner, wrap


def parse(data: bytes) -> sor_xml.SorXml:
    return parse_sor_xml(io.BytesIO(data))


class TestHostileXml:
    @pytest.fixture
    def listener(self) -> Iterator[tuple[str, list[str]]]:
        """A local HTTP server that records every request it gets."""
        requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                requests.append(self.path)
                body = b'<!ENTITY % leak "x">'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", requests
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    @pytest.mark.parametrize(
        "prolog",
        [
            '<!DOCTYPE SorTree SYSTEM "{url}/external.dtd">',
            '<!DOCTYPE SorTree [<!ENTITY xxe SYSTEM "{url}/entity">]>',
            '<!DOCTYPE SorTree [<!ENTITY % remote SYSTEM "{url}/param.dtd"> %remote;]>',
        ],
        ids=["external-dtd", "external-entity", "parameter-entity"],
    )
    def test_xxe_never_reaches_the_network(
        self, listener: tuple[str, list[str]], prolog: str
    ) -> None:
        url, requests = listener
        body = owner().replace("Region", "&xxe;") if "xxe" in prolog else owner()
        with pytest.raises(InvalidSourceData):
            parse(wrap(body, prolog=prolog.format(url=url)))
        assert requests == []
