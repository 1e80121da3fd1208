"""Inline SVG charts (no JavaScript, no CDN): used by the dashboard and the HTML report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000):
        if v <= step:
            return float(step)
    return float(v)


def stacked_bars(
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    *,
    width: int = 720,
    height: int = 220,
    title: str = "",
) -> str:
    """Stacked columns, one per label, one colour per series, with a legend."""
    n = max(len(labels), 1)
    pad_l, pad_b, pad_t = 40, 28, 20
    plot_w, plot_h = width - pad_l - 10, height - pad_b - pad_t
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    bw = plot_w / n
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">'
    ]
    if title:
        parts.append(f"<title>{escape(title)}</title>")
    for frac in (0, 0.5, 1):
        y = pad_t + plot_h * (1 - frac)
        parts.append(f'<line x1="{pad_l}" y1="{y:.1f}" x2="{width - 10}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10" fill="#6b7280">'
            f"{int(top * frac)}</text>"
        )
    for i, label in enumerate(labels):
        y = pad_t + plot_h
        for j, (name, values) in enumerate(series.items()):
            v = values[i] if i < len(values) else 0
            if v <= 0:
                continue
            h = plot_h * v / top
            y -= h
            parts.append(
                f'<rect x="{pad_l + i * bw + 1:.1f}" y="{y:.1f}" width="{max(bw - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}">'
                f"<title>{escape(name)} {escape(label)}: {v}</title></rect>"
            )
    step = max(1, n // 8)
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{pad_l + (i + 0.5) * bw:.1f}" y="{height - 12}" text-anchor="middle" font-size="10" '
            f'fill="#6b7280">{escape(labels[i][5:])}</text>'
        )
    x = pad_l
    for j, name in enumerate(series):
        parts.append(
            f'<rect x="{x}" y="4" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="13" font-size="11">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


def share_bar(shares: Mapping[str, float], *, width: int = 720, height: int = 36) -> str:
    """One horizontal bar split by shares (0..1), labelled with percentages."""
    parts = [
        f'<svg class="chart" role="img" aria-label="shares" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg">'
    ]
    x = 0.0
    for j, (name, share) in enumerate(shares.items()):
        w = width * share
        if w <= 0:
            continue
        parts.append(
            f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{PALETTE[j % len(PALETTE)]}">'
            f"<title>{escape(name)}: {share:.0%}</title></rect>"
        )
        if w > 60:
            parts.append(
                f'<text x="{x + 6:.1f}" y="{height / 2 + 4:.1f}" font-size="12" fill="#fff">'
                f"{escape(name)} {share:.0%}</text>"
            )
        x += w
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: Sequence[int], *, width: int = 160, height: int = 32, mark_from: int | None = None
) -> str:
    """A small line; points from ``mark_from`` on are drawn red (the spike)."""
    if not values:
        return ""
    top = max(*values, 1)
    n = max(len(values) - 1, 1)
    pts = [(width * i / n, height - 2 - (height - 4) * v / top) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    out = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><polyline fill="none" stroke="#2563eb" stroke-width="1.5" '
        f'points="{path}"/>'
    ]
    if mark_from is not None and 0 <= mark_from < len(pts):
        seg = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts[max(mark_from - 1, 0) :])
        out.append(f'<polyline fill="none" stroke="#dc2626" stroke-width="2" points="{seg}"/>')
    out.append("</svg>")
    return "".join(out)
