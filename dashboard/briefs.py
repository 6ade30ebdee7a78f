"""The 舆情专报 of an event as a download of the 事件详情 page (plain logic; the content is :mod:`alerts.brief`).

Every role may take one (it is written for the leaders, masked for everyone by the privacy patterns). Without a
Chinese font the 专报 is made without its trend chart and says so, rather than not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alerts.brief import BriefContext, load_brief
from alerts.brief_render import filename, render_docx, render_html, trend_chart
from alerts.chart import FontMissingError
from dashboard.data import Backend, DashboardError, es_errors
from yuqing.errors import YuqingError

log = logging.getLogger(__name__)

BriefFormat = Literal["docx", "html"]
FORMATS: tuple[BriefFormat, ...] = ("docx", "html")
FORMAT_LABELS: dict[str, str] = {"docx": "Word 文档", "html": "网页（HTML）"}
MEDIA_TYPES: dict[str, str] = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "html": "text/html",
}
NO_FONT_NOTE = "未找到中文字体（fonts-noto-cjk），本专报未附走势图；请管理员安装字体。"


@dataclass(frozen=True)
class BriefFile:
    data: bytes
    file_name: str
    mime: str
    heading: str
    note: str | None = None  # what the file lacks, for the officer


def brief_file(backend: Backend, event_id: str, fmt: BriefFormat, now: datetime) -> BriefFile:
    """The 专报 of ``event_id`` as of ``now``; a failure is a :class:`DashboardError` in Chinese."""
    settings = backend.settings
    try:
        ctx = BriefContext.load(settings)
        with es_errors(backend):
            brief = load_brief(backend.client, settings.elasticsearch.index_prefix, event_id, ctx, now)
    except DashboardError:
        raise
    except YuqingError as exc:  # a malformed configuration file, an unknown or merged event
        raise DashboardError(f"无法生成舆情专报：{exc}") from exc
    note = None
    try:
        chart = trend_chart(brief, font=settings.alerts.cjk_font)
    except FontMissingError as exc:
        log.warning("舆情专报 of event %s made without its chart: %s", event_id, exc)
        chart, note = None, NO_FONT_NOTE
    data = render_docx(brief, chart_png=chart) if fmt == "docx" else render_html(brief, chart_png=chart).encode()
    return BriefFile(data, filename(brief, f".{fmt}"), MEDIA_TYPES[fmt], brief.heading, note)
