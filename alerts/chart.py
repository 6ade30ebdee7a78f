"""Trend charts for alert mails and reports: PNG images drawn with matplotlib (Agg), Chinese labels in a CJK font.

The font is Noto Sans CJK from Debian's ``fonts-noto-cjk`` (installed by ``scripts/bootstrap.sh``), found
through fontconfig (``fc-list :lang=zh``) or at the Debian path. Without one, :func:`cjk_font` raises
:class:`FontMissingError` — call it at start-up so a missing font stops the service with a clear message, not
a mail full of tofu boxes. A chart whose text needs a glyph the font lacks raises the same error.
"""

from __future__ import annotations

import functools
import io
import logging
import shutil
import subprocess
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.content import TimelinePoint
from yuqing.errors import YuqingError

log = logging.getLogger(__name__)

DEBIAN_CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
PREFERRED_FAMILY = "Noto Sans CJK"
MAX_HOURS = 72
TOTAL_COLOUR = "#90a4ae"
NEGATIVE_COLOUR = "#c62828"


class FontMissingError(YuqingError):
    """No font that can draw Chinese text is installed."""


def _fontconfig_candidates() -> list[Path]:
    """Files of fonts fontconfig says cover Chinese, Noto Sans CJK (regular weight) first."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        out = subprocess.run(
            [fc_list, ":lang=zh-cn", "file", "family", "style"], capture_output=True, text=True, timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("fc-list failed, falling back to the Debian font path: %s", exc)
        return []
    ranked: list[tuple[int, str]] = []
    for line in out.splitlines():
        file, _, rest = line.partition(":")
        if not file.strip():
            continue
        rank = 0 if PREFERRED_FAMILY in rest and "Mono" not in rest else 1
        rank = rank * 2 + (0 if "Regular" in rest or "Bold" not in rest else 1)
        ranked.append((rank, file.strip()))
    return [Path(f) for _, f in sorted(set(ranked))]


@functools.cache
def cjk_font(explicit: Path | None = None) -> Path:
    """The font file used for Chinese labels: ``explicit`` when given, else fontconfig's best, else the Debian
    path. Raises FontMissingError naming the package to install."""
    candidates = [explicit] if explicit is not None else [*_fontconfig_candidates(), DEBIAN_CJK_FONT]
    for path in candidates:
        if path.is_file():
            _check_glyphs(path)
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FontMissingError(
        "no Chinese (CJK) font found for the alert charts (tried: "
        f"{tried}); install Debian's fonts-noto-cjk (scripts/bootstrap.sh does)"
    )


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    negative: int = 0


def _check_glyphs(path: Path) -> None:
    """Draw a Chinese probe with the font; a missing glyph raises FontMissingError."""
    _render([Bar("测试", 1, 0)], title="舆情走势", ylabel="信息量", font=path)


def _render(bars: Sequence[Bar], *, title: str, ylabel: str, font: Path, width: float = 6.4,
            height: float = 2.8) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    font_manager.fontManager.addfont(str(font))
    family = font_manager.FontProperties(fname=str(font)).get_name()
    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context(
        {"font.family": [family], "axes.unicode_minus": False}
    ):
        warnings.simplefilter("always")
        fig = Figure(figsize=(width, height), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        xs = list(range(len(bars)))
        ax.bar(xs, [b.total for b in bars], color=TOTAL_COLOUR, label="全部信息")
        ax.bar(xs, [b.negative for b in bars], color=NEGATIVE_COLOUR, label="负面信息")
        step = max(1, len(bars) // 8)
        ax.set_xticks(xs[::step], [b.label for b in bars][::step])
        ax.tick_params(axis="x", labelsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]
    if missing:
        raise FontMissingError(f"the font {font} cannot draw the chart's Chinese text: {missing[0]}")
    return buf.getvalue()


def hourly_bars(timeline: Sequence[TimelinePoint], tz: ZoneInfo, *, hours: int = MAX_HOURS) -> list[Bar]:
    """One bar per hour from the first to the last point (at most the last ``hours``), empty hours as 0."""
    if not timeline:
        return []
    by_hour: dict[datetime, TimelinePoint] = {}
    for point in timeline:
        hour = point.at.astimezone(tz).replace(minute=0, second=0, microsecond=0)
        prev = by_hour.get(hour)
        by_hour[hour] = point if prev is None else TimelinePoint(at=hour, posts=prev.posts + point.posts,
                                                                 negative=prev.negative + point.negative)
    last = max(by_hour)
    first = max(min(by_hour), last - timedelta(hours=hours - 1))
    bars: list[Bar] = []
    at = first
    while at <= last:
        p = by_hour.get(at)
        label = at.strftime("%m-%d %H时") if at.hour == 0 or at == first else at.strftime("%H时")
        bars.append(Bar(label, p.posts if p else 0, p.negative if p else 0))
        at += timedelta(hours=1)
    return bars


def event_trend_png(timeline: Sequence[TimelinePoint], tz: ZoneInfo, *, font: Path | None = None) -> bytes | None:
    """The event's hourly posts (negative ones in red) as a PNG; None without a timeline."""
    bars = hourly_bars(timeline, tz)
    if not bars:
        return None
    return _render(bars, title="事件走势（每小时信息量）", ylabel="条数", font=cjk_font(font))


def daily_bars_png(bars: Sequence[Bar], *, title: str, font: Path | None = None) -> bytes | None:
    """A report's posts per day (negative ones in red) as a PNG; None without bars."""
    if not bars:
        return None
    return _render(bars, title=title, ylabel="条数", font=cjk_font(font))
