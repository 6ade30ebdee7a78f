"""CSV and Excel downloads of a search result for the dashboard: the whole result (up to
``dashboard.export_max_rows``), masked as the viewer's role requires.

The 检索 page hands :func:`export_download` to ``st.download_button`` (``data=`` accepts a callable, so nothing is
exported until the button is pressed) and shows :func:`export_summary` of the stats.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from dashboard.auth import Viewer, mask_for, mask_post
from dashboard.data import Backend, es_errors
from index.export import MEDIA_TYPES, ExportFormat, ExportStats, export_posts
from index.search import PostQuery
from yuqing.models import Post

SPOOL_IN_MEMORY_BYTES = 32 * 1024 * 1024  # larger exports spill to a temporary file while being written


@dataclass(frozen=True)
class Download:
    data: bytes
    file_name: str
    mime: str
    stats: ExportStats


def export_download(backend: Backend, query: PostQuery, fmt: ExportFormat, viewer: Viewer | None,
                    now: datetime) -> Download:
    """The file for ``query``'s whole result (not only the page shown). Raises ``DashboardError`` on ES failure."""
    settings = backend.settings
    mask = mask_for(viewer, backend.redactor.redact)

    def transform(post: Post) -> Post:
        return mask_post(post, mask) if mask is not None else post

    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as buf, es_errors(backend):
        stats = export_posts(backend.client, backend.posts_alias, replace(query, offset=0), buf, fmt,
                             tz=settings.timezone, max_rows=settings.dashboard.export_max_rows, transform=transform)
        buf.seek(0)
        data = buf.read()
    stamp = now.astimezone(ZoneInfo(settings.timezone)).strftime("%Y%m%d-%H%M")
    return Download(data=data, file_name=f"yuqing-{stamp}.{fmt}", mime=MEDIA_TYPES[fmt], stats=stats)


def export_summary(stats: ExportStats, max_rows: int) -> str:
    """What the file holds, in Chinese: rows, the cap when it cut the result, documents skipped."""
    text = f"已导出 {stats.rows} 条"
    if stats.truncated:
        text += f"（共 {stats.matched} 条符合条件，超出导出上限 {max_rows} 条的部分未导出）"
    if stats.unreadable:
        text += f"；{len(stats.unreadable)} 条记录格式无法识别，已跳过"
    return text + "。"
