"""The decision log's facts of a question: decided again, the question made from them gets the
decision the original got, and they hold no content."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soredi_sync.domain.routing import RouteDecision, RouteRequest
from soredi_sync.domain.routing.facts import facts_of, question_of
from tests.unit.domain.test_routing import (
    PDF,
    TODAY,
    _resolver,
    agreements,
    identifier_sets,
    requests,
)

SUBJECTS = st.none() | st.text(max_size=120)


def _replayed(request: RouteRequest) -> RouteRequest:
    """The question as the decision log gives it back: its facts through JSON, its columns."""
    facts = json.loads(json.dumps(facts_of(request)))
    return question_of(
        facts,
        business_message=request.business_message,
        sender_syntax=request.sender_syntax,
        receiver_gln=request.receiver_gln,
        receiver_sor_id=request.receiver_sor_id,
        message_id=request.message_id,
    )


def _what_was_decided(decision: RouteDecision) -> tuple[object, ...]:
    """Everything of a decision but the trace's wording (which names attachment titles)."""
    return (
        decision.decision,
        decision.reason,
        decision.message_type,
        decision.message_types,
        decision.syntax,
        decision.conversion,
        tuple((a.mime_type, a.size, a.carried_as, a.index) for a in decision.attachments),
        decision.address,
        tuple(w.code for w in decision.warnings),
        decision.decided_on,
        tuple((t.rule, t.outcome) for t in decision.trace),
    )


@settings(max_examples=300, deadline=None)
@given(requests, agreements, SUBJECTS, st.none() | st.text(max_size=40))
def test_a_question_made_from_its_facts_is_decided_as_the_original(
    types, policy, request, agreed, subject, category
) -> None:
    request = replace(request, subject=subject, category=category)
    resolver = _resolver(types, policy, agreements=agreed)
    original = resolver.resolve(request, TODAY)
    assert _what_was_decided(resolver.resolve(_replayed(request), TODAY)) == _what_was_decided(
        original
    )


@settings(max_examples=200, deadline=None)
@given(identifier_sets, st.booleans())
def test_a_message_s_receiver_identifiers_are_kept_as_written(
    types, policy, identifiers, strict
) -> None:
    request = RouteRequest("correspondence", "fhir", receiver_identifiers=identifiers)
    resolver = _resolver(types, policy, reject_address_mismatch=strict)
    replayed = _replayed(request)
    assert replayed.receiver_identifiers == identifiers
    assert resolver.resolve(replayed, TODAY) == resolver.resolve(request, TODAY)


def test_the_facts_hold_lengths_types_and_sizes_but_no_text_of_the_message() -> None:
    secret = "Patient Jens Hansen, CPR 010203-1234"
    request = RouteRequest(
        "correspondence",
        "fhir",
        receiver_gln="5790000121786",
        subject=None,
        category=secret,
        topic=secret,
        text_length=12_000,
        attachments=(replace(PDF, title=secret),),
    )
    facts = facts_of(request)
    assert secret not in json.dumps(facts)
    assert facts["subject"] == len(request.legacy_subject() or "")
    assert facts["text"] == 12_000 and facts["att"] == [["application/pdf", 20_000, "data", None]]


def test_facts_of_another_layout_are_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        question_of(
            {"v": 99},
            business_message="correspondence",
            sender_syntax="fhir",
            receiver_gln=None,
            receiver_sor_id="1",
        )
