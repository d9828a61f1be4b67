"""``loyalty report``: a self-contained HTML report of the analytics rows (docs/analytics.md).

::

    loyalty report [--from DAY] [--to DAY] [--program ID] [--data .local/analytics]
                   [--out .local/report.html]

Reads the Parquet files the local stack writes (``<data>/day=YYYY-MM-DD/*.parquet``) with
DuckDB, runs the queries of :mod:`infra.analytics_sql` (the same text runs on Athena against the
Glue table), and writes one HTML file with its charts as inline SVG: no script, no stylesheet or
font to fetch, so it opens offline and can be mailed. Per program: tier mix by day, retention by
first-order month, points earned / bonus / spent / expired by week, perk use, and each
campaign's cost per extra order.

``--to`` defaults to the last day with data, ``--from`` to 89 days before it; ``--program`` to
every program with rows in the range. DuckDB and pyarrow are development dependencies: this
command runs on a developer's machine (or against an export of the S3 prefix), never in Lambda.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from infra import analytics_sql as sql

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / ".local" / "analytics"
DEFAULT_OUT = REPO_ROOT / ".local" / "report.html"
DEFAULT_DAYS = 90
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


@dataclass
class Campaign:
    campaign_id: str
    bonus_points: int
    rewarded_members: int
    rewarded_orders: int
    other_members: int
    other_orders: int
    point_value: Decimal | None

    @property
    def expected_orders(self) -> float | None:
        """What the rewarded members would have ordered at the other members' rate."""
        if not self.other_members:
            return None
        return self.rewarded_members * self.other_orders / self.other_members

    @property
    def extra_orders(self) -> float | None:
        expected = self.expected_orders
        return None if expected is None else self.rewarded_orders - expected

    @property
    def cost(self) -> Decimal | None:
        return None if self.point_value is None else self.bonus_points * self.point_value

    @property
    def points_per_extra_order(self) -> float | None:
        extra = self.extra_orders
        return None if extra is None or extra <= 0 else self.bonus_points / extra

    @property
    def cost_per_extra_order(self) -> Decimal | None:
        extra = self.extra_orders
        cost = self.cost
        if extra is None or extra <= 0 or cost is None:
            return None
        return (cost / Decimal(str(extra))).quantize(Decimal("0.01"))


@dataclass
class ProgramReport:
    program_id: str
    days: list[str] = field(default_factory=list)
    """The days of the range with any event: the tier mix's axis."""
    tier_mix: list[tuple[str, str, int]] = field(default_factory=list)
    retention: list[tuple[str, int, int]] = field(default_factory=list)
    points: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    perks: list[tuple[str, int, int, int, Decimal]] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)


def _point_value(program_id: str) -> Decimal | None:
    from shared.domain.errors import ProgramConfigError  # noqa: PLC0415
    from shared.programs import load_program  # noqa: PLC0415

    try:
        rules = load_program(program_id).points
    except ProgramConfigError:
        return None
    return None if rules is None else rules.value


def connect(data: Path) -> Any:
    """An in-memory DuckDB with the ``events`` view over ``data``."""
    import duckdb  # noqa: PLC0415 (a development dependency)

    connection = duckdb.connect()
    connection.execute(sql.duckdb_events_view(str(data)))
    return connection


def last_day(connection: Any) -> str | None:
    row = connection.execute("SELECT MAX(day) FROM events").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def gather(connection: Any, program_id: str, start: str, end: str) -> ProgramReport:
    """Every figure of one program's section, from the queries."""

    def rows(query: str, *extra: str) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = connection.execute(
            query, [program_id, end, *extra]
        ).fetchall()
        return result

    report = ProgramReport(program_id)
    report.days = [str(row[0]) for row in connection.execute(sql.DAYS, [start, end]).fetchall()]
    report.tier_mix = [(d, t, int(n)) for d, t, n in rows(sql.TIER_MIX, start, end)]
    report.retention = [(c, int(k), int(n)) for c, k, n in rows(sql.RETENTION, start)]
    report.points = [
        (w, int(a or 0), int(b or 0), int(c or 0), int(d or 0))
        for w, a, b, c, d in rows(sql.POINTS_FLOW, start)
    ]
    report.perks = [
        (p, int(u), int(c), int(m), Decimal(str(cash or 0)))
        for p, u, c, m, cash in rows(sql.PERK_USE, start)
    ]
    value = _point_value(program_id)
    report.campaigns = [
        Campaign(str(c), int(b or 0), int(rm), int(ro or 0), int(om), int(oo or 0), value)
        for c, b, rm, ro, om, oo in rows(sql.CAMPAIGNS, start, start)
    ]
    return report


# ---------------------------------------------------------------------------------- charts

WIDTH, HEIGHT, PAD = 720, 240, 40


def _svg(chart_id: str, title: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart" id="{html.escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img">'
        f"<title>{html.escape(title)}</title>{''.join(body)}</svg>"
    )


def _legend(names: Sequence[str], y: int = 14) -> list[str]:
    parts = []
    for index, name in enumerate(names):
        x = PAD + index * 130
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<rect x="{x}" y="{y - 10}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" font-size="11">{html.escape(str(name))}</text>')
    return parts


def _axis(top: float, label_max: str, first: str, last: str, height: int = HEIGHT) -> list[str]:
    bottom = height - 20
    return [
        f'<line x1="{PAD}" y1="{bottom}" x2="{WIDTH - 10}" y2="{bottom}" stroke="#888"/>',
        f'<line x1="{PAD}" y1="{top}" x2="{PAD}" y2="{bottom}" stroke="#888"/>',
        f'<text x="2" y="{top + 10}" font-size="10">{html.escape(label_max)}</text>',
        f'<text x="{PAD}" y="{height - 5}" font-size="10">{html.escape(first)}</text>',
        f'<text x="{WIDTH - 80}" y="{height - 5}" font-size="10">{html.escape(last)}</text>',
    ]


def stacked_bars(
    chart_id: str, title: str, categories: list[str], series: dict[str, list[float]]
) -> str:
    """One bar per category, its series stacked (tier mix by day)."""
    if not categories:
        return _svg(chart_id, title, ['<text x="40" y="40">no data</text>'], 60)
    names = list(series)
    totals = [sum(series[name][i] for name in names) for i in range(len(categories))]
    peak = max(totals) or 1
    top, bottom = 24, HEIGHT - 20
    step = (WIDTH - PAD - 10) / len(categories)
    body = _legend(names)
    for i, category in enumerate(categories):
        y = float(bottom)
        for index, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            h = (bottom - top) * value / peak
            y -= h
            body.append(
                f'<rect class="bar" x="{PAD + i * step:.1f}" y="{y:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[index % len(COLOURS)]}"><title>{html.escape(category)} '
                f"{html.escape(name)}: {value:g}</title></rect>"
            )
    body += _axis(top, f"{peak:g}", categories[0], categories[-1])
    return _svg(chart_id, title, body)


def grouped_bars(
    chart_id: str, title: str, categories: list[str], series: dict[str, list[float]]
) -> str:
    """Bars side by side per category (points by week)."""
    if not categories:
        return _svg(chart_id, title, ['<text x="40" y="40">no data</text>'], 60)
    names = list(series)
    peak = max((max(values, default=0) for values in series.values()), default=0) or 1
    top, bottom = 24, HEIGHT - 20
    step = (WIDTH - PAD - 10) / len(categories)
    width = max((step - 2) / len(names), 1)
    body = _legend(names)
    for i, category in enumerate(categories):
        for index, name in enumerate(names):
            value = max(series[name][i], 0)
            h = (bottom - top) * value / peak
            body.append(
                f'<rect class="bar" x="{PAD + i * step + index * width:.1f}" '
                f'y="{bottom - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[index % len(COLOURS)]}"><title>{html.escape(category)} '
                f"{html.escape(name)}: {value:g}</title></rect>"
            )
    body += _axis(top, f"{peak:g}", categories[0], categories[-1])
    return _svg(chart_id, title, body)


def horizontal_bars(chart_id: str, title: str, values: list[tuple[str, float]]) -> str:
    """One labelled bar per item (perk use, cost per extra order)."""
    if not values:
        return _svg(chart_id, title, ['<text x="40" y="40">no data</text>'], 60)
    height = 20 + 24 * len(values)
    peak = max(value for _, value in values) or 1
    body: list[str] = []
    for i, (label, value) in enumerate(values):
        y = 10 + i * 24
        w = (WIDTH - 220) * max(value, 0) / peak
        body.append(f'<text x="4" y="{y + 13}" font-size="11">{html.escape(label)}</text>')
        body.append(
            f'<rect class="bar" x="170" y="{y}" width="{w:.1f}" height="16" '
            f'fill="{COLOURS[i % len(COLOURS)]}"><title>{html.escape(label)}: {value:g}'
            f"</title></rect>"
        )
        body.append(f'<text x="{174 + w:.1f}" y="{y + 13}" font-size="11">{value:g}</text>')
    return _svg(chart_id, title, body, height)


def heatmap(chart_id: str, title: str, cohorts: list[tuple[str, int, int]]) -> str:
    """Retention: a row per cohort, a cell per month after the first order (share of the
    cohort with an order that month)."""
    if not cohorts:
        return _svg(chart_id, title, ['<text x="40" y="40">no data</text>'], 60)
    size: dict[str, int] = {c: n for c, k, n in cohorts if k == 0}
    names = sorted(size)
    offsets = max(k for _, k, _ in cohorts) + 1
    cell = min(60, (WIDTH - 90) // max(offsets, 1))
    height = 30 + 24 * len(names)
    body = [
        f'<text x="{90 + k * cell + 4}" y="14" font-size="10">+{k}</text>' for k in range(offsets)
    ]
    for row, name in enumerate(names):
        y = 20 + row * 24
        body.append(f'<text x="4" y="{y + 15}" font-size="11">{name} ({size[name]})</text>')
        for cohort, k, n in cohorts:
            if cohort != name:
                continue
            share = n / size[name]
            shade = int(235 - 180 * share)
            body.append(
                f'<rect class="cell" x="{90 + k * cell}" y="{y}" width="{cell - 2}" height="22" '
                f'fill="rgb({shade},{shade},255)"><title>{name} +{k}: {n} of {size[name]}'
                f"</title></rect>"
            )
            body.append(
                f'<text x="{90 + k * cell + 4}" y="{y + 15}" font-size="10">{share:.0%}</text>'
            )
    return _svg(chart_id, title, body, height)


# ---------------------------------------------------------------------------------- page


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: float | Decimal | None, places: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def section(report: ProgramReport) -> str:
    pid = report.program_id
    days = report.days if report.tier_mix else []
    tiers = sorted({t for _, t, _ in report.tier_mix})
    counts = {(d, t): n for d, t, n in report.tier_mix}
    tier_series = {t: [float(counts.get((d, t), 0)) for d in days] for t in tiers}
    weeks = [w for w, *_ in report.points]
    points_series = {
        name: [float(row[1:][i]) for row in report.points]
        for i, name in enumerate(("earned", "bonus", "spent", "expired"))
    }
    totals = [sum(values) for values in zip(*(row[1:] for row in report.points), strict=True)]
    totals = totals or [0, 0, 0, 0]
    perk_rows = [(p, u, c, m, f"{cash:.2f}") for p, u, c, m, cash in report.perks]
    campaign_rows = [
        (
            c.campaign_id,
            c.bonus_points,
            _fmt(c.cost, 2),
            c.rewarded_members,
            c.rewarded_orders,
            _fmt(c.expected_orders),
            _fmt(c.extra_orders),
            _fmt(c.points_per_extra_order),
            _fmt(c.cost_per_extra_order, 2),
        )
        for c in report.campaigns
    ]
    cost_bars = [
        (c.campaign_id, float(c.points_per_extra_order))
        for c in report.campaigns
        if c.points_per_extra_order is not None
    ]
    return "".join(
        [
            f'<section class="program" id="program-{html.escape(pid)}">',
            f"<h2>{html.escape(pid)}</h2>",
            "<h3>Tier mix</h3><p>Members holding each tier at the end of each day.</p>",
            stacked_bars(f"{pid}-tier-mix", f"{pid}: tier mix by day", days, tier_series),
            "<h3>Retention by first-order month</h3>"
            "<p>Share of each cohort (members by the month of their first order) with an "
            "order in each later month.</p>",
            heatmap(f"{pid}-retention", f"{pid}: retention cohorts", report.retention),
            "<h3>Points</h3><p>Points by week: earned on orders, campaign bonuses (net of "
            "reversals), spent at checkout, expired.</p>",
            grouped_bars(f"{pid}-points", f"{pid}: points by week", weeks, points_series),
            _table(
                ["earned", "bonus", "spent", "expired"],
                [[f"{value:,}" for value in totals]],
            ),
            "<h3>Perk use</h3>",
            horizontal_bars(
                f"{pid}-perks", f"{pid}: perk uses", [(p, float(u)) for p, u, *_ in report.perks]
            ),
            _table(["perk", "uses", "cancelled", "members", "cashback"], perk_rows),
            "<h3>Campaigns: cost per extra order</h3>"
            "<p>Extra orders: the rewarded members' orders in the range, less what they would "
            "have ordered at the rate of the program's other ordering members. Cost: the net "
            "bonus points (at the program's point value). A campaign with no extra orders has "
            "no cost per extra order (n/a).</p>",
            horizontal_bars(f"{pid}-campaigns", f"{pid}: bonus points per extra order", cost_bars),
            _table(
                [
                    "campaign",
                    "bonus points",
                    "cost",
                    "members rewarded",
                    "their orders",
                    "expected",
                    "extra orders",
                    "points per extra order",
                    "cost per extra order",
                ],
                campaign_rows,
            ),
            "</section>",
        ]
    )


STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
    "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "svg.chart{display:block;margin:.5em 0;background:#fafafa}"
)


def render(reports: Sequence[ProgramReport], start: str, end: str) -> str:
    body = "".join(section(report) for report in reports) or "<p>No data in this range.</p>"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Loyalty report {start} to {end}</title><style>{STYLE}</style></head>"
        f"<body><h1>Loyalty report</h1><p>{start} to {end} (UTC days of the events). "
        "Definitions: docs/analytics.md.</p>"
        f"{body}</body></html>"
    )


def _day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def build(
    data: Path, out: Path, start: str | None, end: str | None, programs: Sequence[str]
) -> tuple[str, str, list[ProgramReport]]:
    """Write the report; its range and the programs' figures."""
    connection = connect(data)
    try:
        end = end or last_day(connection) or date.today().isoformat()  # noqa: DTZ011
        start = start or (date.fromisoformat(end) - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        ids = list(programs) or [
            str(row[0]) for row in connection.execute(sql.PROGRAMS, [start, end]).fetchall()
        ]
        reports = [gather(connection, program_id, start, end) for program_id in ids]
    finally:
        connection.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(reports, start, end), encoding="utf-8")
    return start, end, reports


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loyalty report", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="start", type=_day, help="first day (default: to - 89)")
    parser.add_argument("--to", dest="end", type=_day, help="last day (default: last with data)")
    parser.add_argument("--program", action="append", default=[], help="a program id (repeat)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Parquet folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the HTML file to write")
    args = parser.parse_args(argv)
    if not any(args.data.glob("day=*/*.parquet")):
        print(f"error: no Parquet files under {args.data}/day=*/ (run make run and make demo)")
        return 1
    if args.start and args.end and args.start > args.end:
        parser.error("--from is after --to")
    start, end, reports = build(args.data, args.out, args.start, args.end, args.program)
    print(f"{args.out}: {start} to {end}, programs {', '.join(r.program_id for r in reports)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
