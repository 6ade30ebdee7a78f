"""Exporting the whole result of a post query to CSV or Excel, streamed from a point-in-time with ``search_after``.

Not only the page on screen: every matching post up to ``max_rows`` (``dashboard.export_max_rows``), read
``page_size`` at a time from a point-in-time, so the export is one consistent snapshot even while crawls add
posts, and memory stays flat. Columns have Chinese headers. The CSV is UTF-8 with a byte-order mark so Excel opens
Chinese text correctly; the workbook is written with openpyxl's write-only mode.

Post text is untrusted: a cell that Excel would take for a formula (``=``, ``+``, ``-``, ``@`` …) is written as
text (CSV: prefixed with ``'``; workbook: typed as a string), characters XML forbids are dropped, and a cell is cut
at Excel's 32,767 characters. Masking personal data is the caller's: ``transform`` maps each post before it is
written (the dashboard passes the viewer's mask).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from index.hits import read_hits
from index.search import PostQuery, build_query, build_sort
from yuqing.models import KIND_LABELS, SENTIMENT_LABELS, Post

log = logging.getLogger(__name__)

ExportFormat = Literal["csv", "xlsx"]
CellValue = str | int | float | datetime | None

EXPORT_PAGE_SIZE = 1000
PIT_KEEP_ALIVE = "2m"
EXCEL_CELL_MAX = 32_767
UTF8_BOM = "\ufeff".encode()
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SHEET_TITLE = "舆情"

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable[[Post, ZoneInfo], CellValue]


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    # Excel has no time zones: local wall-clock time, seconds kept.
    return value.astimezone(tz).replace(tzinfo=None, microsecond=0) if value is not None else None


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("是" if value else "否")


COLUMNS: tuple[Column, ...] = (
    Column("发布时间", lambda p, tz: _local(p.published_at, tz)),
    Column("标题", lambda p, tz: p.title),
    Column("来源", lambda p, tz: p.source),
    Column("站点", lambda p, tz: p.site or ""),
    Column("类型", lambda p, tz: KIND_LABELS.get(p.kind, p.kind)),
    Column("作者", lambda p, tz: p.author or ""),
    Column("情感倾向", lambda p, tz: SENTIMENT_LABELS.get(p.analysis.sentiment, p.analysis.sentiment)
           if p.analysis else "未分析"),
    Column("是否相关", lambda p, tz: _yes_no(p.analysis.relevant if p.analysis else None)),
    Column("主题", lambda p, tz: (p.analysis.topic or "") if p.analysis else ""),
    Column("关键词", lambda p, tz: "、".join(p.analysis.keywords) if p.analysis else ""),
    Column("正文", lambda p, tz: p.content),
    Column("官方回复", lambda p, tz: p.reply.text if p.reply else ""),
    Column("回复单位", lambda p, tz: (p.reply.unit or "") if p.reply else ""),
    Column("回复时间", lambda p, tz: _local(p.reply.replied_at, tz) if p.reply else None),
    Column("转发数", lambda p, tz: p.engagement.reposts),
    Column("评论数", lambda p, tz: p.engagement.comments),
    Column("点赞数", lambda p, tz: p.engagement.likes),
    Column("阅读数", lambda p, tz: p.engagement.views),
    Column("是否转载", lambda p, tz: _yes_no(p.duplicate_of is not None)),
    Column("链接", lambda p, tz: p.url),
    Column("抓取时间", lambda p, tz: _local(p.fetched_at, tz)),
)
HEADERS: tuple[str, ...] = tuple(c.header for c in COLUMNS)


@dataclass
class ExportStats:
    """What an export wrote: ``rows`` posts of ``matched``; unreadable documents skipped; cut at the cap."""

    matched: int = 0
    rows: int = 0
    unreadable: list[str] = field(default_factory=list)
    truncated: bool = False


def build_export_search(
    q: PostQuery, pit_id: str, size: int, search_after: list[Any] | None = None, *, first: bool = False
) -> dict[str, Any]:
    """One page of an export: the query's filters and order, on a point-in-time, after ``search_after`` (pure).

    ``_shard_doc`` breaks ties so no post is read twice or skipped between pages; the total is counted on the
    first page only.
    """
    body: dict[str, Any] = {
        "query": build_query(q),
        "sort": [*build_sort(q), {"_shard_doc": "asc"}],
        "size": size,
        "pit": {"id": pit_id, "keep_alive": PIT_KEEP_ALIVE},
        "track_total_hits": first,
        "_source": {"excludes": ["title_seg", "content_seg", "hot_terms", "fingerprint_bands"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def iter_posts(
    client: Elasticsearch, alias: str, q: PostQuery, *, max_rows: int, stats: ExportStats,
    page_size: int = EXPORT_PAGE_SIZE,
) -> Iterator[Post]:
    """Every post matching ``q`` in the query's order, at most ``max_rows``, from one point-in-time.

    ``stats`` is filled as pages are read. The point-in-time is closed when the iteration ends or is abandoned.
    """
    pit_id: str = client.open_point_in_time(index=alias, keep_alive=PIT_KEEP_ALIVE)["id"]
    try:
        search_after: list[Any] | None = None
        first = True
        while stats.rows < max_rows:
            size = min(page_size, max_rows - stats.rows)
            resp = client.search(**build_export_search(q, pit_id, size, search_after, first=first))
            pit_id = resp.get("pit_id", pit_id)
            if first:
                stats.matched = int(resp["hits"]["total"]["value"])
                first = False
            hits = resp["hits"]["hits"]
            read = read_hits(hits)
            stats.unreadable.extend(read.unreadable)
            for hit in read.hits:
                stats.rows += 1
                yield hit.post
            if len(hits) < size:
                break
            search_after = hits[-1]["sort"]
        stats.truncated = stats.rows + len(stats.unreadable) < stats.matched
    finally:
        client.close_point_in_time(id=pit_id)


def row_values(post: Post, tz: ZoneInfo) -> list[CellValue]:
    return [c.value(post, tz) for c in COLUMNS]


def csv_cell(value: CellValue) -> str | int | float:
    """A CSV field: times as ``YYYY-MM-DD HH:MM:SS``, text that Excel would evaluate prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def xlsx_text(value: str) -> str:
    """``value`` fit for a workbook cell: characters XML forbids dropped, cut at Excel's cell limit."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > EXCEL_CELL_MAX:
        value = value[: EXCEL_CELL_MAX - 1] + "…"
    return value


def _xlsx_cell(ws: WriteOnlyWorksheet, value: CellValue) -> CellValue | WriteOnlyCell:
    """A plain value where openpyxl types it right (numbers, times, ordinary text); a cell typed as a string
    for text openpyxl would take for a formula or an error code."""
    if not isinstance(value, str):
        return value
    value = xlsx_text(value)
    if value.startswith("=") or value in ERROR_CODES:
        cell = WriteOnlyCell(ws, value=value)
        cell.data_type = "s"  # text, never evaluated
        return cell
    return value


def write_table_csv(headers: Sequence[str], rows: Iterable[Sequence[CellValue]], out: IO[bytes]) -> int:
    """Write a table as CSV (UTF-8 with BOM, ``headers`` first) to ``out``; returns the rows written."""
    out.write(UTF8_BOM)
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    try:
        writer = csv.writer(text)
        writer.writerow(headers)
        n = 0
        for row in rows:
            writer.writerow([csv_cell(v) for v in row])
            n += 1
        text.flush()
        return n
    finally:
        text.detach()  # leave ``out`` open for the caller


def write_table_xlsx(headers: Sequence[str], rows: Iterable[Sequence[CellValue]], out: IO[bytes],
                     sheet: str = SHEET_TITLE) -> int:
    """Write a table as an Excel workbook (one sheet ``sheet``, ``headers`` first) to ``out``; returns the rows."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append([_xlsx_cell(ws, h) for h in headers])
    n = 0
    for row in rows:
        ws.append([_xlsx_cell(ws, v) for v in row])
        n += 1
    wb.save(out)
    return n


def _post_rows(posts: Iterable[Post], tz: str, transform: Callable[[Post], Post] | None) -> Iterator[list[CellValue]]:
    zone = ZoneInfo(tz)
    for post in posts:
        yield row_values(transform(post) if transform else post, zone)


def write_csv(posts: Iterable[Post], out: IO[bytes], tz: str,
              transform: Callable[[Post], Post] | None = None) -> int:
    """Write ``posts`` as CSV (UTF-8 with BOM, header row in Chinese) to ``out``; returns the rows written."""
    return write_table_csv(HEADERS, _post_rows(posts, tz, transform), out)


def write_xlsx(posts: Iterable[Post], out: IO[bytes], tz: str,
               transform: Callable[[Post], Post] | None = None) -> int:
    """Write ``posts`` as an Excel workbook (one sheet, header row in Chinese) to ``out``; returns the rows."""
    return write_table_xlsx(HEADERS, _post_rows(posts, tz, transform), out)


def export_posts(
    client: Elasticsearch, alias: str, q: PostQuery, out: IO[bytes], fmt: ExportFormat, *, tz: str,
    max_rows: int, transform: Callable[[Post], Post] | None = None, page_size: int = EXPORT_PAGE_SIZE,
) -> ExportStats:
    """Stream the whole result of ``q`` (at most ``max_rows`` posts) into ``out`` as CSV or Excel."""
    stats = ExportStats()
    posts = iter_posts(client, alias, q, max_rows=max_rows, stats=stats, page_size=page_size)
    writer = write_csv if fmt == "csv" else write_xlsx
    writer(posts, out, tz, transform)
    log.info("exported %d of %d posts as %s%s%s", stats.rows, stats.matched, fmt,
             f", {len(stats.unreadable)} unreadable skipped" if stats.unreadable else "",
             f", cut at {max_rows}" if stats.truncated else "")
    return stats
