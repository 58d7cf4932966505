"""Small server-side SVG charts: no JavaScript, nothing loaded from the internet.

Each function returns SVG markup as `markupsafe.Markup`; every text that came from data is escaped. The charts
scale with their container (viewBox + CSS width 100%) and carry a <title> and aria-label for screen readers.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_compact_decimal
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from portal.templating import group_label

PALETTE = ("#2f6fed", "#f08c2e", "#1a7f4b", "#c9372c")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | int | Decimal]
    color: str


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 × 10^n not below value, so axis ticks read well."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _short_number(value: float) -> str:
    if abs(value) >= 1e3:  # 12.5K (en), 12,5 тыс. (ru)
        return format_compact_decimal(value, locale=get_locale() or "en", fraction_digits=1)
    if value != int(value):  # ticks of a small axis (0.25, 0.5, …) would all round to 0 or 1
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.0f}"


def _open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}"><title>{escape(title)}</title>']


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    parts = []
    for index, item in enumerate(series):
        left = x + index * 130
        parts.append(f'<rect x="{left:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" fill="{item.color}"/>'
                     f'<text class="chart-legend" x="{left + 15:.1f}" y="{y:.1f}">{escape(item.name)}</text>')
    return parts


def _gridlines(left: float, right: float, top: float, bottom: float, maximum: float, ticks: int = 4) -> list[str]:
    parts = []
    for index in range(ticks + 1):
        value = maximum * index / ticks
        y = bottom - (bottom - top) * index / ticks
        parts.append(f'<line class="chart-grid" x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="chart-axis" x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_short_number(value)}</text>')
    return parts


def grouped_bar_chart(labels: Sequence[str], series: Sequence[Series], title: str,
                      width: int = 720, height: int = 300) -> Markup:
    """Vertical bars, one group per label (e.g. revenue vs spend per channel)."""
    left, right, top, bottom = 56, width - 12, 34, height - 58
    maximum = _nice_ceiling(max((float(v) for s in series for v in s.values), default=0))
    parts = _open(width, height, title) + _legend(series, left, 16) + _gridlines(left, right, top, bottom, maximum)
    if not labels:
        parts.append(f'<text class="chart-empty" x="{width / 2:.1f}" y="{(top + bottom) / 2:.1f}" '
                     f'text-anchor="middle">{escape(_("No data for this period"))}</text>')
    group_width = (right - left) / max(len(labels), 1)
    bar_width = min(28.0, group_width * 0.8 / max(len(series), 1))
    for index, label in enumerate(labels):
        group_left = left + index * group_width + (group_width - bar_width * len(series)) / 2
        for position, item in enumerate(series):
            value = float(item.values[index])
            bar_height = (bottom - top) * value / maximum
            x = group_left + position * bar_width
            parts.append(f'<rect class="chart-bar" x="{x:.1f}" y="{bottom - bar_height:.1f}" '
                         f'width="{bar_width - 2:.1f}" height="{bar_height:.1f}" fill="{item.color}">'
                         f'<title>{escape(label)} · {escape(item.name)}: {_short_number(value)}</title></rect>')
        text = label if len(label) <= 14 else label[:13] + "…"
        center = left + index * group_width + group_width / 2
        parts.append(f'<text class="chart-axis" x="{center:.1f}" y="{bottom + 16:.1f}" text-anchor="end" '
                     f'transform="rotate(-30 {center:.1f} {bottom + 16:.1f})">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str,
               width: int = 720, height: int = 260) -> Markup:
    """Lines over time (e.g. leads and won deals per day); at most ~8 x-axis labels are written."""
    left, right, top, bottom = 56, width - 12, 34, height - 34
    maximum = _nice_ceiling(max((float(v) for s in series for v in s.values), default=0))
    parts = _open(width, height, title) + _legend(series, left, 16) + _gridlines(left, right, top, bottom, maximum)
    count = len(labels)
    step = (right - left) / max(count - 1, 1)
    for item in series:
        points = " ".join(f"{left + i * step:.1f},{bottom - (bottom - top) * float(v) / maximum:.1f}"
                          for i, v in enumerate(item.values))
        if count == 1:
            x, y = points.split(",")
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{item.color}"/>')
        elif points:
            parts.append(f'<polyline class="chart-line" fill="none" stroke="{item.color}" stroke-width="2" '
                         f'points="{points}"><title>{escape(item.name)}</title></polyline>')
    every = max(1, -(-count // 8))
    for index in range(0, count, every):
        parts.append(f'<text class="chart-axis" x="{left + index * step:.1f}" y="{bottom + 18:.1f}" '
                     f'text-anchor="middle">{escape(labels[index])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def roi_charts(report, currency: str) -> dict[str, Markup]:
    """The ROI page's two charts: revenue vs spend per row (top 12), leads and won deals over time."""
    top = report.rows[:12]
    channels = grouped_bar_chart(
        [group_label(row.full_label if report.query.view == "flat" else row.label) for row in top],
        [Series(_("Revenue, %(currency)s", currency=currency), [row.figures.revenue for row in top], PALETTE[0]),
         Series(_("Spend, %(currency)s", currency=currency), [row.figures.spend for row in top], PALETTE[1])],
        {"source": _("Revenue vs spend by source"), "medium": _("Revenue vs spend by medium"),
         "campaign": _("Revenue vs spend by campaign"), "content": _("Revenue by content"),
         "term": _("Revenue by term"), "landing_path": _("Revenue by landing page"),
         "referrer_domain": _("Revenue by referrer domain")}[report.query.level])
    date_format = "LLL y" if report.bucket == "month" else "d MMM"
    over_time = line_chart(
        [format_date(point.start, date_format) for point in report.series],
        [Series(_("Leads"), [point.leads for point in report.series], PALETTE[0]),
         Series(_("Won deals"), [point.won for point in report.series], PALETTE[2])],
        {"day": _("Leads and won deals per day"), "week": _("Leads and won deals per week"),
         "month": _("Leads and won deals per month")}[report.bucket])
    return {"channels": channels, "over_time": over_time}


def daily_chart(daily) -> Markup:
    """Leads and won deals per day, from (day, leads, won) tuples (the dashboard)."""
    return line_chart([format_date(day, "d MMM") for day, _leads, _won in daily],
                      [Series(_("Leads"), [leads for _day, leads, _won in daily], PALETTE[0]),
                       Series(_("Won deals"), [won for _day, _leads, won in daily], PALETTE[2])],
                      _("Leads and won deals per day"), height=220)
