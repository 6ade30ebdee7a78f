"""舆情专报 rendered: plain text, a standalone HTML page (the trend chart embedded) and ``.docx`` (python-docx),
the same six sections in each (:mod:`alerts.brief`). Every user or web text is escaped in HTML; links only to
http(s) addresses."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from alerts.brief import (
    POST_HEADER,
    SECTION_ADVICE,
    SECTION_JUDGEMENT,
    SECTION_POSTS,
    SECTION_RESPONSE,
    SECTION_SITUATION,
    SECTION_SPREAD,
    EventBrief,
    judgement_lines,
    post_lists,
    post_row,
    response_lines,
    situation_sentences,
    spread_sentences,
    suggestions,
)
from alerts.chart import event_trend_png
from alerts.content import TimelinePoint
from alerts.report_render import docx_document, docx_hyperlink, docx_table, html_link, html_table

ADDRESSEE = "报送：局领导"
FOOTER = "本专报由文化舆情监测与回应平台根据监测数据生成，数据截至生成时间。"


def trend_chart(b: EventBrief, *, font: Path | None = None) -> bytes | None:
    """The event's hourly posts (negative in red) as a PNG; None without a timeline. Raises
    :class:`alerts.chart.FontMissingError` without a Chinese font."""
    points = [TimelinePoint(at=p.at, posts=p.posts, negative=p.negative) for p in b.event.timeline]
    return event_trend_png(points, b.tz, font=font)


def filename(b: EventBrief, suffix: str) -> str:
    return f"舆情专报_{b.event.event_id}_{b.local(b.generated_at, '%Y%m%d-%H%M')}{suffix}"


def meta_line(b: EventBrief) -> str:
    return f"{ADDRESSEE}　生成时间：{b.local(b.generated_at)}　事件编号：{b.event.event_id}"


# ---- text -------------------------------------------------------------------------------------------------
def render_text(b: EventBrief) -> str:
    out = [b.heading, meta_line(b), "", SECTION_SITUATION, *situation_sentences(b), "", SECTION_SPREAD,
           *spread_sentences(b), "", SECTION_POSTS]
    for name, posts, none in post_lists(b):
        out.append(f"{name}：")
        out += [f"  {i}. {' | '.join(post_row(p, b))}  {p.url}" for i, p in enumerate(posts, 1)] or [f"  {none}"]
    out += ["", SECTION_JUDGEMENT, *judgement_lines(b), "", SECTION_RESPONSE, *response_lines(b), "", SECTION_ADVICE]
    out += [f"{i}. {s}" for i, s in enumerate(suggestions(b), 1)]
    out += ["", f"事件详情：{b.event_url}", f"—— {FOOTER}"]
    return "\n".join(out) + "\n"


# ---- HTML -------------------------------------------------------------------------------------------------
def render_html(b: EventBrief, *, chart_png: bytes | None = None, chart_cid: str | None = None) -> str:
    """The page; the chart embedded (``chart_png``) or, in a mail, the inline image ``cid:chart_cid``."""
    esc = html.escape
    parts = [f'<h1 style="font-size:20px">{esc(b.heading)}</h1>', f'<p style="color:#777">{esc(meta_line(b))}</p>',
             f"<h2>{SECTION_SITUATION}</h2>", *(f"<p>{esc(s)}</p>" for s in situation_sentences(b)),
             f"<h2>{SECTION_SPREAD}</h2>", *(f"<p>{esc(s)}</p>" for s in spread_sentences(b))]
    src = f"cid:{chart_cid}" if chart_cid else (
        f"data:image/png;base64,{base64.b64encode(chart_png).decode('ascii')}" if chart_png else None)
    if src:
        parts.append(f'<img src="{esc(src)}" alt="事件走势" width="640" style="max-width:100%">')
    parts.append(f"<h2>{SECTION_POSTS}</h2>")
    for name, posts, none in post_lists(b):
        parts.append(f"<h3>{esc(name)}</h3>")
        if not posts:
            parts.append(f"<p>{esc(none)}</p>")
            continue
        rows = []
        for p in posts:
            cells = [esc(c) for c in post_row(p, b)]
            cells[0] = html_link(p.url, post_row(p, b)[0]) + (f'<br><span style="color:#666">{esc(p.more_text)}</span>'
                                                        if p.more_text else "")
            rows.append(cells)
        parts.append(html_table(POST_HEADER, rows))
    parts.append(f"<h2>{SECTION_JUDGEMENT}</h2>")
    parts += [f"<p>{esc(s)}</p>" for s in judgement_lines(b)]
    parts.append(f"<h2>{SECTION_RESPONSE}</h2>")
    parts += [f"<p>{esc(s)}</p>" for s in response_lines(b)]
    parts.append(f"<h2>{SECTION_ADVICE}</h2><ol>" + "".join(f"<li>{esc(s)}</li>" for s in suggestions(b)) + "</ol>")
    parts.append(f"<p>{html_link(b.event_url, '在舆情监测平台查看事件详情')}</p>")
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{esc(b.heading)}</title></head>"
        '<body style="font-family:\'Microsoft YaHei\',\'PingFang SC\',\'Noto Sans CJK SC\',sans-serif;'
        f'font-size:14px;color:#222;max-width:860px">{"".join(parts)}'
        f'<p style="color:#888;font-size:12px">—— {esc(FOOTER)}</p></body></html>'
    )


# ---- docx -------------------------------------------------------------------------------------------------
def render_docx(b: EventBrief, *, chart_png: bytes | None = None) -> bytes:
    from docx.shared import Pt

    doc = docx_document(b.heading, font_pt=12)
    doc.add_paragraph(meta_line(b))
    for section, lines in ((SECTION_SITUATION, situation_sentences(b)), (SECTION_SPREAD, spread_sentences(b))):
        doc.add_heading(section, level=1)
        for line in lines:
            doc.add_paragraph(line)
    if chart_png:
        doc.add_picture(io.BytesIO(chart_png), width=Pt(440))
    doc.add_heading(SECTION_POSTS, level=1)
    for name, posts, none in post_lists(b):
        doc.add_heading(name, level=2)
        if posts:
            docx_table(doc, POST_HEADER, [post_row(p, b) for p in posts], [p.url for p in posts])
        else:
            doc.add_paragraph(none)
    for section, lines in ((SECTION_JUDGEMENT, judgement_lines(b)), (SECTION_RESPONSE, response_lines(b))):
        doc.add_heading(section, level=1)
        for line in lines:
            doc.add_paragraph(line)
    doc.add_heading(SECTION_ADVICE, level=1)
    for line in suggestions(b):
        doc.add_paragraph(line, style="List Number")
    p = doc.add_paragraph()
    docx_hyperlink(p, b.event_url, "在舆情监测平台查看事件详情")
    doc.add_paragraph(FOOTER)
    buf = io.BytesIO()
    doc.save(buf)
    return buf.getvalue()
