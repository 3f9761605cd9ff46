"""Small inline SVG charts for reports: no JavaScript, no network, readable when printed or emailed.

Every text is escaped; every chart has a <title> and a <desc> for screen readers and a table next to it in the
report carries the same numbers.
"""

import html
import math

WIDTH, HEIGHT = 460, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 28, 44


def _nice_max(value):
    if not value or value != value or value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _fmt(v):
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}".rstrip("0").rstrip(".")


def _frame(title, desc, x_label, y_label, y_max):
    e = html.escape
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'class="chart" width="{WIDTH}" height="{HEIGHT}">',
             f"<title>{e(title)}</title><desc>{e(desc)}</desc>",
             f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{e(title)}</text>']
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{_fmt(v)}</text>')
    parts.append(f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 6}" text-anchor="middle" '
                 f'font-size="11">{e(x_label)}</text>')
    parts.append(f'<text transform="translate(12 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle" '
                 f'font-size="11">{e(y_label)}</text>')
    return parts


def bars(title, labels, values, *, x_label, y_label, color="#3d6b8c", highlight=(), y_max=None):
    """A bar chart; ``None`` values draw no bar and say "no data". ``y_max``: a fixed top (e.g. 100 for shares)."""
    finite = [v for v in values if v is not None and v == v]
    y_max = y_max or _nice_max(max(finite) if finite else 0)
    desc = "; ".join(f"{lab}: {'no data' if v is None or v != v else _fmt(v)}" for lab, v in zip(labels, values))
    parts = _frame(title, desc, x_label, y_label, y_max)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    for i, (lab, v) in enumerate(zip(labels, values)):
        x = LEFT + i * step
        parts.append(f'<text x="{x + step / 2:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" '
                     f'font-size="10">{html.escape(str(lab))}</text>')
        if v is None or v != v:
            continue
        h = plot_h * v / y_max
        fill = "#c85a5a" if lab in highlight else color
        parts.append(f'<rect x="{x + step * 0.15:.1f}" y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" '
                     f'height="{h:.1f}" fill="{fill}"><title>{html.escape(str(lab))}: {_fmt(v)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(title, points, *, x_label, y_label, x_max=None):
    """Points (x, y, colour, label); x from 0 to x_max, y from 0 up."""
    xs = [p[0] for p in points if p[0] == p[0] and p[1] == p[1]]
    ys = [p[1] for p in points if p[0] == p[0] and p[1] == p[1]]
    x_max = _nice_max(x_max or (max(xs) if xs else 0))
    y_max = _nice_max(max(ys) if ys else 0)
    desc = f"{len(xs)} areas; {x_label} against {y_label}."
    parts = _frame(title, desc, x_label, y_label, y_max)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for i in range(5):
        v = x_max * i / 4
        x = LEFT + plot_w * i / 4
        parts.append(f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" text-anchor="middle" font-size="10">'
                     f"{_fmt(v)}</text>")
    for x, y, color, label in points:
        if x != x or y != y:
            continue
        cx = LEFT + plot_w * min(x / x_max, 1)
        cy = TOP + plot_h - plot_h * min(y / y_max, 1)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3" fill="{html.escape(color)}" fill-opacity="0.85" '
                     f'stroke="#333" stroke-width="0.3"><title>{html.escape(label)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
