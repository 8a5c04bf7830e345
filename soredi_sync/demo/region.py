"""Step 8 of the demo: the region with the most active GLNs reads its audit summary."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape

from soredi_sync.bootstrap import App
from soredi_sync.demo.story import Current, Story
from soredi_sync.domain.model import Registry


def read_audit(console: Console, app: App, current: Current, story: Story) -> int:
    """One region's audit summary: findings per rule, and what changed since day 0."""
    from soredi_sync.domain.audit import RULES, AdoptionDimension, adoption
    from soredi_sync.services.audit import run_audit

    context = app.reference.audit_context
    snapshot, registry = current
    region = _busiest_region(registry)
    if region is None:
        console.print("[red]   no GLN names a region[/red]")
        return 1
    with app.uow() as uow:
        report = run_audit(
            uow,
            context,
            snapshot_id=snapshot.id,
            region=region,
            since_snapshot=story.baseline,
            vans_names=app.reference.vans_names,
        )
    story.region = region
    name = context.region_names.get(region, region)
    severities = ", ".join(f"{n} {s}" for s, n in report.severity_counts.items())
    console.print(
        f"[bold]8. A region[/bold]: {escape(name)} ({region}) reads its audit summary of snapshot "
        f"{report.snapshot.id} ({report.on})"
    )
    console.print(
        f"   {len(report.findings)} findings ({severities}); since snapshot "
        f"{report.since.id if report.since else '-'}: {len(report.new or [])} new, "
        f"{len(report.resolved or [])} resolved"
    )
    titles = {rule.code: rule.title for rule in RULES}
    for code, count in sorted(report.counts.items(), key=lambda item: (-item[1], item[0])):
        if count:
            console.print(f"   {count:5d}  {code}: {escape(titles[code])}")
    groups = adoption(registry, context, snapshot.effective_date, AdoptionDimension.REGION)
    counts = groups.get(name)
    if counts is not None and counts.total:
        console.print(
            f"   CareCommunication adoption: {counts.fhir_only} GLNs take it only as FHIR, "
            f"{counts.both} both ways, {counts.legacy_only} legacy only "
            f"({100 * counts.accepts_fdis91 / counts.total:.0f} % take FDIS91)"
        )
    return 0


def _busiest_region(registry: Registry) -> str | None:
    """The region with the most active GLNs (the lowest code among equals)."""
    counts = Counter(g.region_code for g in registry.glns.values() if g.active and g.region_code)
    return min(counts, key=lambda code: (-counts[code], code)) if counts else None
