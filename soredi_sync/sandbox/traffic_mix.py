"""Routing traffic a real gateway would see, drawn from a register: who sends what to whom.

:func:`build_traffic` is a pure function of the register, the message types, the owner kinds
of ``config/owner-types.tsv``, the seed and the days: the same inputs give the same questions,
message ids included. Nothing in it is a hard-coded GLN:

- a *location* is a GLN with the open units that use it (its own or inherited); its kind is the
  owner kind of the institution owner of the unit that carries it (``OwnerKind``);
- a message follows one of the flows of :data:`MIX` (sender kind, receiver kind, business
  message); within a kind, senders and receivers are drawn by Zipf's law over the locations
  ranked by size (units using the GLN × message types advertised): a few hospitals and big
  practices send and get most of the messages, most locations a few a month;
- a sender is an active GLN that advertises the correspondence message; it sends in the syntax
  it advertises itself (FDIS91 → ``fhir``, else XDIS91 → ``oioxml``, else DIS91 →
  ``edifact``), so the mix of syntaxes follows the adoption of CareCommunication;
- the facts (text length, attachments, subject) are drawn from :data:`MIX` as well. A question
  carries no message content: lengths, sizes and types, a category code and a topic from a
  short list of generic topics, never a text or an attachment's bytes or title.
"""

from __future__ import annotations

import math
import random
import uuid
from bisect import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, Generic, TypeVar

from soredi_sync.domain.audit import ACKNOWLEDGEMENT, CORRESPONDENCE, OwnerKind
from soredi_sync.domain.message_types import MessageTypeRegistry
from soredi_sync.domain.model import Registry, effective_gln
from soredi_sync.domain.routing import Attachment, AttachmentContent, RouteRequest

HOSPITAL_NOTIFICATION = "hospital-notification"
_R, _M, _P, _O = OwnerKind.REGION, OwnerKind.MUNICIPALITY, OwnerKind.PRIVATE, OwnerKind.OTHER
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Flow:
    """Messages of ``business_message`` from a location of one owner kind to another's."""

    sender: OwnerKind
    receiver: OwnerKind
    business_message: str
    weight: float


@dataclass(frozen=True)
class TrafficMix:
    """Every weight of the traffic; :data:`MIX` is the one in use. Sizes are bytes, lengths
    characters; ``(value, weight)`` pairs are drawn by weight."""

    flows: tuple[Flow, ...]
    zipf_exponent: float  # rank r of a kind's locations gets weight 1 / r**s
    sender_syntaxes: tuple[str, ...]  # the syntax a sender uses: the first it advertises
    sor_id_share: float  # questions naming the receiver by SOR-ID instead of GLN
    text_median: int
    text_sigma: float  # log-normal
    long_text_share: float  # over the legacy limit of 31,150 characters
    long_text: tuple[int, int]
    categories: tuple[tuple[str, float], ...]  # CareCommunication category codes
    uncoded_share: float  # FHIR letters without a coded category
    topics: tuple[str, ...]  # generic topics (the legacy subject of an XDIS91/DIS91)
    attachment_share: float  # letters with attachments
    attachment_counts: tuple[tuple[int, float], ...]  # 11 and up: over the limit of 10
    mime_types: tuple[tuple[str, float, int, float], ...]  # type, weight, median, sigma
    oversize_share: float  # attachments over the 100 MB limit
    oversize: tuple[int, int]
    link_share: float  # FHIR attachments sent as a url only
    envelope_bytes: int  # headers, parties, patient: what a letter weighs without text
    messages_per_gln_per_day: float  # the default --per-day, per GLN of the register


_MB = 1024 * 1024

# The mix. [assumed]: no public statistics split MedCom traffic by flow; the shape follows
# what the working group describes (750-900k correspondence messages a month, most between
# hospitals, general practice and municipalities) and the share of letters carrying a PDF.
MIX = TrafficMix(
    flows=(
        Flow(_R, _P, CORRESPONDENCE, 19),  # hospital -> GP/specialist: letters, results
        Flow(_P, _R, CORRESPONDENCE, 15),  # GP/specialist -> hospital
        Flow(_R, _M, CORRESPONDENCE, 14),  # hospital -> home care, rehabilitation
        Flow(_P, _M, CORRESPONDENCE, 12),  # GP -> municipality
        Flow(_M, _P, CORRESPONDENCE, 10),  # municipality -> GP
        Flow(_M, _R, CORRESPONDENCE, 7),
        Flow(_P, _P, CORRESPONDENCE, 5),  # GP <-> specialist, pharmacy, physiotherapist
        Flow(_R, _R, CORRESPONDENCE, 3),
        Flow(_M, _M, CORRESPONDENCE, 1),
        Flow(_O, _P, CORRESPONDENCE, 1),
        Flow(_P, _O, CORRESPONDENCE, 1),
        Flow(_R, _M, HOSPITAL_NOTIFICATION, 5),  # admitted / discharged
        # Receipts: most gateways answer them without asking, some route them.
        Flow(_P, _R, ACKNOWLEDGEMENT, 2),
        Flow(_M, _R, ACKNOWLEDGEMENT, 2),
        Flow(_R, _P, ACKNOWLEDGEMENT, 2),
        Flow(_M, _P, ACKNOWLEDGEMENT, 1),
    ),
    zipf_exponent=1.0,
    sender_syntaxes=("fhir", "oioxml", "edifact"),
    sor_id_share=0.05,
    text_median=600,
    text_sigma=0.9,
    long_text_share=0.002,
    long_text=(31_151, 80_000),
    categories=(
        ("regarding-referral", 18),
        ("examination-results", 15),
        ("discharge", 12),
        ("carecoordination", 10),
        ("medicine", 10),
        ("nursing", 8),
        ("home-care-assessment", 7),
        ("training", 5),
        ("outpatient", 5),
        ("other", 10),
    ),
    uncoded_share=0.01,
    topics=(
        "Undersøgelser forud for visitation",
        "Svar på forespørgsel",
        "Opfølgning efter udskrivelse",
        "Ændring i medicin",
        "Aftale om kontrol",
        "Status på forløb",
        "Genoptræningsplan",
        "Henvisning modtaget",
        "Anmodning om oplysninger til brug for visitation til plejebolig eller aflastning",
        "Besked",
    ),
    attachment_share=0.3,
    attachment_counts=((1, 70), (2, 18), (3, 7), (5, 4), (12, 1)),
    mime_types=(
        ("application/pdf", 88, 150_000, 1.2),
        ("image/jpeg", 5, 1_200_000, 0.9),
        ("image/png", 3, 400_000, 1.0),
        ("image/tiff", 1.5, 2_000_000, 0.8),
        ("image/gif", 0.3, 100_000, 1.0),
        ("image/bmp", 0.2, 3_000_000, 0.5),
        # Not convertible: a legacy receiver cannot get these.
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            1.5,
            60_000,
            1.0,
        ),  # noqa: E501
        ("text/plain", 0.5, 4_000, 1.0),
    ),
    oversize_share=0.001,
    oversize=(100 * _MB + 1, 160 * _MB),
    link_share=0.01,
    envelope_bytes=6_000,
    # 825k letters a month over about 20,000 GLNs: 1.4 a GLN a day.
    messages_per_gln_per_day=1.4,
)


@dataclass(frozen=True, slots=True)
class Party:
    """A sender or receiver: a GLN and the SOR-ID of a unit that uses it."""

    gln: str
    sor_id: str


@dataclass(frozen=True, slots=True)
class TrafficAttachment:
    mime_type: str
    size: int
    content: str  # "data" (in a FHIR letter), "separate" (XBIN01/BIN01) or "link"


@dataclass(frozen=True, slots=True)
class TrafficRequest:
    """One routing question of the traffic, as ``POST /v1/route`` takes it (:meth:`body`)."""

    day: date
    message_id: str
    sender: Party
    sender_kind: OwnerKind
    receiver: Party
    receiver_kind: OwnerKind
    by_sor_id: bool  # the receiver is named by its unit's SOR-ID, not its GLN
    business_message: str
    sender_syntax: str
    text_length: int | None = None
    category: str | None = None
    category_coded: bool | None = None
    topic: str | None = None
    subject: str | None = None
    attachments: tuple[TrafficAttachment, ...] = ()
    total_size: int | None = None

    def body(self, *, with_sender: bool = True) -> dict[str, Any]:
        """The JSON body (``RouteIn``), dated ``at`` = :attr:`day`."""
        receiver = (
            {"sor_id": self.receiver.sor_id} if self.by_sor_id else {"gln": self.receiver.gln}
        )
        body: dict[str, Any] = {"receiver": receiver}
        if with_sender:
            body["sender"] = {"gln": self.sender.gln, "sor_id": self.sender.sor_id}
        body |= {
            "business_message": self.business_message,
            "sender_syntax": self.sender_syntax,
            "message_id": self.message_id,
            "at": self.day.isoformat(),
        }
        optional = {
            "text_length": self.text_length,
            "category": self.category,
            "category_coded": self.category_coded,
            "topic": self.topic,
            "subject": self.subject,
            "total_size": self.total_size,
        }
        body |= {key: value for key, value in optional.items() if value is not None}
        if self.attachments:
            body["attachments"] = [
                {"mime_type": a.mime_type, "size": a.size, "content": a.content}
                for a in self.attachments
            ]
        return body

    def question(self) -> RouteRequest:
        """The routing question :meth:`body` asks, as the resolver takes it (what the API
        reads from the body; for callers that decide in process, such as the benchmarks)."""
        return RouteRequest(
            business_message=self.business_message,
            sender_syntax=self.sender_syntax,
            receiver_gln=None if self.by_sor_id else self.receiver.gln,
            receiver_sor_id=self.receiver.sor_id if self.by_sor_id else None,
            text_length=self.text_length,
            subject=self.subject,
            category=self.category,
            topic=self.topic,
            attachments=tuple(
                Attachment(a.mime_type, a.size, None, AttachmentContent(a.content))
                for a in self.attachments
            ),
            total_size=self.total_size,
            at=self.day,
            message_id=self.message_id,
            category_coded=self.category_coded,
            sender_gln=self.sender.gln,
            sender_sor_id=self.sender.sor_id,
        )


@dataclass(frozen=True, slots=True)
class TrafficDay:
    day: date
    requests: tuple[TrafficRequest, ...]


@dataclass(frozen=True, slots=True)
class Location:
    """A GLN in use: the open units using it, its owner kind, and the syntax it sends each
    business message in (empty: it sends nothing)."""

    gln: str
    kind: OwnerKind
    units: tuple[str, ...]
    size: int  # units using it × (1 + message types advertised): the rank's key
    sends: Mapping[str, str]


def locations(
    registry: Registry,
    message_types: MessageTypeRegistry,
    owner_kinds: Mapping[str, OwnerKind],
    mix: TrafficMix = MIX,
) -> list[Location]:
    """Every GLN that an open unit of ``registry`` uses (on its source date), by GLN."""
    on = registry.source_date
    users: dict[str, list[str]] = {}
    carriers: dict[str, str] = {}
    for sor_id in sorted(registry.units):
        if on is not None and not registry.units[sor_id].is_open_on(on):
            continue
        found = effective_gln(registry.units, sor_id)
        if found.gln is not None:
            users.setdefault(found.gln, []).append(sor_id)
            carriers.setdefault(found.gln, found.path[-1])
    business = {flow.business_message for flow in mix.flows} | {CORRESPONDENCE}
    syntax_of = {
        name: {mt.code: mt.syntax for mt in message_types.for_business_message(name)}
        for name in business
    }
    result = []
    for gln in sorted(users):
        carrier = registry.units[carriers[gln]]
        owner = registry.units.get(carrier.owner_sor_id)
        kind = owner_kinds.get(owner.type_code or "", _O) if owner is not None else _O
        advertised = registry.capabilities.get(gln, {})
        record = registry.glns.get(gln)
        sends: dict[str, str] = {}
        if record is not None and record.active:
            for name in sorted(business):
                offered = {syntax_of[name][code] for code in advertised if code in syntax_of[name]}
                first = next((s for s in mix.sender_syntaxes if s in offered), None)
                if first is not None:
                    sends[name] = first
            if CORRESPONDENCE in sends:  # the other messages in its letters' syntax if need be
                sends = {name: sends.get(name, sends[CORRESPONDENCE]) for name in business}
            else:
                sends = {}
        size = len(users[gln]) * (1 + len(advertised))
        result.append(Location(gln, kind, tuple(users[gln]), size, sends))
    return result


def default_per_day(located: Sequence[Location], mix: TrafficMix = MIX) -> int:
    """Messages a day for a register of these locations: :attr:`TrafficMix.messages_per_gln_per_day`
    per GLN in use (the tiny sandbox about 130, the small one 1,500, the national 29,000)."""
    return max(1, round(mix.messages_per_gln_per_day * len(located)))


class _Choice(Generic[_T]):
    """One of ``values`` drawn by its weight (``random.choices`` with the sums made once)."""

    def __init__(self, values: Sequence[_T], weights: Iterable[float]) -> None:
        self.values = tuple(values)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random) -> _T:
        return self.values[bisect(self.cumulative, rng.random() * self.total)]


def _weights(options: Sequence[tuple[_T, float]]) -> _Choice[_T]:
    return _Choice([value for value, _ in options], [weight for _, weight in options])


def _pools(ranked: Iterable[Location], exponent: float) -> dict[OwnerKind, _Choice[Location]]:
    """Per owner kind, its locations drawn by Zipf's law over their rank: rank r, 1 / r**s."""
    by_kind: dict[OwnerKind, list[Location]] = {}
    for location in ranked:
        by_kind.setdefault(location.kind, []).append(location)
    return {
        kind: _Choice(members, (1 / rank**exponent for rank in range(1, len(members) + 1)))
        for kind, members in by_kind.items()
    }


@dataclass(frozen=True)
class _Draws:
    """What a day's questions are drawn from."""

    flows: _Choice[Flow]
    senders: Mapping[OwnerKind, _Choice[Location]]
    receivers: Mapping[OwnerKind, _Choice[Location]]
    categories: _Choice[str]
    attachment_counts: _Choice[int]
    mime_types: _Choice[tuple[str, float, int, float]]
    mix: TrafficMix


def build_traffic(
    registry: Registry,
    message_types: MessageTypeRegistry,
    owner_kinds: Mapping[str, OwnerKind],
    *,
    last_day: date,
    days: int,
    per_day: int | None = None,
    seed: int = 1,
    mix: TrafficMix = MIX,
) -> list[TrafficDay]:
    """``per_day`` questions for each of the ``days`` days ending on ``last_day``, oldest first.

    Each day is drawn from a stream of its own, keyed by the seed and the date: ``days=5``
    holds the questions of ``days=3`` and two more days before them, and a run on the next day
    sends new message ids.

    :param owner_kinds: SOR OwnerType code → owner kind (``config/owner-types.tsv``)
    :param per_day: default :func:`default_per_day`
    :raises ValueError: ``days`` or ``per_day`` below 1, or no flow of the mix has both a
        sender and a receiver in ``registry``
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    located = locations(registry, message_types, owner_kinds, mix)
    count = default_per_day(located, mix) if per_day is None else per_day
    if count < 1:
        raise ValueError(f"per_day must be at least 1, got {count}")
    # Largest first; locations of one size in an order drawn from the seed.
    ranks = random.Random(f"soredi-traffic|{seed}|ranks")
    ties = {location.gln: ranks.random() for location in located}
    ranked = sorted(located, key=lambda location: (-location.size, ties[location.gln]))
    senders = _pools([location for location in ranked if location.sends], mix.zipf_exponent)
    receivers = _pools(ranked, mix.zipf_exponent)
    flows = [f for f in mix.flows if f.sender in senders and f.receiver in receivers]
    if not flows:
        raise ValueError("the register has no sender and receiver for any flow of the mix")
    draws = _Draws(
        flows=_Choice(flows, [flow.weight for flow in flows]),
        senders=senders,
        receivers=receivers,
        categories=_weights(mix.categories),
        attachment_counts=_weights(mix.attachment_counts),
        mime_types=_Choice(mix.mime_types, [m[1] for m in mix.mime_types]),
        mix=mix,
    )
    result = []
    for back in range(days - 1, -1, -1):
        day = last_day - timedelta(days=back)
        rng = random.Random(f"soredi-traffic|{seed}|{day.isoformat()}")
        result.append(TrafficDay(day, tuple(_request(rng, day, draws) for _ in range(count))))
    return result


def _request(rng: random.Random, day: date, draws: _Draws) -> TrafficRequest:
    flow = draws.flows.draw(rng)
    sender = draws.senders[flow.sender].draw(rng)
    receivers = draws.receivers[flow.receiver]
    receiver = receivers.draw(rng)
    for _ in range(10):  # nobody writes to themselves (unless a kind has no one else)
        if receiver.gln != sender.gln:
            break
        receiver = receivers.draw(rng)
    syntax = sender.sends[flow.business_message]
    message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    sender_unit, receiver_unit = rng.choice(sender.units), rng.choice(receiver.units)
    by_sor_id = rng.random() < draws.mix.sor_id_share
    # Notifications and receipts are structured: no text or attachments.
    letter = (
        _letter(rng, syntax == "fhir", draws) if flow.business_message == CORRESPONDENCE else {}
    )
    return TrafficRequest(
        day=day,
        message_id=message_id,
        sender=Party(sender.gln, sender_unit),
        sender_kind=sender.kind,
        receiver=Party(receiver.gln, receiver_unit),
        receiver_kind=receiver.kind,
        by_sor_id=by_sor_id,
        business_message=flow.business_message,
        sender_syntax=syntax,
        **letter,
    )


def _letter(rng: random.Random, fhir: bool, draws: _Draws) -> dict[str, Any]:
    """A letter's facts: text length, category and topic (FHIR) or subject, attachments."""
    mix = draws.mix
    if rng.random() < mix.long_text_share:
        text = rng.randint(*mix.long_text)
    else:
        text = max(1, round(rng.lognormvariate(math.log(mix.text_median), mix.text_sigma)))
    topic = rng.choice(mix.topics)
    category = draws.categories.draw(rng)
    coded = rng.random() >= mix.uncoded_share
    attachments: tuple[TrafficAttachment, ...] = ()
    if rng.random() < mix.attachment_share:
        count = draws.attachment_counts.draw(rng)
        attachments = tuple(_attachment(rng, fhir, draws) for _ in range(count))
    return {
        "text_length": text,
        "category": (category if coded else None) if fhir else None,
        "category_coded": coded if fhir else None,
        "topic": topic if fhir else None,
        "subject": None if fhir else topic,
        "attachments": attachments,
        "total_size": mix.envelope_bytes + text + sum(a.size for a in attachments),
    }


def _attachment(rng: random.Random, fhir: bool, draws: _Draws) -> TrafficAttachment:
    mix = draws.mix
    mime_type, _weight, median, sigma = draws.mime_types.draw(rng)
    if rng.random() < mix.oversize_share:
        size = rng.randint(*mix.oversize)
    else:
        size = max(1024, round(rng.lognormvariate(math.log(median), sigma)))
    if not fhir:
        content = "separate"  # an XBIN01/BIN01 of its own beside the letter
    else:
        content = "link" if rng.random() < mix.link_share else "data"
    return TrafficAttachment(mime_type, size, content)
