"""舆情日报 / 周报 rendered: plain text, HTML (the mail body; a per-day chart inline), ``.docx`` (python-docx) and
the mail itself (the weekly one with the ``.docx`` attached).

Sections, in both formats: 一、总体情况 (counts with example posts and dashboard links), 二、重点事件,
三、负面信息, 四、处置跟踪, 五、信源状态. Every user or web text is escaped in HTML.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from alerts.chart import Bar, daily_bars_png
from alerts.compose import FOOTER, add_inline_image, one_line
from alerts.content import (
    EVENT_PAGE,
    TICKET_PAGE,
    level_label,
    page_url,
    safe_href,
)
from alerts.reports import (
    CountRow,
    Report,
    ReportBrief,
    ReportEvent,
    ReportInstruction,
    ReportPost,
    ReportTicket,
    SourceHealthRow,
)

SECTION_OVERVIEW = "一、总体情况"
SECTION_EVENTS = "二、重点事件"
SECTION_NEGATIVE = "三、负面信息"
SECTION_TICKETS = "四、处置跟踪"
SECTION_SOURCES = "五、信源状态"
SECTIONS = (SECTION_OVERVIEW, SECTION_EVENTS, SECTION_NEGATIVE, SECTION_TICKETS, SECTION_SOURCES)
NOT_CONNECTED_EVENTS = "（事件数据尚未接入）"
NOT_CONNECTED_TICKETS = "（处置跟踪数据尚未接入）"
TREND_ARROWS = {"up": "↑ 上升", "down": "↓ 回落", "flat": "→ 平稳"}
_SPARKS = "▁▂▃▄▅▆▇█"
EVENT_HEADER = ("事件", "等级", "热度", "信息量", "负面占比", "走势", "责任单位", "本局发布")
TICKET_HEADER = ("处置单", "事项", "责任单位", "状态", "截止时间")
INSTRUCTION_HEADER = ("处置单", "事项", "批示领导", "批示时间", "批示内容", "落实情况")
BRIEF_HEADER = ("处置单", "事项", "呈报时间", "呈报人", "呈报对象", "批示情况")
SOURCE_HEADER = ("信源", "类型", "运行次数", "失败次数", "本期信息", "最近成功", "状态")
NEGATIVE_HEADER = ("标题", "来源", "发布时间", "话题")


def sparkline(values: Sequence[int]) -> str:
    if not values:
        return ""
    top = max(values) or 1
    return "".join(_SPARKS[min(len(_SPARKS) - 1, v * (len(_SPARKS) - 1) // top)] for v in values)


def _change(now: int, before: int) -> str:
    if before == 0:
        return "上期无数据" if now else "与上期持平"
    pct = (now - before) / before
    return f"环比{'增加' if pct > 0 else '减少'} {abs(pct):.0%}" if pct else "与上期持平"


def _time(value: datetime | None, report: Report) -> str:
    return value.astimezone(report.tz).strftime("%m-%d %H:%M") if value else "—"


def overview_sentences(report: Report) -> list[str]:
    o = report.overview
    noun = "本日" if report.period.kind == "daily" else "本周"
    lines = [
        f"{noun}共监测到信息 {o.total} 条，{_change(o.total, o.previous_total)}；其中负面 {o.negative} 条"
        f"（占 {o.negative_share:.0%}，{_change(o.negative, o.previous_negative)}），"
        f"与本局业务相关 {o.relevant} 条（模型判定，经人工研判的以研判为准）。"
    ]
    if o.by_kind:
        lines.append("信息类型：" + "，".join(f"{r.label} {r.count} 条" for r in o.by_kind) + "。")
    if o.by_topic:
        lines.append("主要话题：" + "，".join(f"{r.label} {r.count} 条" for r in o.by_topic[:5]) + "。")
    return lines


def event_row(e: ReportEvent) -> tuple[str, ...]:
    return (one_line(e.title), level_label(e.level), f"{e.heat:.0f}", str(e.count), f"{e.negative_share:.0%}",
            f"{TREND_ARROWS[e.trend]} {sparkline(e.hourly)}".strip(), e.unit or "—",
            f"{e.own_posts} 条" if e.own_posts else "尚未发布")


def ticket_row(t: ReportTicket, report: Report) -> tuple[str, ...]:
    return (t.ticket_id, one_line(t.title), t.unit, t.status, _time(t.due_at, report))


def instruction_row(i: ReportInstruction, report: Report) -> tuple[str, ...]:
    if i.state == "已反馈":
        outcome = f"已反馈（{_time(i.feedback_at, report)}）：{one_line(i.feedback or '')}"
    elif i.state == "逾期未反馈":
        outcome = f"逾期未反馈（时限 {_time(i.due_at, report)}）"
    else:
        outcome = "待反馈" + (f"（时限 {_time(i.due_at, report)}）" if i.due_at else "")
    return (i.ticket_id, one_line(i.ticket_title), i.leader, _time(i.at, report), one_line(i.text), outcome)


def brief_row(b: ReportBrief, report: Report) -> tuple[str, ...]:
    state = f"已批示（{b.instructed_by} {_time(b.instructed_at, report)}）" if b.instructed_by else "待批示"
    return (b.ticket_id, one_line(b.ticket_title), _time(b.at, report), b.by, b.to, state)


def briefs_heading(briefs: Sequence[ReportBrief]) -> str:
    waiting = sum(1 for b in briefs if not b.instructed_by)
    return f"呈报舆情专报 {len(briefs)} 件（待批示 {waiting} 件）"


def instructions_heading(instructions: Sequence[ReportInstruction]) -> str:
    waiting = sum(1 for i in instructions if i.state != "已反馈")
    return f"领导批示 {len(instructions)} 件（待反馈 {waiting} 件）"


def negative_row(p: ReportPost, report: Report) -> tuple[str, ...]:
    return (one_line(p.title) or p.url, p.source, _time(p.published_at, report), p.topic or "—")


# ---- text -------------------------------------------------------------------------------------------------
def render_text(report: Report) -> str:
    out = [report.title, f"生成时间：{report.generated_at.astimezone(report.tz):%Y-%m-%d %H:%M}", ""]
    out += [SECTION_OVERVIEW, *overview_sentences(report)]
    for name, rows in (("情感分布", report.overview.by_sentiment), ("主要来源", report.overview.by_source[:10])):
        if rows:
            out.append(f"{name}：")
            for r in rows:
                out.append(f"  {r.label} {r.count} 条  {r.link}")
                out += [f"    例：{one_line(p.title)} {p.url}" for p in r.examples]
    out += ["", SECTION_EVENTS]
    if report.events is None:
        out.append(NOT_CONNECTED_EVENTS)
    elif not report.events:
        out.append("本期无重点事件。")
    for e in report.events or ():
        out.append("  " + " | ".join(event_row(e)) + f"  {page_url(report.dashboard_url, EVENT_PAGE, id=e.event_id)}")
    out += ["", SECTION_NEGATIVE]
    out += [f"  {i}. {' | '.join(negative_row(p, report))}  {p.url}" for i, p in enumerate(report.negative_posts, 1)]
    if not report.negative_posts:
        out.append("本期无负面信息。")
    out += ["", SECTION_TICKETS]
    if report.tickets is None:
        out.append(NOT_CONNECTED_TICKETS)
    else:
        for name, tickets in (("即将到期", report.tickets.due), ("已超期", report.tickets.overdue),
                              ("已办结", report.tickets.closed)):
            out.append(f"{name} {len(tickets)} 件")
            out += ["  " + " | ".join(ticket_row(t, report)) for t in tickets]
        out.append(instructions_heading(report.tickets.instructions))
        out += ["  " + " | ".join(instruction_row(i, report)) for i in report.tickets.instructions]
        if report.tickets.briefs:
            out.append(briefs_heading(report.tickets.briefs))
            out += ["  " + " | ".join(brief_row(b, report)) for b in report.tickets.briefs]
    out += ["", SECTION_SOURCES]
    out += ["  " + " | ".join(source_row(s, report)) for s in report.sources]
    if not report.sources:
        out.append("本期无抓取记录。")
    out += ["", f"—— {FOOTER}"]
    return "\n".join(out) + "\n"


def source_row(s: SourceHealthRow, report: Report) -> tuple[str, ...]:
    return (s.source, s.kind or "—", str(s.runs), str(s.failed_runs), str(s.posts), _time(s.last_success, report),
            s.status)


# ---- HTML -------------------------------------------------------------------------------------------------
def html_link(url: str | None, text: str) -> str:
    href = safe_href(url)
    return f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>' if href else html.escape(text)


def _ticket_rows(report: Report, rows: Sequence[tuple[str, Sequence[str]]]) -> list[list[str]]:
    """Table rows (escaped) whose first cell, the ticket id, links to its 处置跟踪 page."""
    out = []
    for ticket_id, row in rows:
        cells = [html.escape(c) for c in row]
        cells[0] = html_link(page_url(report.dashboard_url, TICKET_PAGE, id=ticket_id), ticket_id)
        out.append(cells)
    return out


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    th = "".join(f'<th style="border:1px solid #ccc;padding:3px 6px;background:#f3f3f3">{html.escape(h)}</th>'
                 for h in header)
    body = "".join("<tr>" + "".join(f'<td style="border:1px solid #ccc;padding:3px 6px">{c}</td>' for c in row)
                   + "</tr>" for row in rows)
    return f'<table style="border-collapse:collapse;font-size:13px"><tr>{th}</tr>{body}</table>'


def _count_rows(rows: Sequence[CountRow]) -> str:
    items = []
    for r in rows:
        examples = "；".join(html_link(p.url, one_line(p.title) or p.url) for p in r.examples)
        items.append(f"<li>{html_link(r.link, f'{r.label} {r.count} 条')}" + (f"　例：{examples}" if examples else "")
                     + "</li>")
    return f"<ul>{''.join(items)}</ul>"


def render_html(report: Report, *, chart_cid: str | None = None) -> str:
    esc = html.escape
    parts = [f"<h1 style=\"font-size:20px\">{esc(report.title)}</h1>",
             f'<p style="color:#777">生成时间：{report.generated_at.astimezone(report.tz):%Y-%m-%d %H:%M}</p>',
             f"<h2>{SECTION_OVERVIEW}</h2>"]
    parts += [f"<p>{esc(s)}（{html_link(report.overview.link, '查看全部')}）</p>" if i == 0 else f"<p>{esc(s)}</p>"
              for i, s in enumerate(overview_sentences(report))]
    if chart_cid:
        parts.append(f'<img src="cid:{esc(chart_cid)}" alt="每日信息量" width="640" style="max-width:100%">')
    if report.overview.by_sentiment:
        parts.append("<h3>情感分布</h3>" + _count_rows(report.overview.by_sentiment))
    if report.overview.by_source:
        parts.append("<h3>主要来源</h3>" + _count_rows(report.overview.by_source[:10]))
    parts.append(f"<h2>{SECTION_EVENTS}</h2>")
    if report.events is None:
        parts.append(f"<p>{NOT_CONNECTED_EVENTS}</p>")
    elif not report.events:
        parts.append("<p>本期无重点事件。</p>")
    else:
        rows = []
        for e in report.events:
            cells = [esc(c) for c in event_row(e)]
            cells[0] = html_link(page_url(report.dashboard_url, EVENT_PAGE, id=e.event_id), one_line(e.title))
            rows.append(cells)
        parts.append(html_table(EVENT_HEADER, rows))
    parts.append(f"<h2>{SECTION_NEGATIVE}</h2>")
    if report.negative_posts:
        rows = []
        for p in report.negative_posts:
            cells = [esc(c) for c in negative_row(p, report)]
            cells[0] = html_link(p.url, one_line(p.title) or p.url)
            rows.append(cells)
        parts.append(html_table(NEGATIVE_HEADER, rows))
    else:
        parts.append("<p>本期无负面信息。</p>")
    parts.append(f"<h2>{SECTION_TICKETS}</h2>")
    if report.tickets is None:
        parts.append(f"<p>{NOT_CONNECTED_TICKETS}</p>")
    else:
        for name, tickets in (("即将到期", report.tickets.due), ("已超期", report.tickets.overdue),
                              ("已办结", report.tickets.closed)):
            parts.append(f"<h3>{name}（{len(tickets)} 件）</h3>")
            if tickets:
                parts.append(html_table(TICKET_HEADER, _ticket_rows(report, [(t.ticket_id, ticket_row(t, report))
                                                                             for t in tickets])))
        instructions = report.tickets.instructions
        parts.append(f"<h3>{esc(instructions_heading(instructions))}</h3>")
        if instructions:
            parts.append(html_table(INSTRUCTION_HEADER, _ticket_rows(
                report, [(i.ticket_id, instruction_row(i, report)) for i in instructions])))
        briefs = report.tickets.briefs
        if briefs:
            parts.append(f"<h3>{esc(briefs_heading(briefs))}</h3>")
            parts.append(html_table(BRIEF_HEADER, _ticket_rows(report, [(b.ticket_id, brief_row(b, report))
                                                                         for b in briefs])))
    parts.append(f"<h2>{SECTION_SOURCES}</h2>")
    if report.sources:
        parts.append(html_table(SOURCE_HEADER, [[esc(c) for c in source_row(s, report)] for s in report.sources]))
    else:
        parts.append("<p>本期无抓取记录。</p>")
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(report.title)}</title></head>"
        '<body style="font-family:\'Microsoft YaHei\',\'PingFang SC\',\'Noto Sans CJK SC\',sans-serif;'
        f'font-size:14px;color:#222">{"".join(parts)}'
        f'<p style="color:#888;font-size:12px">—— {esc(FOOTER)}</p></body></html>'
    )


# ---- docx -------------------------------------------------------------------------------------------------
def docx_hyperlink(paragraph: object, url: str, text: str) -> None:
    """A clickable link in a python-docx paragraph (python-docx has no API for it: built from its XML)."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    part = paragraph.part  # type: ignore[attr-defined]
    r_id = part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), r_id)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    colour = OxmlElement("w:color")
    colour.set(qn("w:val"), "1155CC")
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(colour)
    props.append(underline)
    run.append(props)
    t = OxmlElement("w:t")
    t.text = text
    t.set(qn("xml:space"), "preserve")
    run.append(t)
    link.append(run)
    paragraph._p.append(link)  # type: ignore[attr-defined]


def docx_table(doc: object, header: Sequence[str], rows: Sequence[Sequence[str]],
                links: Sequence[str | None] | None = None) -> None:
    table = doc.add_table(rows=1, cols=len(header))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for i, row in enumerate(rows):
        cells = table.add_row().cells
        for j, text in enumerate(row):
            url = links[i] if links is not None and j == 0 else None
            if url and safe_href(url):
                docx_hyperlink(cells[j].paragraphs[0], url, text)
            else:
                cells[j].text = text


def docx_document(title: str, *, font_pt: int = 11) -> Any:
    """A new Word document titled ``title`` (heading and properties), body text in 宋体 of ``font_pt``."""
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    normal = doc.styles["Normal"]
    normal.font.name = "宋体"
    normal.font.size = Pt(font_pt)
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    doc.core_properties.title = title
    doc.add_heading(title, level=0)
    return doc


def render_docx(report: Report, *, chart_png: bytes | None = None) -> bytes:
    from docx.shared import Pt

    doc = docx_document(report.title)
    doc.add_paragraph(f"生成时间：{report.generated_at.astimezone(report.tz):%Y-%m-%d %H:%M}")

    doc.add_heading(SECTION_OVERVIEW, level=1)
    for sentence in overview_sentences(report):
        doc.add_paragraph(sentence)
    if chart_png:
        doc.add_picture(io.BytesIO(chart_png), width=Pt(440))
    for name, rows in (("情感分布", report.overview.by_sentiment), ("主要来源", report.overview.by_source[:10])):
        if not rows:
            continue
        doc.add_heading(name, level=2)
        for r in rows:
            p = doc.add_paragraph(style="List Bullet")
            docx_hyperlink(p, r.link, f"{r.label} {r.count} 条")
            for ex in r.examples:
                p.add_run("　例：")
                docx_hyperlink(p, ex.url, one_line(ex.title) or ex.url)

    doc.add_heading(SECTION_EVENTS, level=1)
    if report.events is None:
        doc.add_paragraph(NOT_CONNECTED_EVENTS)
    elif not report.events:
        doc.add_paragraph("本期无重点事件。")
    else:
        docx_table(doc, EVENT_HEADER, [event_row(e) for e in report.events],
                    [page_url(report.dashboard_url, EVENT_PAGE, id=e.event_id) for e in report.events])

    doc.add_heading(SECTION_NEGATIVE, level=1)
    if report.negative_posts:
        docx_table(doc, NEGATIVE_HEADER, [negative_row(p, report) for p in report.negative_posts],
                    [p.url for p in report.negative_posts])
    else:
        doc.add_paragraph("本期无负面信息。")

    doc.add_heading(SECTION_TICKETS, level=1)
    if report.tickets is None:
        doc.add_paragraph(NOT_CONNECTED_TICKETS)
    else:
        for name, tickets in (("即将到期", report.tickets.due), ("已超期", report.tickets.overdue),
                              ("已办结", report.tickets.closed)):
            doc.add_heading(f"{name}（{len(tickets)} 件）", level=2)
            if tickets:
                docx_table(doc, TICKET_HEADER, [ticket_row(t, report) for t in tickets],
                            [page_url(report.dashboard_url, TICKET_PAGE, id=t.ticket_id) for t in tickets])
        instructions = report.tickets.instructions
        doc.add_heading(instructions_heading(instructions), level=2)
        if instructions:
            docx_table(doc, INSTRUCTION_HEADER, [instruction_row(i, report) for i in instructions],
                        [page_url(report.dashboard_url, TICKET_PAGE, id=i.ticket_id) for i in instructions])
        briefs = report.tickets.briefs
        if briefs:
            doc.add_heading(briefs_heading(briefs), level=2)
            docx_table(doc, BRIEF_HEADER, [brief_row(b, report) for b in briefs],
                       [page_url(report.dashboard_url, TICKET_PAGE, id=b.ticket_id) for b in briefs])

    doc.add_heading(SECTION_SOURCES, level=1)
    if report.sources:
        docx_table(doc, SOURCE_HEADER, [source_row(s, report) for s in report.sources])
    else:
        doc.add_paragraph("本期无抓取记录。")
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()


# ---- chart and mail ---------------------------------------------------------------------------------------
def daily_chart(report: Report, *, font: Path | None = None) -> bytes | None:
    """Posts per day (negative in red) for a weekly report; None for a daily one."""
    if report.period.kind != "weekly" or not report.overview.by_day:
        return None
    bars = [Bar(d.day.strftime("%m-%d"), d.total, d.negative) for d in report.overview.by_day]
    return daily_bars_png(bars, title="每日信息量", font=font)


def docx_filename(report: Report) -> str:
    last = (report.period.end - timedelta(days=1)).date()
    return f"{'舆情周报' if report.period.kind == 'weekly' else '舆情日报'}_{last:%Y%m%d}.docx"


def compose_report(
    report: Report, *, sender: str, recipients: Sequence[str], message_id: str, font: Path | None = None,
) -> EmailMessage:
    """The report mail: text + HTML (weekly: a per-day chart inline and the .docx attached)."""
    chart = daily_chart(report, font=font)
    domain = sender.rpartition("@")[2] or "localhost"
    cid = f"days.{message_id.strip('<>').partition('@')[0]}@{domain}" if chart else None
    msg = EmailMessage()
    msg["Subject"] = f"【{report.title}】"
    msg["From"] = sender
    if recipients:
        msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(report.generated_at.astimezone(report.tz))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(render_text(report))
    msg.add_alternative(render_html(report, chart_cid=cid), subtype="html")
    if chart is not None and cid is not None:
        add_inline_image(msg, chart, cid, "days.png")
    if report.period.kind == "weekly":
        msg.add_attachment(
            render_docx(report, chart_png=chart),
            maintype="application", subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
            filename=docx_filename(report),
        )
    return msg
