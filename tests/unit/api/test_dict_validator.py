"""The quick path's body validation (``DictValidator``) takes exactly the bodies the published
models take, and reads from them the same routing questions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soredi_sync.api.routers.at_once import DictValidator
from soredi_sync.api.routers.routing_schemas import (
    BATCH_DICTS,
    ROUTE_DICTS,
    RouteBatchIn,
    RouteIn,
    route_request,
)

GLN = "5790000121786"
_ABSENT = object()


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's value, or the field left out."""
    return st.one_of(st.just(_ABSENT), value)


def _text(limit: int) -> st.SearchStrategy[Any]:
    """Texts around a field's length limit, and values of the wrong kind."""
    return st.one_of(
        st.text(max_size=limit + 3), st.none(), st.integers(-2, 3), st.sampled_from([True, 1.5])
    )


_COUNTS = st.one_of(
    st.integers(-3, 10**7), st.none(), st.sampled_from(["12", "x", 1.0, 2.5, True, -0.0])
)
_RECEIVERS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "gln": st.one_of(st.just(GLN), st.none(), st.sampled_from(["123", "57900001217x6"])),
            "sor_id": st.one_of(
                st.just("123456789012345"),
                st.none(),
                st.sampled_from(["", "12345678901234567890123"]),
            ),
        },
    ),
    st.just({"gln": GLN, "extra": 1}),
    st.just({"gln": int(GLN)}),
    st.just([GLN]),
)
_ATTACHMENTS = st.lists(
    st.fixed_dictionaries(
        {"mime_type": _text(255), "size": _COUNTS},
        optional={
            "title": _text(1000),
            "content": st.sampled_from(["data", "separate", "link", "none", "inline", None]),
            "other": st.just(1),
        },
    ),
    max_size=3,
)


@st.composite
def _questions(draw: st.DrawFn) -> dict[str, Any]:
    fields = {
        "receiver": draw(_maybe(_RECEIVERS)),
        "business_message": draw(_maybe(_text(40))),
        "sender_syntax": draw(_maybe(_text(20))),
        "message_id": draw(_maybe(_text(200))),
        "text_length": draw(_maybe(_COUNTS)),
        "subject": draw(_maybe(_text(10))),
        "category": draw(_maybe(_text(200))),
        "topic": draw(_maybe(_text(10))),
        "attachments": draw(_maybe(st.one_of(_ATTACHMENTS, st.none(), st.just({})))),
        "total_size": draw(_maybe(_COUNTS)),
        "at": draw(_maybe(st.sampled_from(["2026-12-01", "2026-13-01", 20261201, "", None]))),
        "category_coded": draw(_maybe(st.sampled_from([True, False, None, "true", 1, "yes"]))),
        "unknown": draw(st.one_of(st.just(_ABSENT), st.just("x"))),
    }
    return {name: value for name, value in fields.items() if value is not _ABSENT}


def _model_reads(model: type[BaseModel], data: bytes) -> Any:
    try:
        return model.model_validate_json(data)
    except ValidationError:
        return None


def _dicts_read(validator: DictValidator, data: bytes) -> Any:
    try:
        return validator(data)
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(question=_questions())
def test_a_route_body_is_taken_by_the_dicts_exactly_when_the_model_takes_it(
    question: dict[str, Any],
) -> None:
    data = json.dumps(question).encode()
    model = _model_reads(RouteIn, data)
    dicts = _dicts_read(ROUTE_DICTS, data)
    read = None if dicts is None else route_request(dicts)
    if model is None:
        assert read is None
    else:
        assert read == model.to_request()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(questions=st.lists(_questions(), max_size=4), extra=st.booleans())
def test_a_batch_body_is_taken_by_the_dicts_exactly_when_the_model_takes_it(
    questions: list[dict[str, Any]], extra: bool
) -> None:
    body: dict[str, Any] = {"requests": questions}
    if extra:
        body["priority"] = 1
    data = json.dumps(body).encode()
    model = _model_reads(RouteBatchIn, data)
    dicts = _dicts_read(BATCH_DICTS, data)
    read = None if dicts is None else [route_request(item) for item in dicts["requests"]]
    if model is None:
        assert read is None or None in read
    else:
        assert read == [item.to_request() for item in model.requests]


def test_a_batch_over_the_limit_is_refused_by_the_dicts_as_by_the_model() -> None:
    item = {"receiver": {"gln": GLN}, "business_message": "x", "sender_syntax": "fhir"}
    data = json.dumps({"requests": [item] * 1001}).encode()
    with pytest.raises(ValidationError):
        RouteBatchIn.model_validate_json(data)
    with pytest.raises(ValidationError):
        BATCH_DICTS(data)


class _Checked(BaseModel):
    value: int

    @model_validator(mode="after")
    def _positive(self) -> _Checked:
        if self.value < 1:
            raise ValueError("positive")
        return self


class _Aliased(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: int = Field(alias="Value")


def test_a_model_validator_not_rechecked_by_the_caller_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match="would not run on dicts"):
        DictValidator(_Checked, rechecked=[])
    assert DictValidator(_Checked, rechecked=[_Checked._positive])(b'{"value": 0}') == {
        "value": 0
    }  # named: the caller checks it


def test_a_model_with_an_alias_is_refused_when_built() -> None:
    with pytest.raises(TypeError, match="not a plain model"):
        DictValidator(_Aliased, rechecked=[])
