"""An audit weighed by traffic (``audit --by-traffic``) as a table, CSV or JSON: each finding's
row with the messages its GLN received in the window, native, converted and rejected."""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Console

from soredi_sync.reports.audit import FINDING_COLUMNS, finding_row, snapshot_json, snapshot_label
from soredi_sync.services.cutover_traffic import PricedCutover
from soredi_sync.services.traffic import TrafficAudit

TRAFFIC_COLUMNS = ("messages_cost", "converted", "rejected", "native")


def weighed_rows(audit: TrafficAudit, top: int | None = None) -> list[dict[str, Any]]:
    names = dict(audit.report.vans_names)
    return [
        {
            "messages_cost": w.cost,
            "converted": w.converted,
            "rejected": w.rejected,
            "native": w.native,
            **finding_row(w.finding, names),
        }
        for w in audit.weighed[:top]
    ]


def render_weighed(console: Console, audit: TrafficAudit, top: int | None = None) -> None:
    from rich.table import Table

    report = audit.report
    console.print(
        f"Audit of {snapshot_label(report.snapshot)}, scope: {report.scope.describe()}; "
        f"traffic routed for {audit.first}..{audit.last}"
    )
    costly = sum(1 for w in audit.weighed if w.cost)
    table = Table(
        "cost",
        "converted",
        "rejected",
        "native",
        "code",
        "GLN",
        "owner",
        "text",
        title=f"Findings by the messages they cost ({costly} of {len(audit.weighed)} cost any)",
    )
    for row in weighed_rows(audit, top):
        owner = f"{row['owner_name']} ({row['owner_sor_id']})" if row["owner_sor_id"] else ""
        numbers = (row["messages_cost"], row["converted"], row["rejected"], row["native"])
        table.add_row(*(f"{n:,}" for n in numbers), row["code"], row["gln"], owner, row["text"])
    console.print(table)


def weighed_csv(audit: TrafficAudit, top: int | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=[*TRAFFIC_COLUMNS, *FINDING_COLUMNS], lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(weighed_rows(audit, top))
    return out.getvalue()


def weighed_json(audit: TrafficAudit, top: int | None = None) -> dict[str, Any]:
    report = audit.report
    return {
        "snapshot": snapshot_json(report.snapshot),
        "on": report.on.isoformat(),
        "scope": report.scope.describe(),
        "traffic": {"first": audit.first.isoformat(), "last": audit.last.isoformat()},
        "total": len(audit.weighed),
        "costing": sum(1 for w in audit.weighed if w.cost),
        "findings": weighed_rows(audit, top),
    }


def print_priced(console: Console, priced: PricedCutover, top: int = 10) -> None:
    from rich.table import Table

    console.print(
        f"Traffic logged {priced.first}..{priced.last} ({priced.days} days), decided again for "
        f"{priced.on}: {priced.lost:,} of {priced.delivered:,} delivered messages would be "
        f"rejected, {priced.lost_per_day:,.1f} a day"
        + (
            f"; {priced.not_replayable:,} logged without their facts not replayed"
            if priced.not_replayable
            else ""
        )
    )
    for title, counts in (
        ("receiver owner", priced.by_receiver_owner),
        ("sender owner", priced.by_sender_owner),
        ("business message", priced.by_business_message),
        ("VANS", priced.by_vans),
        ("reason", priced.by_reason),
    ):
        if not counts:
            continue
        table = Table(title, "messages lost", "a day", title=f"Lost by {title}")
        for key, n in list(counts.items())[:top]:
            table.add_row(key, f"{n:,}", f"{n / priced.days:,.1f}")
        console.print(table)
