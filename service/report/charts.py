"""The report's charts: matplotlib drawn to SVG on the server, inlined in the HTML.

No pyplot (no global figure state; safe in the service's threads): each chart is a
:class:`matplotlib.figure.Figure` saved as SVG with its text kept as text
(``svg.fonttype = none``), so the browser and WeasyPrint set it in the page's Chinese font
(WenQuanYi Micro Hei, as scripts/chromium.sh installs) and it stays selectable. matplotlib
escapes every label it writes into the SVG.
"""

from __future__ import annotations

import io
import re
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from matplotlib.figure import Figure

RC = {
    "svg.fonttype": "none",
    "svg.hashsalt": "riskmap-report",  # the same figures give the same SVG
    "font.family": "sans-serif",
    "font.sans-serif": ["WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC",
                        "DejaVu Sans"],
    "font.size": 9,
    "axes.unicode_minus": False,
    "text.parse_math": False,  # a "$" in a name is a dollar sign, not mathtext
    "axes.spines.top": False,
    "axes.spines.right": False,
}
COLOURS = {"red": "#d7191c", "orange": "#fdae61", "yellow": "#ffe066", "blue": "#74add1",
           "grey": "#bdbdbd", "line": "#2b6cb0"}


_ID = re.compile(r'(\bid="|url\(#|href="#)([^"()]+)')


@contextmanager
def _figure(width: float, height: float) -> Iterator[Figure]:
    """A new figure under the report's settings (matplotlib is imported on first use, so
    the app and the CLI start without it)."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        yield Figure(figsize=(width, height))


def _svg(fig: Figure, prefix: str) -> str:
    """The figure as SVG to inline: no XML declaration or doctype, and its ids (and the
    references to them) prefixed, so several charts in one page keep distinct ids."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    return _ID.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)


def category_levels(rows: list[dict]) -> str | None:
    """In-use equipment per category: red, orange and the rest, as stacked bars."""
    if not rows:
        return None
    with _figure(6.4, 0.32 * len(rows) + 1.0) as fig:
        rows = list(reversed(rows))
        names = [r["name"] for r in rows]
        red = [r["red"] for r in rows]
        orange = [r["orange"] for r in rows]
        rest = [r["n"] - r["red"] - r["orange"] for r in rows]
        ax = fig.add_subplot()
        ax.barh(names, red, color=COLOURS["red"], label="重大风险")
        ax.barh(names, orange, left=red, color=COLOURS["orange"], label="较大风险")
        ax.barh(names, rest, left=[a + b for a, b in zip(red, orange, strict=True)],
                color=COLOURS["blue"], label="一般及低风险")
        ax.set_xlabel("在用设备（台）")
        ax.legend(loc="lower right", frameon=False, ncols=3, bbox_to_anchor=(1, 1))
        return _svg(fig, "levels")


def child_overdue(rows: list[dict], child_name: str) -> str | None:
    """The overdue rate of each child region listed (highest first)."""
    shown = [r for r in rows if r.get("overdue_rate") is not None]
    if not shown:
        return None
    with _figure(6.4, 0.32 * len(shown) + 1.0) as fig:
        shown = list(reversed(shown))
        ax = fig.add_subplot()
        ax.barh([r["name"] for r in shown], [100 * r["overdue_rate"] for r in shown],
                color=COLOURS["orange"])
        ax.set_xlabel(f"各{child_name}逾期未检率（%）")
        return _svg(fig, "children")


def monthly(checks: list[int], found: list[int], closed: list[int], year: int) -> str:
    """Checks, hazards found and hazards closed in each month of the year."""
    with _figure(6.4, 2.6) as fig:
        ax = fig.add_subplot()
        months = list(range(1, 13))
        ax.bar([m - 0.2 for m in months], found, width=0.4, color=COLOURS["orange"],
               label="发现隐患")
        ax.bar([m + 0.2 for m in months], closed, width=0.4, color=COLOURS["blue"],
               label="隐患销号")
        ax.set_xticks(months, [f"{m}月" for m in months])
        ax.set_ylabel("隐患（项）")
        twin = ax.twinx()
        twin.plot(months, checks, color=COLOURS["line"], marker="o", label="监督检查")
        twin.set_ylabel("监督检查（次）")
        twin.spines["top"].set_visible(False)
        handles = ax.get_legend_handles_labels()
        more = twin.get_legend_handles_labels()
        ax.legend(handles[0] + more[0], handles[1] + more[1], frameon=False, ncols=3,
                  loc="lower right", bbox_to_anchor=(1, 1))
        ax.set_title(f"{year}年各月", loc="left")
        return _svg(fig, "monthly")
