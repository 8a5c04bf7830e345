"""Routing decisions for the conversion gateway (DOMAIN.md §3.1), over one snapshot's index.

Pure: the policy comes in as a value (built from ``config/routing.toml``), the message types from
the registry data, the receiver data from a :class:`RoutingIndex`. Nothing here is specific to
one message type: business messages, syntaxes and binary attachment types all come from data.

The modules: ``model`` (the request, the decision, reasons and warnings), ``policy`` (conversions
and limits), ``index`` (one snapshot for look-ups), ``resolver`` (the order of a decision), and
its steps ``identify`` (the receiver), ``attachments`` and ``limits``. Import from here.
"""

from __future__ import annotations

from soredi_sync.domain.routing.index import RoutingIndex
from soredi_sync.domain.routing.model import (
    Address,
    Attachment,
    AttachmentContent,
    AttachmentPlan,
    ConversionPlan,
    Decision,
    Reason,
    RouteDecision,
    RouteRequest,
    RouteWarning,
    RoutingInputError,
    SnapshotRef,
    TraceEntry,
    WarningCode,
)
from soredi_sync.domain.routing.policy import ConversionStep, Limits, RoutingPolicy
from soredi_sync.domain.routing.resolver import BINARY_ATTACHMENT, Resolver

__all__ = [
    "BINARY_ATTACHMENT",
    "Address",
    "Attachment",
    "AttachmentContent",
    "AttachmentPlan",
    "ConversionPlan",
    "ConversionStep",
    "Decision",
    "Limits",
    "Reason",
    "Resolver",
    "RouteDecision",
    "RouteRequest",
    "RouteWarning",
    "RoutingIndex",
    "RoutingInputError",
    "RoutingPolicy",
    "SnapshotRef",
    "TraceEntry",
    "WarningCode",
]
