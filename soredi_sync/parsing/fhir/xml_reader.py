"""Reading a FHIR XML bundle with a hardened iterparse, counted against the budget and dropped
from the tree as it is read, into the shape of FHIR JSON; an OIOXML ``Emessage`` is named, not
read."""

from __future__ import annotations

from typing import Any

from lxml import etree

from soredi_sync.parsing.attachment_bytes import _Base64Data
from soredi_sync.parsing.fhir.nodes import _message_start
from soredi_sync.parsing.fhir.vocabulary import FHIR_NAMESPACE
from soredi_sync.parsing.refusals import BundleBudget, BundleProblem, InvalidBundle
from soredi_sync.parsing.xml_input import hardened_iterparse, xml_root_at

_FHIR_TAG_PREFIX = "{" + FHIR_NAMESPACE + "}"


class _Frame:
    """One open FHIR element while the XML is read."""

    __slots__ = ("name", "value", "url", "children")

    def __init__(self, name: str, value: Any, url: str | None) -> None:
        self.name = name
        self.value = value
        self.url = url
        self.children: dict[str, list[Any]] = {}

    def node(self) -> Any:
        """The element in the shape of FHIR JSON, except that every child is a list."""
        if self.name[:1].isupper():  # a resource: Bundle, MessageHeader, Organization, ...
            return {"resourceType": self.name, **self.children}
        if self.value is not None:  # a primitive (its extensions are not needed)
            return self.value
        if len(self.children) == 1 and self.url is None:
            ((name, items),) = self.children.items()
            if name[:1].isupper() and len(items) == 1:  # <resource><Organization>
                return items[0]
        node: dict[str, Any] = dict(self.children)
        if self.url is not None:
            node["url"] = self.url
        return node


_SKIP = _Frame("", None, None)  # narrative XHTML and anything else outside the FHIR namespace


def _read_xml(data: bytes, budget: BundleBudget, allow_events: frozenset[str]) -> dict[str, Any]:
    xml_root_at(data)
    context = hardened_iterparse(data)
    stack: list[_Frame] = []
    bundle: Any = None
    elements = 0
    max_elements, max_depth = budget.max_elements, budget.max_depth
    first_entry = True  # until the first entry of the Bundle has been judged
    try:
        for event, elem in context:
            if event == "start":
                if not stack and bundle is None:
                    _check_xml_root(elem, context)
                elements += 1
                if elements > max_elements:
                    raise budget.too_many()
                if len(stack) >= max_depth:
                    raise budget.too_deep()
                tag = elem.tag
                if (stack and stack[-1] is _SKIP) or not tag.startswith(_FHIR_TAG_PREFIX):
                    stack.append(_SKIP)
                    continue
                name = tag[len(_FHIR_TAG_PREFIX) :]
                if first_entry and len(stack) == 3 and stack[2].name == "resource":
                    # The first entry's resource is named: judge it before reading it.
                    _judge_early(stack[0], {"resource": [{"resourceType": name}]}, allow_events)
                value: Any = elem.get("value")
                if name == "data" and value is not None:
                    value = _Base64Data.of(value)
                stack.append(_Frame(name, value, elem.get("url")))
                continue
            frame = stack.pop()
            if frame is not _SKIP:
                node = frame.node()
                if stack:
                    stack[-1].children.setdefault(frame.name, []).append(node)
                    if first_entry and len(stack) == 1 and frame.name == "entry":
                        _judge_early(stack[0], node, allow_events)
                        first_entry = False
                else:
                    bundle = node
            # Drop what has been read, so a 100 MB bundle is not kept twice.
            elem.clear(keep_tail=True)
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
    except etree.XMLSyntaxError as exc:
        raise InvalidBundle(BundleProblem.MALFORMED, _syntax_error(exc)) from exc
    if not isinstance(bundle, dict):  # pragma: no cover - libxml2 reports a missing root
        raise InvalidBundle(BundleProblem.MALFORMED, "malformed XML: no root element")
    return bundle


def _judge_early(root: _Frame, entry: Any, allow_events: frozenset[str]) -> None:
    """The message start, judged on the first entry as soon as it is read, when the Bundle's
    type came before its entries as FHIR XML orders them (otherwise at the end, in full)."""
    if "type" in root.children:
        _message_start({"resourceType": "Bundle", **root.children, "entry": [entry]}, allow_events)


def _syntax_error(exc: etree.XMLSyntaxError) -> str:
    """libxml2's message. iterparse can report a bare "no element found" where the parser's
    last error (its log is per thread, so the newest entry is this parse's) says more."""
    line: Any = exc.lineno or "?"
    message = exc.msg
    last = getattr(exc.error_log, "last_error", None)
    if message.startswith("no element found") and last is not None:
        line, message = last.line, last.message
    return f"malformed XML (line {line}): {message}"


def _check_xml_root(elem: Any, context: Any) -> None:
    docinfo = elem.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # pragma: no cover - prolog scan
        raise InvalidBundle(BundleProblem.DOCTYPE, "the XML has a DOCTYPE declaration")
    namespace, localname = _split_tag(elem.tag)
    if ":" in localname:
        # libxml2 (in recover mode for an undeclared prefix) keeps "a:Bundle" as the name.
        raise InvalidBundle(
            BundleProblem.MALFORMED,
            f"malformed XML: the root element {localname!r} uses an undeclared namespace prefix",
        )
    if localname == "Emessage":
        raise InvalidBundle(
            BundleProblem.OIOXML,
            f"OIOXML message ({_describe_emessage(context)}) — not a FHIR Bundle: "
            "a CareCommunication must be a FHIR message Bundle",
        )
    if localname != "Bundle" or namespace != FHIR_NAMESPACE:
        where = f" in namespace {namespace}" if namespace else " in no namespace"
        raise InvalidBundle(
            BundleProblem.NOT_A_BUNDLE,
            f"the XML root is {localname}{where}, not a FHIR Bundle "
            f"(Bundle in namespace {FHIR_NAMESPACE})",
        )


def _split_tag(tag: Any) -> tuple[str | None, str]:
    """(namespace, local name) of an element's tag, never raising (unlike ``etree.QName``,
    which refuses names lxml keeps for undeclared prefixes)."""
    text = tag if isinstance(tag, str) else ""
    if text.startswith("{"):
        namespace, _, localname = text[1:].partition("}")
        return namespace, localname
    return None, text


def _describe_emessage(context: Any) -> str:
    """``Emessage/ClinicalEmail, XDIS91``: the letter element and its statistical code."""
    letter: str | None = None
    code: str | None = None
    depth = 1
    try:
        for event, elem in context:
            local = _split_tag(elem.tag)[1]
            if event == "start":
                depth += 1
                if depth == 2 and letter is None and local != "Envelope":
                    letter = local
            else:
                depth -= 1
                if local == "StatisticalCode" and code is None and elem.text:
                    code = elem.text.strip()
                elem.clear(keep_tail=True)
            if (letter is not None and code is not None) or depth == 0:
                break
    except etree.XMLSyntaxError:
        pass  # it is OIOXML either way
    path = f"Emessage/{letter}" if letter else "Emessage"
    return f"{path}, {code}" if code else path
