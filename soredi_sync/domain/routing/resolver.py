"""The resolver: the order in which a routing decision is made, native delivery or a conversion
path, and the decision it answers (DOMAIN.md §3.1, docs/routing.md). Receiver identification,
attachments and the conversion limits are steps of their own modules."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from soredi_sync.domain.identifiers import ReceiverIdentifier
from soredi_sync.domain.message_types import MessageType, MessageTypeRegistry
from soredi_sync.domain.routing.attachments import _Attachments
from soredi_sync.domain.routing.identify import _Identification
from soredi_sync.domain.routing.index import RoutingIndex
from soredi_sync.domain.routing.limits import _LimitChecks
from soredi_sync.domain.routing.model import (
    Address,
    AttachmentPlan,
    ConversionPlan,
    Decision,
    Reason,
    RouteDecision,
    RouteRequest,
    RouteWarning,
    RoutingInputError,
    TraceEntry,
    WarningCode,
    _Trace,
)
from soredi_sync.domain.routing.policy import ConversionStep, RoutingPolicy

# The business message whose types carry legacy attachments (BIN01, XBIN01) in the registry.
BINARY_ATTACHMENT = "binary-attachment"
# Conversion paths remembered by a resolver (per source, target, message, day and VANS).
_PATHS_KEPT = 4096
# A receiver as a request names it, on a day; and what identifying it gave.
_ReceiverKey = tuple[str | None, str | None, tuple[ReceiverIdentifier, ...], date]
_Identified = tuple[Address, Reason | None, tuple[TraceEntry, ...], tuple[RouteWarning, ...]]


@dataclass(frozen=True, slots=True)
class _Offer:
    """One syntax in which a business message can travel, and the types that carry it."""

    syntax: str
    types: tuple[MessageType, ...]
    # A binary attachment carried inside a letter (the syntax has no binary type of its own)
    letter: str | None = None


class Resolver(_Identification, _Attachments, _LimitChecks):
    """Decides how to deliver a message, on one :class:`RoutingIndex` and one policy.

    Order (DOMAIN.md §3.1, docs/routing.md): read every receiver identifier and choose the one
    that addresses the message → the receiver and its address → native syntax if the receiver
    advertises it → a conversion path the policy allows on the date, in the receiver's syntax
    preference → reject. Every conversion checks the conversion limits.
    """

    def __init__(
        self,
        index: RoutingIndex,
        policy: RoutingPolicy,
        message_types: MessageTypeRegistry,
        *,
        remember_receivers: bool = False,
    ) -> None:
        self.index = index
        self.policy = policy
        self.message_types = message_types
        # With remember_receivers, each receiver is identified once per day asked for (its
        # address, reason, trace entries and warnings replayed after): for deciding many
        # logged questions again (services/cutover_traffic.py), not for live routing, where
        # the receivers asked for are unbounded.
        self._receivers: dict[_ReceiverKey, _Identified] | None = {} if remember_receivers else None
        self._paths: dict[
            tuple[str, str, str, date, str | None],
            tuple[tuple[ConversionStep, ...] | None, str, str],
        ] = {}
        by_business: dict[str, dict[str, tuple[MessageType, ...]]] = {}
        for mt in message_types:
            by_syntax = by_business.setdefault(mt.business_message, {})
            by_syntax[mt.syntax] = (*by_syntax.get(mt.syntax, ()), mt)
        self._binary = by_business.get(BINARY_ATTACHMENT, {})
        self._syntaxes = {mt.syntax for mt in message_types}
        letter = policy.binary_attachment_letter
        self._offers: dict[str, tuple[_Offer, ...]] = {}
        # The business message whose conversion steps apply: a binary attachment travels with
        # (or inside) its letter, so the letter's steps convert it.
        self._step_message: dict[str, str] = {}
        for business, by_syntax in by_business.items():
            offers = [_Offer(syntax, types) for syntax, types in by_syntax.items()]
            self._step_message[business] = business
            if business == BINARY_ATTACHMENT and letter in by_business:
                # Where a syntax has no binary type (FHIR carries attachments inline), a binary
                # attachment travels inside a letter of that syntax.
                offers += [
                    _Offer(syntax, types, letter)
                    for syntax, types in by_business[letter].items()
                    if syntax not in by_syntax
                ]
                self._step_message[business] = letter
            self._offers[business] = tuple(sorted(offers, key=lambda o: o.syntax))

    def business_messages(self) -> list[str]:
        return sorted(self._offers)

    def resolve(self, request: RouteRequest, today: date) -> RouteDecision:
        """Decide for ``request``; ``today`` is the decision date when the request has none.

        :raises RoutingInputError: unknown business message or sender syntax, or no receiver
            identifier at all
        """
        offers = self._offers.get(request.business_message)
        if offers is None:
            raise RoutingInputError(
                f"unknown business message {request.business_message!r}; known: "
                + ", ".join(self.business_messages())
            )
        if request.sender_syntax not in self._syntaxes:
            raise RoutingInputError(
                f"unknown sender syntax {request.sender_syntax!r}; known: "
                + ", ".join(sorted(self._syntaxes))
            )
        if not request.receiver_identifiers and not (
            request.receiver_gln or request.receiver_sor_id
        ):
            raise RoutingInputError("a receiver GLN or SOR-ID is required")

        day = request.at or today
        trace = _Trace()
        if self._receivers is None:
            address, reason = self._address(request, day, trace)
        else:
            address, reason = self._remembered(request, day, trace, self._receivers)
        if reason is not None:
            return self._reject(reason, address, day, trace)
        gln = address.gln
        assert gln is not None
        advertised = self.index.types_by_gln.get(gln, frozenset())
        takes: dict[str, tuple[str, ...]] = {}
        letters: dict[str, str] = {}
        found: list[str] = []
        for offer in offers:  # in syntax order
            codes = tuple([mt.code for mt in offer.types if mt.code in advertised])
            if codes:
                takes[offer.syntax] = codes
                found.append(f"{offer.syntax}={'/'.join(codes)}")
                if offer.letter is not None:
                    letters[offer.syntax] = offer.letter
                    found[-1] += f" (inside a {offer.letter} letter)"
        trace.add(
            "receiver-types",
            "found" if takes else "none",
            f"{request.business_message}: {', '.join(found) or 'no type'}",
        )

        if request.sender_syntax in takes:
            trace.add(
                "native", "yes", f"receiver advertises {'/'.join(takes[request.sender_syntax])}"
            )
            return self._deliver(
                request, request.sender_syntax, takes, letters, (), address, day, trace
            )
        trace.add("native", "no", f"receiver advertises no {request.sender_syntax} type")

        vans = self.index.registry.glns[gln].vans
        step_message = self._step_message[request.business_message]
        for target in self._targets(takes):
            path = self._path(request.sender_syntax, target, step_message, day, vans, trace)
            if path is None:
                continue
            if not vans:
                trace.add("vans", "missing", "conversion needs the receiver's VANS; GLN has none")
                return self._reject(Reason.NO_VANS, address, day, trace)
            plans = tuple(ConversionPlan(step.name, vans) for step in path)
            return self._deliver(request, target, takes, letters, plans, address, day, trace)
        trace.add("conversion", "none", "no allowed conversion path to a syntax the receiver takes")
        return self._reject(Reason.UNABLE_TO_RECEIVE_MSG_TYPE, address, day, trace)

    def _remembered(
        self,
        request: RouteRequest,
        day: date,
        trace: _Trace,
        remembered: dict[_ReceiverKey, _Identified],
    ) -> tuple[Address, Reason | None]:
        """``_address`` once per receiver and day: it reads nothing else of the request."""
        key = (request.receiver_gln, request.receiver_sor_id, request.receiver_identifiers, day)
        found = remembered.get(key)
        if found is None:
            address, reason = self._address(request, day, trace)
            remembered[key] = (address, reason, tuple(trace.entries), tuple(trace.warnings))
            return address, reason
        address, reason, entries, warnings = found
        trace.entries.extend(entries)
        trace.warnings.extend(warnings)
        return address, reason

    # -- conversion ---------------------------------------------------------------------

    def _targets(self, takes: Mapping[str, tuple[str, ...]]) -> Iterable[str]:
        preferred = [s for s in self.policy.syntax_preference if s in takes]
        return preferred + sorted(s for s in takes if s not in preferred)

    def _path(
        self,
        source: str,
        target: str,
        business_message: str,
        day: date,
        vans: str | None,
        trace: _Trace,
    ) -> tuple[ConversionStep, ...] | None:
        """Shortest chain of conversion steps open on ``day`` that convert ``business_message``
        (agreements checked per VANS)."""
        key = (source, target, business_message, day, vans)
        found = self._paths.get(key)
        if found is None:
            # A function of the policy alone: worked out once per key (a handful of syntaxes,
            # business messages and VANS a day), not once per decision.
            if len(self._paths) >= _PATHS_KEPT:
                self._paths.clear()
            found = self._paths[key] = self._find_path(*key)
        chain, outcome, detail = found
        trace.add("conversion", outcome, detail)
        return chain

    def _find_path(
        self, source: str, target: str, business_message: str, day: date, vans: str | None
    ) -> tuple[tuple[ConversionStep, ...] | None, str, str]:
        agreed = self.policy.agreements.get(vans or "", frozenset())
        usable: dict[str, list[ConversionStep]] = {}
        for step in self.policy.conversions:
            if not step.open_on(day) or (step.messages and business_message not in step.messages):
                continue
            if step.requires_agreement and step.name not in agreed:
                continue
            usable.setdefault(step.source, []).append(step)
        queue: deque[tuple[str, tuple[ConversionStep, ...]]] = deque([(source, ())])
        seen = {source}
        while queue:
            syntax, path = queue.popleft()
            for step in usable.get(syntax, []):
                if step.target in seen:
                    continue
                chain = (*path, step)
                if step.target == target:
                    return chain, "allowed", " then ".join(s.name for s in chain) + f" on {day}"
                seen.add(step.target)
                queue.append((step.target, chain))
        detail = f"{source}->{target} for {business_message} on {day} (VANS {vans or '-'})"
        return None, "not-allowed", detail

    # -- outcomes -------------------------------------------------------------------------

    def _deliver(
        self,
        request: RouteRequest,
        syntax: str,
        takes: Mapping[str, tuple[str, ...]],
        letters: Mapping[str, str],
        conversion: tuple[ConversionPlan, ...],
        address: Address,
        day: date,
        trace: _Trace,
    ) -> RouteDecision:
        codes = takes[syntax]
        converting = bool(conversion)
        letter = letters.get(syntax)
        if letter is not None:
            trace.add(
                "binary-letter",
                "inside-letter",
                f"{syntax} has no binary type: the attachment travels inside the letter "
                f"{codes[0]} ({letter}), which the receiver advertises",
            )
        if request.attachments:
            self._attachment_warnings(request.attachments, converting, trace)
        if converting:
            reason = self._check_limits(request, syntax, trace)
            if reason is not None:
                return self._reject(reason, address, day, trace)
        elif request.category_coded is False:
            trace.warn(
                WarningCode.CATEGORY_MISSING,
                "the message's category has no code (or the message has none)",
            )
        attachments: tuple[AttachmentPlan, ...] = ()
        if request.attachments:
            planned = self._plan_attachments(
                request.attachments, syntax, converting, address, trace
            )
            if planned is None:
                return self._reject(Reason.NO_ATTACHMENT_TYPE, address, day, trace)
            attachments = planned
        trace.add("decision", "deliver", f"{codes[0]} ({syntax})")
        return RouteDecision(
            decision=Decision.DELIVER,
            reason=None,
            message_type=codes[0],
            message_types=codes,
            syntax=syntax,
            conversion=conversion,
            attachments=attachments,
            address=address,
            warnings=tuple(trace.warnings),
            snapshot=self.index.snapshot,
            decided_on=day,
            trace=tuple(trace.entries),
        )

    def _reject(self, reason: Reason, address: Address, day: date, trace: _Trace) -> RouteDecision:
        trace.add("decision", "reject", reason.value)
        return RouteDecision(
            decision=Decision.REJECT,
            reason=reason,
            message_type=None,
            message_types=(),
            syntax=None,
            conversion=(),
            attachments=(),
            address=address,
            warnings=tuple(trace.warnings),
            snapshot=self.index.snapshot,
            decided_on=day,
            trace=tuple(trace.entries),
        )
