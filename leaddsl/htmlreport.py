"""An outcome report as one self-contained HTML page: an OutcomeReport in, text out.

The charts are inline SVG drawn here (conversion by segment with its interval, conversion by
score quintile, the calibration curve of the score's predicted P(won) against the share won,
the lift of each rule), so the page needs no library, no network and no script: it can be
mailed, attached to a pull request or opened from disk.
Every text from the data is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from .report import OutcomeReport, Rate, Report

__all__ = ["html_report"]

_FLAG_COLOURS = {"overrated": "#c33", "underrated": "#2a9d5b", "negative but converts": "#e08a00"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:980px;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em}td,th{padding:2px 8px;text-align:left}
tr:nth-child(even){background:#f4f4f4}.flag{color:#b00;font-weight:bold}
svg text{font-size:11px;font-family:system-ui,sans-serif}
"""


def html_report(made: OutcomeReport, title: str = "leaddsl report") -> str:
    """The whole page: a section for contacts and one for accounts, where there are outcomes."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Outcome report: {escape(title)}</h1>",
        "<p>Each contact and account is scored as of just before its outcome. Rates are won / "
        "(won + lost) with 95% Wilson intervals; lift is a rate divided by the base rate.</p>",
    ]
    for rep in (made.contacts, made.accounts):
        if rep is not None:
            parts.append(_section(rep))
    if made.contacts is None and made.accounts is None:
        parts.append("<p>No outcomes to report on.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _section(rep: Report) -> str:
    q = rep.qualification
    out = [
        f"<h2>{escape(rep.subject.capitalize())}s</h2>",
        f"<p>{rep.won} won, {rep.lost} lost, {rep.open} open; base rate {_pct(rep.base_rate)}; "
        f"AUC of the score {'-' if rep.auc is None else f'{rep.auc:.3f}'}. Qualified: "
        f"precision {_pct(q.precision)}, recall {_pct(q.recall)}.</p>",
    ]
    dims: dict[str, list[Rate]] = {}
    for s in rep.segments:
        dims.setdefault(s.dimension, []).append(s)
    for dim, rates in dims.items():
        out.append(f"<h3>Conversion by {escape(dim)}</h3>")
        out.append(_bars(rates, rep.base_rate))
    out.append("<h3>Conversion by score quintile</h3>")
    out.append(_bars(list(rep.by_score), rep.base_rate))
    if rep.calibration:
        out.append(
            "<h3>Calibration: predicted against observed P(won)</h3>"
            f"<p>Each point is one {'tenth' if len(rep.calibration) > 5 else 'fifth'} of the "
            "cases by score: across, the chance of winning a "
            "logistic fit of outcome on score predicts for them (each case from a fit on the "
            "other folds); up, the share that was won, with its 95% interval. A well calibrated "
            "score keeps to the diagonal; mean gap "
            f"{_pct(rep.calibration_error)}.</p>"
        )
        out.append(_calibration_chart(rep))
    out.append("<h3>Lift of each rule (conversion when it fired / base rate)</h3>")
    out.append(_lift_chart(rep))
    out.append(
        "<table><tr><th>line</th><th>rule</th><th>fired, won</th><th>fired, lost</th>"
        "<th>rate</th><th>lift</th><th>points per hit</th><th>mean points given</th>"
        "<th>flag</th></tr>"
    )
    for r in rep.rules:
        out.append(
            f"<tr><td>{r.line}</td><td>{escape(r.rule)}</td><td>{r.share_won:.0%}</td>"
            f"<td>{r.share_lost:.0%}</td><td>{_pct(r.rate.rate)}</td>"
            f"<td>{'-' if r.rate.lift is None else f'{r.rate.lift:.2f}'}</td>"
            f"<td>{'-' if r.points is None else f'{r.points:g}'}</td>"
            f"<td>{r.mean_points:.1f}</td><td class=flag>{escape(r.flag or '')}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)


def _bars(rates: Sequence[Rate], base: float | None) -> str:
    """Horizontal bars of conversion rates with interval whiskers and the base rate line."""
    row, left, width = 20, 170, 520
    height = row * len(rates) + 24
    svg = [f'<svg width="{left + width + 80}" height="{height}" role="img">']
    for i, s in enumerate(rates):
        y = 4 + i * row
        w = width * (s.rate or 0.0)
        svg.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">'
                   f"{escape(_clip(s.value))} ({s.cases})</text>")
        svg.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" '
                   'fill="#4a7ab8"/>')
        svg.append(f'<line x1="{left + width * s.low:.1f}" x2="{left + width * s.high:.1f}" '
                   f'y1="{y + row / 2}" y2="{y + row / 2}" stroke="#222"/>')
        svg.append(f'<text x="{left + width * s.high + 4:.1f}" y="{y + 13}">{_pct(s.rate)}</text>')
    if base is not None:
        x = left + width * base
        svg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 16}" '
                   'stroke="#c33" stroke-dasharray="4 3"/>')
        svg.append(f'<text x="{x:.1f}" y="{height - 4}" text-anchor="middle" fill="#c33">'
                   f"base {_pct(base)}</text>")
    svg.append("</svg>")
    return "".join(svg)


def _calibration_chart(rep: Report) -> str:
    """Predicted (across) against observed (up) P(won) per bin, whiskers, and the diagonal."""
    size, pad = 300, 40
    top = max(0.1, *(max(b.high, b.predicted) for b in rep.calibration))
    top = min(1.0, round(top + 0.05, 1))

    def x(p: float) -> float:
        return pad + size * p / top

    def y(p: float) -> float:
        return pad / 2 + size * (1 - p / top)

    svg = [f'<svg width="{size + 2 * pad}" height="{size + 2 * pad}" role="img">',
           f'<rect x="{pad}" y="{pad / 2}" width="{size}" height="{size}" fill="none" '
           'stroke="#999"/>',
           f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top):.1f}" y2="{y(top):.1f}" '
           'stroke="#c33" stroke-dasharray="4 3"/>']
    for k in range(0, 6):
        p = top * k / 5
        svg.append(f'<text x="{x(p):.1f}" y="{pad / 2 + size + 14}" text-anchor="middle">'
                   f"{p:.0%}</text>")
        svg.append(f'<text x="{pad - 4}" y="{y(p) + 4:.1f}" text-anchor="end">{p:.0%}</text>')
    svg.append(f'<text x="{pad + size / 2}" y="{size + 2 * pad - 4}" text-anchor="middle">'
               "predicted</text>")
    for b in rep.calibration:
        svg.append(f'<line x1="{x(b.predicted):.1f}" x2="{x(b.predicted):.1f}" '
                   f'y1="{y(b.low):.1f}" y2="{y(b.high):.1f}" stroke="#222"/>')
        svg.append(f'<circle cx="{x(b.predicted):.1f}" cy="{y(b.observed):.1f}" r="4" '
                   f'fill="#4a7ab8"><title>scores {b.score_low:g} to {b.score_high:g}: '
                   f"predicted {_pct(b.predicted)}, observed {_pct(b.observed)} "
                   f"({b.won} of {b.cases})</title></circle>")
    svg.append(f'<text x="{pad + 4}" y="{pad / 2 + 12}">observed</text></svg>')
    return "".join(svg)


def _lift_chart(rep: Report) -> str:
    """Bars of each rule's lift around 1 (no better than average), coloured by their flag."""
    rules = [r for r in rep.rules if r.rate.lift is not None]
    if not rules:
        return "<p>No rule fired for a decided case.</p>"
    row, left, width = 20, 400, 380
    top = max(2.0, *(r.rate.lift or 0.0 for r in rules))
    height = row * len(rules) + 40
    svg = [f'<svg width="{left + width + 60}" height="{height}" role="img">']
    for i, r in enumerate(rules):
        y = 4 + i * row
        lift = r.rate.lift or 0.0
        colour = _FLAG_COLOURS.get(r.flag or "", "#4a7ab8")
        svg.append(f'<text x="{left - 6}" y="{y + 13}" text-anchor="end">'
                   f"{escape(_clip(f'line {r.line}: {r.rule}', 60))}</text>")
        svg.append(f'<rect x="{left}" y="{y + 3}" width="{width * lift / top:.1f}" '
                   f'height="{row - 6}" fill="{colour}"/>')
        svg.append(f'<text x="{left + width * lift / top + 4:.1f}" y="{y + 13}">{lift:.2f}</text>')
    x = left + width / top
    svg.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 32}" stroke="#222" '
               'stroke-dasharray="4 3"/>')
    svg.append(f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle">lift 1</text>')
    legend = "  ".join(f'<tspan fill="{c}">■ {flag}</tspan>' for flag, c in _FLAG_COLOURS.items())
    svg.append(f'<text x="{left}" y="{height - 4}">{legend}</text></svg>')
    return "".join(svg)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.1%}"


def _clip(text: str, width: int = 26) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
