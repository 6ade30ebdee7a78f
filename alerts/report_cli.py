"""``yuqing report daily|weekly [--date YYYY-MM-DD] [--out FILE]``: the 舆情日报 / 周报 for a day, written to a file.

The file type follows the suffix: ``.docx`` (the Word document), ``.html`` (the mail's HTML), ``.eml`` (the
whole mail, as it would be sent) or ``.txt``; without ``--out`` the text goes to stdout. ``--date`` is the
report's day (weekly: the last of its seven days); default: yesterday.
"""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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
    parser = sub.add_parser("report", help="write the 舆情日报 (daily) or 周报 (weekly) for a day")
    parser.add_argument("kind", choices=["daily", "weekly"])
    parser.add_argument("--date", type=_day, help="the day (weekly: the last of the seven days); default: yesterday")
    parser.add_argument("--out", type=_out, help=f"write to this file ({', '.join(SUFFIXES)}); default: text on stdout")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
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
        cjk_font()  # the chart needs it: refuse before querying anything
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    o = report.overview
    print(f"{report.title}: {o.total} posts, {o.negative} negative -> {out}")
    return 0
