"""Calling the ``/fhir`` API in tests: a GET that must be FHIR JSON, searches and histories
followed by their ``next`` links, the OperationOutcome an error must be, and an mCSD update
client's replay of a history."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR = "application/fhir+json"
Headers = dict[str, str]
Mirror = dict[str, dict[str, Any]]  # resource type -> id -> what the client keeps of it


def fetch(client: TestClient, url: str, headers: Headers, **kwargs: Any) -> dict[str, Any]:
    """GET ``url``: a 200 FHIR JSON answer, its body."""
    response = client.get(url, headers=headers, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR
    body: dict[str, Any] = response.json()
    return body


def search(client: TestClient, headers: Headers, path: str, **params: str) -> dict[str, Any]:
    """A searchset Bundle, checked against FHIR R4 as it comes."""
    bundle = fetch(client, f"/fhir/{path}", headers, params=params)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "searchset"
    return bundle


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def typed(bundle: dict[str, Any], mode: str) -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((k["url"] for k in bundle["link"] if k["relation"] == relation), None)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def assert_outcome(response: Any, status: int, code: str) -> dict[str, Any]:
    """The answer is a FHIR OperationOutcome with ``status`` and an issue of ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR
    body: dict[str, Any] = response.json()
    OperationOutcome.model_validate(body)
    assert body["resourceType"] == "OperationOutcome"
    assert [issue["code"] for issue in body["issue"]] == [code]
    assert body["issue"][0]["severity"] == "error"
    assert body["issue"][0]["diagnostics"]
    return body


def page_through(client: TestClient, headers: Headers, first_url: str) -> list[dict[str, Any]]:
    """Every page from ``first_url`` on, by ``next`` links."""
    pages = []
    url: str | None = first_url
    while url is not None:
        bundle = fetch(client, relative(url) if url.startswith("http") else url, headers)
        pages.append(bundle)
        url = link(bundle, "next")
        assert len(pages) < 100, "the next links do not end"
    return pages


def history(client: TestClient, headers: Headers, url: str) -> list[dict[str, Any]]:
    """Every entry of a history from ``url`` on, following ``next`` (newest first, as served),
    each page checked against FHIR R4."""
    entries = []
    for page in page_through(client, headers, url):
        Bundle.model_validate(page)
        assert page["type"] == "history"
        entries += page.get("entry", [])
    return entries


def replay(mirror: Mirror, entries: list[dict[str, Any]]) -> None:
    """Apply a history to ``mirror`` as an mCSD update client does: FHIR lists the newest
    version first, so the entries are applied from the last to the first; an entry for a
    version the client already holds (the bookmark's snapshot comes again) changes nothing."""
    for entry in reversed(entries):
        resource_type, rid = entry["request"]["url"].split("/")
        if entry["request"]["method"] == "DELETE":
            mirror[resource_type].pop(rid, None)
        else:
            assert entry["request"]["method"] == "PUT"
            mirror[resource_type][rid] = entry["resource"]


def bookmark(bundle: dict[str, Any]) -> str:
    """The ``_since`` an update client asks with next: the Bundle's ``meta.lastUpdated``."""
    stamp: str = bundle["meta"]["lastUpdated"]
    return stamp
