"""Small server-side SVG charts: no JavaScript, nothing loaded from the internet.

Each function returns SVG markup as `markupsafe.Markup`; every text that came from data is escaped. An SVG scales
with its container (viewBox + CSS width 100%), and so does its text: so each chart is drawn twice, a wide variant
and a narrow one (static/css/reports.css shows one by the screen's width), each with a viewBox near the width it
is shown at, so its text stays 12–14 px from a 390 px phone to a 1280 px screen. Axis labels may be shortened;
every bar and every point of time is focusable (Tab) and shows its full label and exact values on hover and focus,
and carries them in its <title> for screen readers.
"""
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from babel.numbers import format_compact_decimal
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from portal.templating import group_label

PALETTE = ("#2f6fed", "#f08c2e", "#1a7f4b", "#c9372c")
# (variant, viewBox width, most x-axis labels, characters of a bar label): the narrow one is for phones.
VARIANTS = (("wide", 640, 8, 16), ("narrow", 360, 4, 9))
AXIS_FONT = 13  # viewBox units: ≥ 12 px at the widths each variant is shown at


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | int | Decimal | None]
    color: str
    kind: str = "number"  # "number", "money" or "percent": how its exact values are written in tips


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
    if value != int(value):  # ticks of a small axis (0.25, 0.5, …) would all round to 0 or 1; 3,75 in ru
        return format_decimal(value, format="0.##")
    return f"{value:.0f}"


def _exact(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "percent":
        return format_decimal(round(float(value)), format="#,##0") + " %"
    if kind == "money":
        return format_decimal(round(float(value)), format="#,##0")
    return format_decimal(value)


def _open(width: int, height: int, title: str, variant: str) -> list[str]:
    return [f'<svg class="chart chart-{variant}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']


def _legend(series: Sequence[Series], x: float, y: float, width: int) -> list[str]:
    parts, left, line = [], x, y
    for item in series:
        room = 24 + len(item.name) * 7.5
        if left + room > width and left > x:  # wrap rather than run off the edge
            left, line = x, line + 18
        parts.append(f'<rect x="{left:.1f}" y="{line - 10:.1f}" width="11" height="11" rx="2" fill="{item.color}"/>'
                     f'<text class="chart-legend" x="{left + 16:.1f}" y="{line:.1f}">{escape(item.name)}</text>')
        left += room
    return parts


def _legend_height(series: Sequence[Series], width: int, left: float) -> float:
    lines, used = 1, left
    for item in series:
        room = 24 + len(item.name) * 7.5
        if used + room > width and used > left:
            lines, used = lines + 1, left
        used += room
    return 18 * lines


def _axis_room(low: float, high: float, suffix: str = "", ticks: int = 4) -> float:
    """Pixels left of the plot for the longest tick label ("37,5 тыс. %" is wider than "12.5K"): ~7.5 px a
    character at the axis' 13 px, plus the gap."""
    longest = max(len(_short_number(low + (high - low) * index / ticks) + suffix) for index in range(ticks + 1))
    return 12 + 7.5 * longest


def _gridlines(left: float, right: float, top: float, bottom: float, low: float, high: float,
               ticks: int = 4, suffix: str = "") -> list[str]:
    parts = []
    for index in range(ticks + 1):
        value = low + (high - low) * index / ticks
        y = bottom - (bottom - top) * index / ticks
        parts.append(f'<line class="chart-grid" x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="chart-axis" x="{left - 6:.1f}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_short_number(value)}{suffix}</text>')
    return parts


def _tip(x: float, y: float, lines: list[str], left: float, right: float) -> str:
    """The full label and exact values, shown while the mark is hovered or focused (CSS)."""
    longest = max((len(line) for line in lines), default=0) * 7.6 + 16
    width = min(longest, right - left)
    x = min(max(x - width / 2, left), right - width)
    height = 20 * len(lines) + 8
    text = "".join(f'<tspan x="{x + 8:.1f}" dy="{20 if index else 18}">{escape(line)}</tspan>'
                   for index, line in enumerate(lines))
    return (f'<g class="chart-tip" aria-hidden="true"><rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" rx="6"/><text x="{x + 8:.1f}" y="{y:.1f}">{text}</text></g>')


def _both(draw) -> Markup:
    return Markup("".join(draw(*variant) for variant in VARIANTS))


def grouped_bar_chart(labels: Sequence[str], series: Sequence[Series], title: str, height: int = 300) -> Markup:
    """Vertical bars, one group per label (e.g. revenue vs spend per channel)."""

    def draw(variant, width, _most_labels, characters):
        left, right = 56, width - 10
        top = 14 + _legend_height(series, width, left) + 8
        bottom = height - 64
        maximum = _nice_ceiling(max((float(v or 0) for s in series for v in s.values), default=0))
        parts = _open(width, height, title, variant) + _legend(series, left, 20, width)
        parts += _gridlines(left, right, top, bottom, 0, maximum)
        if not labels:
            parts.append(f'<text class="chart-empty" x="{width / 2:.1f}" y="{(top + bottom) / 2:.1f}" '
                         f'text-anchor="middle">{escape(_("No data for this period"))}</text>')
        group_width = (right - left) / max(len(labels), 1)
        bar_width = min(28.0, group_width * 0.8 / max(len(series), 1))
        for index, label in enumerate(labels):
            group_left = left + index * group_width + (group_width - bar_width * len(series)) / 2
            center = left + index * group_width + group_width / 2
            lines = [label] + [f"{item.name}: {_exact(item.values[index], item.kind)}" for item in series]
            parts.append(f'<g class="chart-mark" tabindex="0" aria-label="{escape(" · ".join(lines))}">'
                         f'<title>{escape(" · ".join(lines))}</title>'
                         f'<rect class="chart-hit" x="{left + index * group_width:.1f}" y="{top:.1f}" '
                         f'width="{group_width:.1f}" height="{bottom - top:.1f}"/>')
            for position, item in enumerate(series):
                value = float(item.values[index] or 0)
                bar_height = (bottom - top) * value / maximum
                x = group_left + position * bar_width
                parts.append(f'<rect class="chart-bar" x="{x:.1f}" y="{bottom - bar_height:.1f}" '
                             f'width="{max(bar_width - 2, 1):.1f}" height="{bar_height:.1f}" fill="{item.color}"/>')
            parts.append(_tip(center, top, lines, left, right) + "</g>")
            text = label if len(label) <= characters else label[:characters - 1] + "…"
            parts.append(f'<text class="chart-axis" x="{center:.1f}" y="{bottom + 16:.1f}" text-anchor="end" '
                         f'transform="rotate(-35 {center:.1f} {bottom + 16:.1f})">{escape(text)}</text>')
        parts.append("</svg>")
        return "".join(parts)

    return _both(draw)


def line_chart(labels: Sequence[str], series: Sequence[Series], title: str, height: int = 260,
               suffix: str = "") -> Markup:
    """Lines over time (e.g. leads and won deals per day). Values may be negative (ROI) or missing (None: a gap).
    Each point of time is one focusable mark with every series' exact value."""

    def draw(variant, width, most_labels, _characters):
        values = [float(v) for s in series for v in s.values if v is not None]
        high = _nice_ceiling(max(values, default=0))
        low = -_nice_ceiling(-min(values)) if values and min(values) < 0 else 0.0
        left, right = max(60, _axis_room(low, high, suffix)), width - 12
        top = 14 + _legend_height(series, width, left) + 8
        bottom = height - 30
        parts = _open(width, height, title, variant) + _legend(series, left, 20, width)
        parts += _gridlines(left, right, top, bottom, low, high, suffix=suffix)
        count = len(labels)
        step = (right - left) / max(count - 1, 1)

        def y_of(value: float) -> float:
            return bottom - (bottom - top) * (value - low) / (high - low)

        if low < 0:
            parts.append(f'<line class="chart-zero" x1="{left:.1f}" x2="{right:.1f}" y1="{y_of(0):.1f}" '
                         f'y2="{y_of(0):.1f}"/>')
        for item in series:
            runs, run = [], []
            for index, value in enumerate(item.values):
                if value is None:
                    runs, run = runs + [run] if run else runs, []
                else:
                    run.append(f"{left + index * step:.1f},{y_of(float(value)):.1f}")
            runs += [run] if run else []
            for points in runs:
                if len(points) == 1:
                    x, y = points[0].split(",")
                    parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{item.color}"/>')
                else:
                    parts.append(f'<polyline class="chart-line" fill="none" stroke="{item.color}" stroke-width="2" '
                                 f'points="{" ".join(points)}"/>')
        for index, label in enumerate(labels):
            x = left + index * step
            lines = [label] + [f"{item.name}: {_exact(item.values[index], item.kind)}" for item in series]
            width_hit = step if count > 1 else right - left
            dots = "".join(f'<circle class="chart-dot" cx="{x:.1f}" cy="{y_of(float(item.values[index])):.1f}" '
                           f'r="4" fill="{item.color}"/>' for item in series if item.values[index] is not None)
            parts.append(f'<g class="chart-mark" tabindex="0" aria-label="{escape(" · ".join(lines))}">'
                         f'<title>{escape(" · ".join(lines))}</title>'
                         f'<rect class="chart-hit" x="{x - width_hit / 2:.1f}" y="{top:.1f}" width="{width_hit:.1f}" '
                         f'height="{bottom - top:.1f}"/>{dots}{_tip(x, top, lines, left, right)}</g>')
        every = max(1, -(-count // most_labels))
        for index in range(0, count, every):
            anchor = "start" if index == 0 and count > 1 else "middle"
            parts.append(f'<text class="chart-axis" x="{left + index * step:.1f}" y="{bottom + 20:.1f}" '
                         f'text-anchor="{anchor}">{escape(labels[index])}</text>')
        parts.append("</svg>")
        return "".join(parts)

    return _both(draw)


def _bucket_labels(series_points, bucket: str) -> list[str]:
    date_format = "LLL y" if bucket == "month" else "d MMM"
    return [format_date(point.start, date_format) for point in series_points]


def roi_charts(report, currency: str) -> dict[str, Markup]:
    """The ROI page's two charts: revenue vs spend per row (top 12), leads and won deals over time."""
    top = report.rows[:12]
    bars = [Series(_("Revenue, %(currency)s", currency=currency), [row.figures.revenue for row in top],
                   PALETTE[0], "money")]
    if report.query.spend_comparable:
        bars.append(Series(_("Spend, %(currency)s", currency=currency), [row.figures.spend for row in top],
                           PALETTE[1], "money"))
    channels = grouped_bar_chart(
        [group_label(row.full_label if report.query.view == "flat" else row.label) for row in top], bars,
        {"source": _("Revenue vs spend by source"), "medium": _("Revenue vs spend by medium"),
         "campaign": _("Revenue vs spend by campaign"), "content": _("Revenue by content"),
         "term": _("Revenue by term"), "landing_path": _("Revenue by landing page"),
         "referrer_domain": _("Revenue by referrer domain")}[report.query.level])
    over_time = line_chart(
        _bucket_labels(report.series, report.bucket),
        [Series(_("Leads"), [point.leads for point in report.series], PALETTE[0]),
         Series(_("Won deals"), [point.won for point in report.series], PALETTE[2])],
        {"day": _("Leads and won deals per day"), "week": _("Leads and won deals per week"),
         "month": _("Leads and won deals per month")}[report.bucket])
    return {"channels": channels, "over_time": over_time}


def money_charts(series_points, bucket: str, currency: str) -> dict[str, Markup]:
    """The dashboard's charts over time: revenue and spend, and ROI (from the same buckets as its table)."""
    labels = _bucket_labels(series_points, bucket)
    per = {"day": _("per day"), "week": _("per week"), "month": _("per month")}[bucket]
    money = line_chart(labels, [
        Series(_("Revenue, %(currency)s", currency=currency), [point.revenue for point in series_points],
               PALETTE[0], "money"),
        Series(_("Spend, %(currency)s", currency=currency), [point.spend for point in series_points],
               PALETTE[1], "money")], _("Revenue and ad spend %(per)s", per=per), height=260)
    roi = line_chart(labels, [Series("ROI", [point.roi for point in series_points], PALETTE[2], "percent")],
                     _("ROI %(per)s (no spend: no point)", per=per), height=220, suffix=" %")
    counts = line_chart(labels, [
        Series(_("Leads"), [point.leads for point in series_points], PALETTE[0]),
        Series(_("Won deals"), [point.won for point in series_points], PALETTE[3])],
        _("Leads and won deals %(per)s", per=per), height=220)
    return {"money": money, "roi": roi, "counts": counts}
