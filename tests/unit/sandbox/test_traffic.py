"""The sandbox's routing traffic: the mix drawn from a register, and the sender that posts it
(on httpx's MockTransport)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from soredi_sync.config import RetrySettings, config_dir
from soredi_sync.domain.audit import CORRESPONDENCE, OwnerKind
from soredi_sync.domain.model import Registry, effective_gln
from soredi_sync.reference_data import ReferenceData
from soredi_sync.sandbox.generate import Manifest, expected_registry
from soredi_sync.sandbox.traffic import (
    BATCH_PATH,
    TrafficError,
    TrafficSender,
    read_sandbox_registry,
)
from soredi_sync.sandbox.traffic_mix import (
    MIX,
    TrafficDay,
    TrafficRequest,
    build_traffic,
    default_per_day,
    locations,
)

LAST_DAY = date(2026, 12, 3)
URL = "http://127.0.0.1:9"
TOKEN = "sk-traffic-secret-token"
FAST = RetrySettings(attempts=3, initial_wait=0.01, max_wait=0.05)


@pytest.fixture(scope="module")
def reference() -> ReferenceData:
    return ReferenceData.load(config_dir())


@pytest.fixture(scope="module")
def register() -> Registry:
    return expected_registry("tiny", 0, 1)


@pytest.fixture(scope="module")
def build(reference: ReferenceData, register: Registry) -> Callable[..., list[TrafficDay]]:
    def make(registry: Registry = register, **options: Any) -> list[TrafficDay]:
        arguments: dict[str, Any] = {"last_day": LAST_DAY, "days": 3, "seed": 5} | options
        return build_traffic(
            registry, reference.message_types, reference.audit_context.owner_kinds, **arguments
        )

    return make


def flat(traffic: list[TrafficDay]) -> list[TrafficRequest]:
    return [request for day in traffic for request in day.requests]


@pytest.fixture(scope="module")
def month(build: Callable[..., list[TrafficDay]]) -> list[TrafficRequest]:
    """Thirty days of the default mix on the tiny register."""
    return flat(build(days=30, per_day=300))


class TestBuildTraffic:
    def test_the_same_seed_and_register_give_the_same_requests_message_ids_included(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        assert build() == build()
        first = [q.message_id for q in flat(build())]
        assert first == [q.message_id for q in flat(build())]
        assert first != [q.message_id for q in flat(build(seed=6))]

    def test_each_of_the_days_ending_on_the_last_holds_per_day_requests_dated_at_it(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        traffic = build(days=3, per_day=40)
        assert [d.day for d in traffic] == [LAST_DAY - timedelta(days=n) for n in (2, 1, 0)]
        for day in traffic:
            assert len(day.requests) == 40
            assert {q.body()["at"] for q in day.requests} == {day.day.isoformat()}

    def test_a_longer_run_holds_the_days_of_a_shorter_one(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        assert build(days=5, per_day=20)[2:] == build(days=3, per_day=20)

    def test_message_ids_are_unique(self, month: list[TrafficRequest]) -> None:
        assert len({q.message_id for q in month}) == len(month)

    def test_the_default_per_day_scales_with_the_register(
        self, build: Callable[..., list[TrafficDay]], reference: ReferenceData
    ) -> None:
        small = expected_registry("small", 0, 0)
        tiny_locations = locations(
            expected_registry("tiny", 0, 1),
            reference.message_types,
            reference.audit_context.owner_kinds,
        )
        small_locations = locations(
            small, reference.message_types, reference.audit_context.owner_kinds
        )
        assert len(build(days=1)[0].requests) == default_per_day(tiny_locations)
        assert default_per_day(tiny_locations) == round(1.4 * len(tiny_locations))
        assert default_per_day(small_locations) > 8 * default_per_day(tiny_locations)

    def test_senders_and_receivers_are_units_of_the_register_with_the_gln_they_use(
        self, month: list[TrafficRequest], register: Registry
    ) -> None:
        assert register.source_date is not None
        for request in month:
            for party in (request.sender, request.receiver):
                unit = register.units[party.sor_id]
                assert unit.is_open_on(register.source_date)
                assert effective_gln(register.units, party.sor_id).gln == party.gln

    def test_senders_are_active_and_send_in_the_syntax_they_advertise(
        self, month: list[TrafficRequest], register: Registry
    ) -> None:
        for request in month:
            assert register.glns[request.sender.gln].active
            advertised = register.capabilities[request.sender.gln]
            if request.business_message != CORRESPONDENCE:
                continue
            if "FDIS91" in advertised:
                expected = "fhir"
            elif "XDIS91" in advertised:
                expected = "oioxml"
            else:
                assert "DIS91" in advertised
                expected = "edifact"
            assert request.sender_syntax == expected
        assert len({q.sender_syntax for q in month}) == 3, "the tiny register has all three"

    def test_most_messages_go_between_hospitals_general_practice_and_municipalities(
        self, month: list[TrafficRequest]
    ) -> None:
        flows = Counter((q.sender_kind, q.receiver_kind) for q in month)
        region, private, municipality = OwnerKind.REGION, OwnerKind.PRIVATE, OwnerKind.MUNICIPALITY
        main = (
            flows[region, private]
            + flows[private, region]
            + flows[region, municipality]
            + flows[private, municipality]
        )
        assert main > 0.55 * len(month)
        assert flows.most_common(1)[0][0] == (region, private)
        letters = Counter(q.business_message for q in month)
        assert letters[CORRESPONDENCE] > 0.85 * len(month)
        assert {"hospital-notification", "acknowledgement"} <= letters.keys()

    def test_a_month_on_the_small_sandbox_gives_a_few_receivers_thousands_and_many_a_few(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        month = flat(build(expected_registry("small", 0, 0), days=30))
        per_receiver = sorted(Counter(q.receiver.gln for q in month).values(), reverse=True)
        assert per_receiver[2] > 1000
        assert per_receiver[len(per_receiver) // 2] < 30
        assert sum(per_receiver[: len(per_receiver) // 10]) > 0.5 * len(month)
        per_sender = sorted(Counter(q.sender.gln for q in month).values(), reverse=True)
        assert per_sender[2] > 1000 and per_sender[len(per_sender) // 2] < 30

    def test_a_small_share_names_the_receiver_by_sor_id_instead_of_gln(
        self, month: list[TrafficRequest]
    ) -> None:
        by_sor_id = [q for q in month if q.by_sor_id]
        assert 0.03 < len(by_sor_id) / len(month) < 0.08
        assert all(q.body()["receiver"] == {"sor_id": q.receiver.sor_id} for q in by_sor_id)
        by_gln = next(q for q in month if not q.by_sor_id)
        assert by_gln.body()["receiver"] == {"gln": by_gln.receiver.gln}

    def test_questions_carry_facts_and_no_message_content(
        self, month: list[TrafficRequest]
    ) -> None:
        allowed = {
            "receiver", "sender", "business_message", "sender_syntax", "message_id", "at",
            "text_length", "category", "category_coded", "topic", "subject", "attachments",
            "total_size",
        }  # fmt: skip
        for request in month:
            body = request.body()
            assert body.keys() <= allowed
            assert body["sender"] == {"gln": request.sender.gln, "sor_id": request.sender.sor_id}
            for text in (body.get("topic"), body.get("subject")):
                assert text is None or text in MIX.topics
            for attachment in body.get("attachments", ()):
                assert attachment.keys() == {"mime_type", "size", "content"}
            json.dumps(body)  # plain JSON

    def test_letters_have_realistic_texts_and_attachments_a_few_over_the_limits(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        letters = [
            q for q in flat(build(days=1, per_day=20_000)) if q.business_message == CORRESPONDENCE
        ]
        texts = sorted(q.text_length or 0 for q in letters)
        assert 300 < texts[len(texts) // 2] < 1200
        assert any(t > 31_150 for t in texts) and sum(t > 31_150 for t in texts) < 0.01 * len(texts)
        with_attachments = [q for q in letters if q.attachments]
        assert 0.2 < len(with_attachments) / len(letters) < 0.4
        attachments = [a for q in with_attachments for a in q.attachments]
        types = Counter(a.mime_type for a in attachments)
        assert types["application/pdf"] > 0.8 * len(attachments)
        assert {"image/jpeg", "image/png"} <= types.keys()
        sizes = sorted(a.size for a in attachments)
        assert 50_000 < sizes[len(sizes) // 2] < 500_000
        assert any(size > 100 * 1024 * 1024 for size in sizes)
        assert any(len(q.attachments) > 10 for q in with_attachments)
        assert all(
            q.total_size and q.total_size > sum(a.size for a in q.attachments) for q in letters
        )

    def test_fhir_letters_have_a_category_and_topic_and_legacy_ones_a_subject(
        self, month: list[TrafficRequest]
    ) -> None:
        letters = [q for q in month if q.business_message == CORRESPONDENCE]
        for letter in letters:
            if letter.sender_syntax == "fhir":
                assert letter.subject is None and letter.topic is not None
                assert letter.category_coded is not None
                assert {a.content for a in letter.attachments} <= {"data", "link"}
            else:
                assert (letter.category, letter.topic) == (None, None) and letter.subject
                assert {a.content for a in letter.attachments} <= {"separate"}

    def test_the_body_leaves_the_sender_out_when_asked(self, month: list[TrafficRequest]) -> None:
        assert "sender" not in month[0].body(with_sender=False)
        assert month[0].body(with_sender=False) | {"sender": month[0].body()["sender"]} == (
            month[0].body()
        )

    def test_the_question_is_the_one_the_api_reads_from_the_body(
        self, month: list[TrafficRequest]
    ) -> None:
        from soredi_sync.api.routers.routing_schemas import RouteIn

        for request in month[:500]:
            assert request.question() == RouteIn.model_validate(request.body()).to_request()

    def test_a_register_where_no_one_can_send_is_refused(
        self, build: Callable[..., list[TrafficDay]], register: Registry
    ) -> None:
        silent = Registry(register.units, register.glns, {}, register.source_date)
        with pytest.raises(ValueError, match="no sender"):
            build(silent)

    def test_fewer_than_one_day_is_refused(self, build: Callable[..., list[TrafficDay]]) -> None:
        with pytest.raises(ValueError, match="days"):
            build(days=0)


class TestReadSandboxRegistry:
    def test_a_day_of_a_generated_sandbox_reads_as_the_generators_register(
        self, tiny: tuple[Path, Manifest], reference: ReferenceData
    ) -> None:
        folder, _manifest = tiny
        loaded = read_sandbox_registry(
            folder, 1, columns=reference.csv_columns, message_types=reference.message_types
        )
        expected = expected_registry("tiny", 0, 1)
        assert loaded.source_date == expected.source_date
        assert dict(loaded.units) == dict(expected.units)
        assert set(loaded.capabilities) == set(expected.capabilities)

    def test_a_day_the_sandbox_does_not_hold_is_refused(
        self, tiny: tuple[Path, Manifest], reference: ReferenceData
    ) -> None:
        folder, manifest = tiny
        with pytest.raises(ValueError, match=f"0..{manifest.days}"):
            read_sandbox_registry(
                folder, 9, columns=reference.csv_columns, message_types=reference.message_types
            )

    def test_a_folder_without_a_manifest_is_refused(
        self, tmp_path: Path, reference: ReferenceData
    ) -> None:
        with pytest.raises(ValueError, match="not a generated sandbox"):
            read_sandbox_registry(
                tmp_path, 0, columns=reference.csv_columns, message_types=reference.message_types
            )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Api:
    """A scripted ``POST /v1/route/batch``: answers each batch with ``script``'s next item (a
    status, an exception or "decide"), then "decide"; keeps what it was sent."""

    def __init__(self, *script: int | str | Exception, clock: Clock | None = None) -> None:
        self.script = list(script)
        self.clock = clock
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.posted: list[float] = []  # the clock's time of each batch

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == BATCH_PATH
        step = self.script.pop(0) if self.script else "decide"
        if isinstance(step, Exception):
            raise step
        self.headers.append(request.headers)
        if self.clock is not None:
            self.posted.append(self.clock())
        body = json.loads(request.content)
        self.bodies.append(body)
        if step != "decide":
            return httpx.Response(int(step), json={"title": "Refused", "detail": f"HTTP {step}"})
        results = []
        for index, question in enumerate(body["requests"]):
            if question["business_message"] == "acknowledgement":
                results.append({"index": index, "status": 422, "problem": {"status": 422}})
                continue
            outcome = "reject" if question["sender_syntax"] == "edifact" else "deliver"
            results.append({"index": index, "status": 200, "decision": {"decision": outcome}})
        return httpx.Response(200, json={"results": results})


def sender(api: Api, clock: Clock | None = None, **options: Any) -> TrafficSender:
    clock = clock or Clock()
    http = httpx.Client(transport=httpx.MockTransport(api))
    return TrafficSender(http, URL, TOKEN, retry=FAST, sleep=clock.sleep, clock=clock, **options)


class TestTrafficSender:
    def test_posts_batches_of_at_most_a_thousand_with_the_bearer_token(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        api = Api()
        traffic = build(days=1, per_day=2_500)
        counts = sender(api).send(traffic)
        assert [len(b["requests"]) for b in api.bodies] == [1000, 1000, 500]
        assert {h["authorization"] for h in api.headers} == {f"Bearer {TOKEN}"}
        sent = [q["message_id"] for b in api.bodies for q in b["requests"]]
        assert sent == [q.message_id for q in traffic[0].requests]
        assert (counts.requests, counts.batches) == (2_500, 3)

    def test_days_go_oldest_first_each_counted_by_status_and_outcome(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        traffic = build(days=3, per_day=50)
        seen: list[tuple[date, int]] = []
        counts = sender(Api()).send(traffic, lambda day, c: seen.append((day.day, c.requests)))
        assert seen == [(d.day, 50) for d in traffic]
        questions = flat(traffic)
        receipts = sum(q.business_message == "acknowledgement" for q in questions)
        legacy = sum(
            q.sender_syntax == "edifact" and q.business_message != "acknowledgement"
            for q in questions
        )
        assert counts.statuses == Counter({200: 150 - receipts, 422: receipts})
        assert counts.outcomes == Counter({"reject": legacy, "deliver": 150 - receipts - legacy})
        assert counts.errors == receipts
        assert f"{receipts} errors ({receipts} HTTP 422)" in counts.summary()

    def test_a_rate_caps_the_requests_sent_a_second(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        clock = Clock()
        api = Api(clock=clock)
        sender(api, clock, rate=40).send(build(days=2, per_day=100))
        assert [len(b["requests"]) for b in api.bodies] == [40, 40, 20, 40, 40, 20]
        # Each batch goes once the questions before it are within 40 a second of the start.
        assert [round(t - api.posted[0], 6) for t in api.posted] == [0, 1, 2, 2.5, 3.5, 4.5]

    def test_the_sender_is_left_out_when_asked(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        api = Api()
        sender(api, with_sender=False).send(build(days=1, per_day=5))
        assert all("sender" not in q for q in api.bodies[0]["requests"])
        api = Api()
        sender(api).send(build(days=1, per_day=5))
        assert all("sender" in q for q in api.bodies[0]["requests"])

    @pytest.mark.parametrize(
        "failure", [503, 429, httpx.ConnectError("refused")], ids=["503", "429", "connect"]
    )
    def test_a_refusal_before_deciding_is_retried(
        self, build: Callable[..., list[TrafficDay]], failure: int | Exception
    ) -> None:
        api = Api(failure, failure)
        counts = sender(api).send(build(days=1, per_day=5))
        assert counts.statuses[200] + counts.statuses[422] == 5

    def test_a_503_that_persists_stops_the_run_with_what_was_answered(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        api = Api("decide", 503, 503, 503)
        with pytest.raises(TrafficError, match=r"kept answering HTTP 503 \(3 attempts\)") as info:
            sender(api).send(build(days=2, per_day=5))
        assert info.value.counts.requests == 5

    def test_a_read_timeout_stops_the_run_without_sending_the_batch_again(
        self, build: Callable[..., list[TrafficDay]]
    ) -> None:
        api = Api(httpx.ReadTimeout("slow"))
        with pytest.raises(TrafficError, match="ReadTimeout"):
            sender(api).send(build(days=1, per_day=5))
        assert api.script == [] and api.bodies == []

    @pytest.mark.parametrize("status", [401, 403, 422])
    def test_a_refused_batch_stops_the_run_at_once_naming_the_problem_not_the_token(
        self, build: Callable[..., list[TrafficDay]], status: int
    ) -> None:
        api = Api(status)
        with pytest.raises(TrafficError) as info:
            sender(api).send(build(days=1, per_day=5))
        assert str(info.value) == f"{URL}{BATCH_PATH} answered HTTP {status}: HTTP {status}"
        assert TOKEN not in repr(info.value) and len(api.bodies) == 1
