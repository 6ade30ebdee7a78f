"""The 舆情专报 of an event as a download of the 事件详情 page (plain logic; the content is :mod:`alerts.brief`).

Every role may take one (it is written for the leaders, masked for everyone by the privacy patterns); press
officers and admins also submit it (呈报): mailed to ``reports.brief`` of ``alerts.yaml`` (:mod:`alerts.brief_send`).
Without a Chinese font the 专报 is made without its trend chart and says so, rather than not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from alerts.brief import BriefContext, EventBrief, load_brief
from alerts.brief_render import filename, render_docx, render_html, trend_chart
from alerts.brief_send import Submitted, submit_brief
from alerts.chart import FontMissingError
from dashboard.auth import Viewer
from dashboard.data import Backend, DashboardError, es_errors
from dashboard.tracking import can_act, operator
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


def _brief(backend: Backend, event_id: str, now: datetime) -> EventBrief:
    settings = backend.settings
    try:
        ctx = BriefContext.load(settings)
        with es_errors(backend):
            return load_brief(backend.client, settings.elasticsearch.index_prefix, event_id, ctx, now)
    except DashboardError:
        raise
    except YuqingError as exc:  # a malformed configuration file, an unknown or merged event
        raise DashboardError(f"无法生成舆情专报：{exc}") from exc


def _chart(backend: Backend, brief: EventBrief) -> tuple[bytes | None, str | None]:
    """The trend chart, or None and why not (no Chinese font)."""
    try:
        return trend_chart(brief, font=backend.settings.alerts.cjk_font), None
    except FontMissingError as exc:
        log.warning("舆情专报 of event %s made without its chart: %s", brief.event.event_id, exc)
        return None, NO_FONT_NOTE


def brief_file(backend: Backend, event_id: str, fmt: BriefFormat, now: datetime) -> BriefFile:
    """The 专报 of ``event_id`` as of ``now``; a failure is a :class:`DashboardError` in Chinese."""
    brief = _brief(backend, event_id, now)
    chart, note = _chart(backend, brief)
    data = render_docx(brief, chart_png=chart) if fmt == "docx" else render_html(brief, chart_png=chart).encode()
    return BriefFile(data, filename(brief, f".{fmt}"), MEDIA_TYPES[fmt], brief.heading, note)


def can_submit(viewer: Viewer | None) -> bool:
    """Press officers and admins submit (呈报) a 专报, as they act on tickets."""
    return can_act(viewer)


def submit(backend: Backend, event_id: str, viewer: Viewer, now: datetime) -> Submitted:
    """Mail the 专报 of ``event_id`` to the leaders through the outbox, in the viewer's name."""
    brief = _brief(backend, event_id, now)
    chart, _ = _chart(backend, brief)
    try:
        with es_errors(backend):
            return submit_brief(backend.client, backend.settings, brief, by=operator(viewer), chart_png=chart)
    except DashboardError:
        raise
    except YuqingError as exc:  # nobody configured to receive it, a malformed rules file
        raise DashboardError(f"无法呈报：{exc}") from exc
