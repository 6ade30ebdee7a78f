"""``yuqing report daily|weekly [--date YYYY-MM-DD] [--out FILE]``: the 舆情日报 / 周报 for a day, written to a file;
``yuqing report event EVENT_ID [--out FILE] [--send --by NAME]``: the 舆情专报 on one event (:mod:`alerts.brief`), as
of now; ``--send`` also mails it to the leaders (:mod:`alerts.brief_send`).

The file type follows the suffix: ``.docx`` (the Word document), ``.html`` (the mail's HTML), ``.eml`` (the
whole mail, as it would be sent) or ``.txt``; without ``--out`` the text goes to stdout. ``--date`` is the
report's day (weekly: the last of its seven days); default: yesterday. A 专报 is not a mail: ``.eml`` is refused
for it.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from yuqing.errors import YuqingError
from yuqing.settings import Settings

SUFFIXES = (".docx", ".html", ".eml", ".txt")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date: write YYYY-MM-DD, e.g. 2026-05-01") from exc


def _out(value: str) -> Path:
    path = Path(value)
    if path.suffix.lower() not in SUFFIXES:
        raise argparse.ArgumentTypeError(f"{value!r}: the file must end in one of {', '.join(SUFFIXES)}")
    return path


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("report", help="write the 舆情日报 (daily) or 周报 (weekly) for a day, or the 舆情专报 "
                                           "on one event (event EVENT_ID)")
    parser.add_argument("kind", choices=["daily", "weekly", "event"])
    parser.add_argument("event_id", nargs="?", help="event: the event's id (事件详情 shows it; `yuqing events list`)")
    parser.add_argument("--date", type=_day, help="the day (weekly: the last of the seven days); default: yesterday")
    parser.add_argument("--out", type=_out, help=f"write to this file ({', '.join(SUFFIXES)}); default: text on stdout")
    parser.add_argument("--send", action="store_true",
                        help="event: also mail the 专报 to the leaders (reports.brief of alerts.yaml) through the "
                             "outbox; the running service's sender delivers it (or `yuqing alert`)")
    parser.add_argument("--by", help="with --send: who submits it (written on the event's 处置单)")
    parser.set_defaults(func=handler)


def _write(out: Path, data: bytes) -> None:
    """``data`` to ``out`` through a temporary file beside it (a failed write leaves no half file)."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise YuqingError(f"cannot write {out}: {exc}") from exc


def _brief(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.brief import BriefContext, BriefError, load_brief
    from alerts.brief_render import render_docx, render_html, render_text, trend_chart
    from alerts.chart import cjk_font
    from index.client import es_client

    if not args.event_id:
        raise BriefError("report event: name the event, e.g. `yuqing report event <EVENT_ID> --out 专报.docx`")
    if args.date is not None:
        raise BriefError("report event: a 专报 is written as of now; --date is for daily and weekly reports")
    out: Path | None = args.out
    suffix = out.suffix.lower() if out is not None else ".txt"
    if suffix == ".eml":
        raise BriefError("report event: a 专报 is a document, not a mail: write .docx, .html or .txt")
    if args.send and not (args.by or "").strip():
        raise BriefError("report event --send: say who submits it with --by (written on the event's 处置单)")
    ctx = BriefContext.load(settings)
    needs_font = args.send or suffix in (".docx", ".html")
    font = cjk_font(settings.alerts.cjk_font) if needs_font else None  # refuse before querying
    with es_client(settings.elasticsearch) as client:
        brief = load_brief(client, settings.elasticsearch.index_prefix, args.event_id, ctx, datetime.now(ctx.tz))
        if args.send:
            from alerts.brief_send import submit_brief

            sent = submit_brief(client, settings, brief, by=args.by.strip(), chart_png=trend_chart(brief, font=font))
            state = f"queued as outbox {sent.entry.id}" if sent.entry else "already queued this minute"
            print(f"{brief.heading}: {state} for {'、'.join(sent.recipients)}")
            if sent.ticket_error:
                print(f"yuqing: not noted on the 处置单: {sent.ticket_error}", file=sys.stderr)
    if out is None:
        if not args.send:
            print(render_text(brief), end="")
        return 0
    if suffix == ".docx":
        _write(out, render_docx(brief, chart_png=trend_chart(brief, font=font)))
    elif suffix == ".html":
        _write(out, render_html(brief, chart_png=trend_chart(brief, font=font)).encode("utf-8"))
    else:
        _write(out, render_text(brief).encode("utf-8"))
    print(f"{brief.heading}: {brief.event.count} posts, {len(brief.negative)} negative cited -> {out}")
    return 0


def handler(args: argparse.Namespace, settings: Settings) -> int:
    if args.kind == "event":
        return _brief(args, settings)
    if args.event_id:
        raise YuqingError(f"report {args.kind}: takes no event id (did you mean `yuqing report event …`?)")
    from alerts.chart import cjk_font
    from alerts.compose import message_id_for
    from alerts.report_jobs import report_sources
    from alerts.report_render import compose_report, daily_chart, render_docx, render_html, render_text
    from alerts.reports import build_report
    from index.client import es_client

    tz = ZoneInfo(settings.timezone)
    now = datetime.now(tz)
    day: date = args.date or (now.date() - timedelta(days=1))
    out: Path | None = args.out
    suffix = out.suffix.lower() if out is not None else ".txt"
    if args.kind == "weekly" and suffix != ".txt":
        cjk_font(settings.alerts.cjk_font)  # the chart needs it: refuse before querying anything
    with es_client(settings.elasticsearch) as client:
        report = build_report(client, report_sources(settings, client), args.kind, day, tz=tz,
                              dashboard_url=settings.alerts.dashboard_url, now=now)
    if out is None:
        print(render_text(report), end="")
        return 0
    if suffix == ".docx":
        data = render_docx(report, chart_png=daily_chart(report))
    elif suffix == ".html":
        data = render_html(report).encode("utf-8")
    elif suffix == ".eml":
        msg = compose_report(report, sender=settings.smtp.sender, recipients=(),
                             message_id=message_id_for(f"report-{args.kind}-{day.isoformat()}", settings.smtp.sender))
        data = msg.as_bytes()
    else:
        data = render_text(report).encode("utf-8")
    _write(out, data)
    o = report.overview
    print(f"{report.title}: {o.total} posts, {o.negative} negative -> {out}")
    return 0
