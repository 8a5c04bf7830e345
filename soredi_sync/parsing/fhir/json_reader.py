"""Reading a FHIR JSON bundle: its structure scanned against the budget, and its message start
judged, before ``json.loads`` builds anything."""

from __future__ import annotations

import json
import re
from typing import Any

from soredi_sync.parsing.fhir.nodes import _message_start
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidBundle


def _read_json(data: bytes, budget: BundleBudget, allow_events: frozenset[str]) -> dict[str, Any]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidBundle(
            BundleProblem.ENCODING, f"the JSON is not valid UTF-8 (at byte {exc.start})"
        ) from exc
    _JsonScan(text, budget, allow_events).run()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBundle(
            BundleProblem.MALFORMED,
            f"malformed JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
        ) from exc
    except RecursionError as exc:
        raise InvalidBundle(BundleProblem.MALFORMED, "malformed JSON: nested too deeply") from exc
    if not isinstance(document, dict):
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE,
            f"the JSON is a {type(document).__name__}, not a FHIR Bundle object",
        )
    resource_type = document.get("resourceType")
    if resource_type != "Bundle":
        what = f"a {resource_type}" if isinstance(resource_type, str) else "no resourceType"
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE, f"the JSON resource has {what}, not a FHIR Bundle"
        )
    return document


# Every character the scan stops at; anything else (blanks, numbers, literals) is skipped by
# the regular expression in C.
_JSON_STRUCTURE = re.compile(r'["{}\[\],:]')
_ROOT_MEMBERS = frozenset({"resourceType", "type", "entry"})


class _JsonScan:
    """One pass over the JSON's structure that builds nothing: counts elements (object members
    and array items) and depth against the budget, and, as soon as the first entry of the
    root's ``entry`` array has been passed, reads that entry alone and judges the message
    start (:func:`_message_start`). Malformed JSON is left to ``json.loads`` to describe."""

    def __init__(self, text: str, budget: BundleBudget, allow_events: frozenset[str]) -> None:
        self.text = text
        self.budget = budget
        self.allow_events = allow_events

    def run(self) -> None:
        text = self.text
        search = _JSON_STRUCTURE.search
        find = text.find
        max_elements, max_depth = self.budget.max_elements, self.budget.max_depth
        stack: list[str] = []
        elements = 0
        pos = 0
        # The root object's short string members (resourceType, type) and where its entries are.
        root: dict[str, str] = {}
        last_key: str | None = None  # the root's member whose value comes next
        string: str | None = None  # the last short string read at the root's level
        in_entries = False
        first_entry = -1  # where the first entry starts, until it has been judged
        while True:
            found = search(text, pos)
            if found is None:
                return
            at = found.start()
            char = text[at]
            pos = at + 1
            if char == '"':
                end = find('"', pos)
                while end > 0 and text[end - 1] == "\\" and _escaped(text, end):
                    end = find('"', end + 1)
                if end < 0:
                    return  # unterminated: json.loads says where
                at_root = len(stack) == 1 and stack[0] == "{"
                if at_root and end - pos <= 64:
                    string = text[pos:end]
                    if last_key is not None:
                        root.setdefault(last_key, string)
                        last_key = None
                pos = end + 1
            elif char == ":":
                elements += 1
                if len(stack) == 1:
                    last_key = string if string in _ROOT_MEMBERS else None
            elif char == ",":
                if stack and stack[-1] == "[":
                    elements += 1
                elif len(stack) == 1:
                    last_key = string = None
            elif char == "{" or char == "[":
                stack.append(char)
                depth = len(stack)
                if depth > max_depth:
                    raise self.budget.too_deep()
                if char == "[":
                    elements += 1
                    if depth == 2 and last_key == "entry":
                        in_entries = first_entry == -1
                elif depth == 3 and in_entries and first_entry == -1:
                    first_entry = at
                if depth == 2:
                    last_key = None
            elif stack:  # } or ]
                stack.pop()
                if in_entries and len(stack) == 2 and char == "}" and first_entry >= 0:
                    self._judge_first_entry(root, text[first_entry : at + 1])
                    in_entries = False
                elif in_entries and len(stack) == 1:
                    in_entries = False
            if elements > max_elements:
                raise self.budget.too_many()

    def _judge_first_entry(self, root: dict[str, str], entry_text: str) -> None:
        # Judged early only when the root said it is a Bundle and gave its type before its
        # entries, as FHIR JSON writers do; otherwise the whole bundle is read and judged.
        if root.get("resourceType") != "Bundle" or "type" not in root:
            return
        try:
            entry = json.loads(entry_text)
        except (json.JSONDecodeError, RecursionError):
            return  # json.loads of the whole body says what is wrong, and where
        _message_start({**root, "entry": [entry]}, self.allow_events)


def _escaped(text: str, quote: int) -> bool:
    """Whether the quote at ``quote`` is escaped (an odd number of backslashes before it)."""
    start = quote - 1
    while start >= 0 and text[start] == "\\":
        start -= 1
    return (quote - 1 - start) % 2 == 1
