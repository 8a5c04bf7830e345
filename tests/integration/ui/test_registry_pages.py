"""The console's registry pages over the synced sandbox (days 0 and 1): search by GLN, SOR-ID
and name fragment; a unit with its tree and inherited GLN; a GLN with its message types
(obsolete ones marked) and units; history as a timeline; ``?at=`` for an older state; the owner
restriction answered as the API answers the same token; Danish by default, English on request.
Also the name search and unit history of the repository, database against fake."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from soredi_sync.bootstrap import App
from soredi_sync.domain.model import GlnMode, Registry
from soredi_sync.ports.fake_registry import FakeRegistryRepository
from soredi_sync.ports.records import SnapshotInfo
from tests.support.api import World, bearer
from tests.support.sandbox import SWITCHED
from tests.support.ui import UiClient, assert_console_headers


def snapshots(app: App) -> tuple[list[SnapshotInfo], list[Registry]]:
    """The synced snapshots, oldest first, and the registry of each."""
    with app.uow() as uow:
        infos = sorted(uow.registry.list_snapshots(), key=lambda s: s.id)
        return infos, [uow.registry.load_registry(s.id) for s in infos]


def get(client: TestClient, path: str, status: int = 200, **query: str) -> str:
    answer = client.get(path, params=query, follow_redirects=False)
    assert answer.status_code == status, answer.text
    assert_console_headers(answer)
    return answer.text


def listed_units(html: str) -> list[str]:
    """SOR-IDs of the units in the search results."""
    return re.findall(r'<th scope="row"><a href="/ui/registry/units/(\d+)">', html)


@pytest.fixture
def reader(ui_client: UiClient) -> TestClient:
    return ui_client("registry:read", lang="en")


class TestSearch:
    def test_a_gln_goes_to_its_page_keeping_the_date(
        self, reader: TestClient, world: World
    ) -> None:
        answer = reader.get("/ui/registry", params={"q": world.gln_in}, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/ui/registry/glns/{world.gln_in}"
        answer = reader.get("/ui/registry", params={"q": f" {world.gln_in} ", "at": "2030-01-01"})
        assert answer.url.path == f"/ui/registry/glns/{world.gln_in}"
        assert answer.url.params["at"] == "2030-01-01"

    def test_a_sor_id_goes_to_its_unit(self, reader: TestClient, world: World) -> None:
        answer = reader.get("/ui/registry", params={"q": world.unit_in}, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/ui/registry/units/{world.unit_in}"

    def test_unknown_digits_find_nothing(self, reader: TestClient) -> None:
        html = get(reader, "/ui/registry", q="5790000000000")
        assert "There is no GLN or unit 5790000000000 on this snapshot." in html

    def test_a_name_fragment_lists_the_units_containing_it_in_any_case(
        self, reader: TestClient, synced_app: App
    ) -> None:
        registry = snapshots(synced_app)[1][-1]
        name = next(u.name for u in registry.units.values() if "Øst" in u.name)
        for fragment in ("øst", "ØST", "Øst"):
            found = set(listed_units(get(reader, "/ui/registry", q=fragment)))
            expected = {u.sor_id for u in registry.units.values() if "øst" in u.name.casefold()}
            assert found == expected, fragment
        word = name.split()[0]
        found = set(listed_units(get(reader, "/ui/registry", q=word.lower())))
        assert found == {
            u.sor_id for u in registry.units.values() if word.casefold() in u.name.casefold()
        }

    def test_a_fragment_is_text_not_a_pattern(self, reader: TestClient) -> None:
        html = get(reader, "/ui/registry", q="%_%")
        assert listed_units(html) == []
        assert "No unit's name contains" in html

    def test_a_long_list_is_cut_and_says_so(self, reader: TestClient, synced_app: App) -> None:
        registry = snapshots(synced_app)[1][-1]
        many = sum("a" in u.name.casefold() for u in registry.units.values())
        assert many > 50
        html = get(reader, "/ui/registry", q="a ")  # one letter: too short
        assert "Type at least 2 characters" in html
        html = get(reader, "/ui/registry", q="an")
        matching = sum("an" in u.name.casefold() for u in registry.units.values())
        assert len(listed_units(html)) == min(matching, 50)
        assert ("Only the first 50 are shown" in html) == (matching > 50)


class TestUnit:
    def test_an_inheriting_unit_shows_its_tree_and_the_path_of_its_gln(
        self, reader: TestClient, synced_app: App
    ) -> None:
        registry = snapshots(synced_app)[1][-1]
        unit = next(
            u
            for u in registry.units.values()
            if u.gln_mode is GlnMode.INHERITED
            and u.parent_sor_id
            and registry.units[u.parent_sor_id].gln_mode is GlnMode.INHERITED
        )
        parent = registry.units[unit.parent_sor_id]  # type: ignore[index]
        html = get(reader, f"/ui/registry/units/{unit.sor_id}")
        assert f"<h1>{escape(unit.name)}</h1>" in html
        assert f'href="/ui/registry/units/{parent.sor_id}"' in html
        assert f'href="/ui/registry/units/{unit.owner_sor_id}"' in html
        path = html[html.index("The path it is inherited along") :]
        carrier = registry.units[parent.parent_sor_id]  # type: ignore[index]
        while carrier.gln_mode is GlnMode.INHERITED:
            carrier = registry.units[carrier.parent_sor_id]  # type: ignore[index]
        assert f'href="/ui/registry/glns/{carrier.gln}"' in html
        assert path.index(parent.sor_id) < path.index(carrier.sor_id)
        children = [u for u in registry.units.values() if u.parent_sor_id == unit.sor_id]
        for child in children:
            assert f'href="/ui/registry/units/{child.sor_id}"' in html

    def test_the_history_of_a_renamed_unit_is_a_timeline(
        self, reader: TestClient, synced_app: App
    ) -> None:
        infos, (before, after) = snapshots(synced_app)
        sor_id = next(
            s
            for s, u in after.units.items()
            if s in before.units and before.units[s].name != u.name
        )
        html = get(reader, f"/ui/registry/units/{sor_id}")
        history = html[html.index('id="history-heading"') :]
        assert "Changed:" in history and "In the first snapshot." in history
        old, new = before.units[sor_id].name, after.units[sor_id].name
        row = f"<td>{escape(old)}</td><td>{escape(new)}</td>"  # the name: before, after
        assert row in history
        assert history.index(f"snapshot {infos[1].id}") < history.index(f"snapshot {infos[0].id}")

    def test_at_shows_the_older_state(self, reader: TestClient, synced_app: App) -> None:
        infos, (before, after) = snapshots(synced_app)
        sor_id = next(
            s
            for s, u in after.units.items()
            if s in before.units and before.units[s].name != u.name
        )
        day0 = infos[0].effective_date.isoformat()
        old = get(reader, f"/ui/registry/units/{sor_id}", at=day0)
        new = get(reader, f"/ui/registry/units/{sor_id}")
        assert f"<h1>{escape(before.units[sor_id].name)}</h1>" in old
        assert f"<h1>{escape(after.units[sor_id].name)}</h1>" in new
        assert f"As snapshot {infos[0].id} describes" in old
        assert 'value="' + day0 + '"' in old  # the picker keeps the date

    def test_a_unit_added_on_day_1_was_not_there_on_day_0(
        self, reader: TestClient, synced_app: App
    ) -> None:
        infos, (before, after) = snapshots(synced_app)
        added = next(s for s in after.units if s not in before.units)
        day0 = infos[0].effective_date.isoformat()
        html = get(reader, f"/ui/registry/units/{added}", status=404, at=day0)
        assert f"There was no unit {added} on {day0}." in html
        before_all = (infos[0].effective_date - timedelta(days=1)).isoformat()
        html = get(reader, f"/ui/registry/units/{added}", status=404, at=before_all)
        assert "No snapshot describes" in html


class TestGln:
    def test_a_switched_gln_then_and_now(self, reader: TestClient, synced_app: App) -> None:
        infos, (before, after) = snapshots(synced_app)
        gln = next(g for g in SWITCHED if "FDIS91" in after.capabilities.get(g, {}))
        assert "FDIS91" not in before.capabilities.get(gln, {})
        now = get(reader, f"/ui/registry/glns/{gln}")
        then = get(reader, f"/ui/registry/glns/{gln}", at=infos[0].effective_date.isoformat())
        types = re.compile(r'<th scope="row" class="mono">(\w+)</th>')
        assert set(types.findall(now)) == set(after.capabilities[gln])
        assert set(types.findall(then)) == set(before.capabilities[gln])
        history = now[now.index('id="history-heading"') :]
        assert re.search(r"Message types added: [^.]*FDIS91", history)

    def test_obsolete_types_are_marked_with_their_successor(
        self, reader: TestClient, synced_app: App
    ) -> None:
        registry = snapshots(synced_app)[1][-1]
        gln = next(g for g, caps in sorted(registry.capabilities.items()) if "XDIS91" in caps)
        html = get(reader, f"/ui/registry/glns/{gln}")
        row = re.search(r'<th scope="row" class="mono">XDIS91</th>(.*?)</tr>', html, re.S)
        assert row and "obsolete" in row.group(1) and "replaced by FDIS91" in row.group(1)
        if "FDIS91" in registry.capabilities[gln]:
            assert "which this GLN takes too" in row.group(1)
        fdis = re.search(r'<th scope="row" class="mono">FDIS91</th>(.*?)</tr>', html, re.S)
        assert fdis is None or "obsolete" not in fdis.group(1)

    def test_it_lists_the_units_carrying_and_inheriting_it(
        self, reader: TestClient, world: World
    ) -> None:
        html = get(reader, f"/ui/registry/glns/{world.gln_in}")
        carrying = html[html.index("Units that carry the GLN") :]
        assert f'href="/ui/registry/units/{world.unit_in}"' in carrying
        body = reader.get(f"/v1/glns/{world.gln_in}", headers=bearer(reader.ui_token))  # type: ignore[attr-defined]
        for unit in body.json()["inheritors"]:
            assert f'href="/ui/registry/units/{unit["sor_id"]}"' in html


class TestOwnerRestriction:
    @pytest.fixture
    def regional(self, ui_client: UiClient, world: World) -> TestClient:
        return ui_client("registry:read", owners=(world.owner_in,), lang="en")

    def test_own_unit_and_gln_are_shown(self, regional: TestClient, world: World) -> None:
        get(regional, f"/ui/registry/units/{world.unit_in}")
        get(regional, f"/ui/registry/glns/{world.gln_in}")

    @pytest.mark.parametrize("kind", ["units", "glns"])
    def test_another_owners_unit_or_gln_is_refused_as_the_api_refuses_it(
        self, regional: TestClient, world: World, kind: str
    ) -> None:
        key = world.unit_out if kind == "units" else world.gln_out
        api = regional.get(f"/v1/{kind}/{key}", headers=bearer(regional.ui_token))  # type: ignore[attr-defined]
        assert api.status_code == 403
        html = get(regional, f"/ui/registry/{kind}/{key}", status=403)
        assert "outside the institution owners your token is restricted to" in html
        unknown = "1" * 15 if kind == "units" else "5790000000000"
        assert (
            regional.get(f"/v1/{kind}/{unknown}", headers=bearer(regional.ui_token)).status_code
            == 404
        )  # type: ignore[attr-defined]
        get(regional, f"/ui/registry/{kind}/{unknown}", status=404)

    def test_a_name_search_lists_only_the_own_owners_units(
        self, regional: TestClient, reader: TestClient, synced_app: App, world: World
    ) -> None:
        registry = snapshots(synced_app)[1][-1]
        other = registry.units[world.unit_out]
        fragment = other.name[:6]
        everyone = set(listed_units(get(reader, "/ui/registry", q=fragment)))
        assert world.unit_out in everyone
        mine = set(listed_units(get(regional, "/ui/registry", q=fragment)))
        assert world.unit_out not in mine
        assert {registry.units[s].owner_sor_id for s in mine} <= {world.owner_in}


class TestRefusals:
    def test_without_registry_read_the_pages_are_refused(self, ui_client: UiClient) -> None:
        client = ui_client("audit:read", lang="en")
        for path in ("/ui/registry", "/ui/registry/units/1", "/ui/registry/glns/5790000000000"):
            html = get(client, path, status=403)
            assert "registry:read" in html
        assert 'href="/ui/registry"' not in get(client, "/ui/")  # not offered in the menu

    def test_a_date_that_is_not_one_is_a_400_page(self, reader: TestClient, world: World) -> None:
        html = get(reader, f"/ui/registry/units/{world.unit_in}", status=400, at="tomorrow")
        assert "is not a date" in html

    def test_a_malformed_key_is_a_404_page(self, reader: TestClient) -> None:
        get(reader, "/ui/registry/units/abc", status=404)
        get(reader, "/ui/registry/glns/57900", status=404)


class TestLanguage:
    def test_danish_by_default_english_on_request(self, ui_client: UiClient, world: World) -> None:
        danish = get(ui_client("registry:read"), f"/ui/registry/glns/{world.gln_in}")
        assert "Meddelelsestyper" in danish and "Enheder der bærer GLN'en" in danish
        assert "Units that carry the GLN" not in danish
        english = get(ui_client("registry:read", lang="en"), f"/ui/registry/glns/{world.gln_in}")
        assert "Units that carry the GLN" in english and "Meddelelsestyper" not in english
        html = get(ui_client("registry:read"), "/ui/registry", q="xyzxyz")
        assert "Ingen enheds navn indeholder" in html


class TestRepository:
    """``search_units`` and ``unit_history``: the database and the fake agree."""

    def test_the_database_and_the_fake_agree(self, synced_app: App) -> None:
        infos, registries = snapshots(synced_app)
        fake = FakeRegistryRepository()
        for info, registry in zip(infos, registries, strict=True):
            fake.snapshots[info.id] = info
            fake.registries[info.id] = registry
        current = infos[-1].id
        owner = next(iter(registries[-1].units.values())).owner_sor_id
        with synced_app.uow() as uow:
            db = uow.registry
            for fragment, owners in (("øst", None), ("an", None), ("an", {owner}), ("%", None)):
                stored = db.search_units(fragment, current, owners=owners, limit=1000)
                faked = fake.search_units(fragment, current, owners=owners, limit=1000)
                assert {u.sor_id for u in stored} == {u.sor_id for u in faked}, fragment
            assert len(db.search_units("an", current, limit=3)) == 3
            for sor_id in list(registries[-1].units)[:40] + list(registries[0].units)[:5]:
                assert db.unit_history(sor_id) == fake.unit_history(sor_id), sor_id
            assert db.unit_history("1") == fake.unit_history("1") == []
