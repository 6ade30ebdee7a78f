"""``yuqing tickets …`` (处置单) and ``yuqing foia …`` (依申请公开): readable output, ``--json`` for scripts.

Every change names its operator (``--by``) and is written with the audit entry in one compare-and-set write;
a concurrent change by someone else is reported (exit status 2), never overwritten.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yuqing.errors import YuqingError
from yuqing.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from response.config import ResponseConfig
    from response.foia import FoiaRequest
    from response.service import FoiaService, TicketService
    from response.tickets import Ticket

_CHANNELS = ("官网", "微信公众号", "微博", "新闻发布会", "媒体采访", "留言答复")
_STATUSES = ("待研判", "处置中", "已回应", "已办结", "不予处置")
_LEVELS = ("I", "II", "III", "IV")
_FOIA_CHANNELS = ("当面提交", "邮寄", "网上申请", "传真", "电子邮件")
_REPLY_TYPES = ("已主动公开", "予以公开", "部分公开", "不予公开", "信息不存在", "非本机关负责公开", "重复申请",
                "按特别规定办理")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    _add_tickets(sub)
    _add_foia(sub)


def _by(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", required=True, help="操作人 (recorded in the audit trail)")


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_tickets(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("tickets", help="处置单: response tickets with deadlines and an audit trail")
    ts = t.add_subparsers(dest="tickets_command", required=True)

    p = ts.add_parser("list", help="list tickets")
    p.add_argument("--status", action="append", choices=_STATUSES, help="repeatable")
    p.add_argument("--unit")
    p.add_argument("--overdue", action="store_true", help="only overdue tickets")
    p.add_argument("--text", help="words in the title")
    p.add_argument("--instructions-pending", action="store_true",
                   help="only tickets with a 领导批示 not yet reported back on")
    p.add_argument("--awaiting-instruction", action="store_true",
                   help="only tickets whose 舆情专报 was submitted and has no 领导批示 since (专报待批示)")
    p.add_argument("--limit", type=int, default=100)
    _json(p)
    p.set_defaults(func=cmd_tickets_list)

    p = ts.add_parser("show", help="one ticket with deadlines, responses and audit trail")
    p.add_argument("id")
    _json(p)
    p.set_defaults(func=cmd_tickets_show)

    p = ts.add_parser("open", help="open a ticket for an event (or a post)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--event", help="event id")
    what.add_argument("--post", help="post id (until events land)")
    p.add_argument("--title", required=True)
    p.add_argument("--level", choices=_LEVELS, help="risk level; deadlines follow it (none: the default rule)")
    p.add_argument("--topic", help="taxonomy topic; gives the responsible unit")
    p.add_argument("--unit", help="responsible unit (overrides the topic's; --note says why)")
    p.add_argument("--keyword", action="append", default=[], help="words a response must contain (repeatable)")
    p.add_argument("--started-at", help="when the 舆情 surfaced (ISO time; default now)")
    p.add_argument("--note")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_open)

    p = ts.add_parser("assign", help="change the responsible unit (reason required)")
    p.add_argument("id")
    p.add_argument("--unit", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--handler", help="承办人")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_assign)

    p = ts.add_parser("status", help="move the ticket along 待研判 → 处置中 → 已回应 → 已办结 (or 不予处置)")
    p.add_argument("id")
    p.add_argument("to", choices=_STATUSES)
    p.add_argument("--note", help="reason (required for 不予处置 and going back)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_status)

    p = ts.add_parser("level", help="change the risk level (deadlines are recomputed)")
    p.add_argument("id")
    p.add_argument("to", choices=(*_LEVELS, "none"))
    p.add_argument("--reason", required=True)
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_level)

    p = ts.add_parser("respond", help="record a response (published after 保密审查, or --draft)")
    p.add_argument("id")
    p.add_argument("--channel", required=True, choices=_CHANNELS)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text")
    src.add_argument("--text-file", type=Path)
    p.add_argument("--link")
    p.add_argument("--at", help="when it was published (ISO time; default now)")
    p.add_argument("--draft", action="store_true", help="save as a draft (no review yet)")
    p.add_argument("--post-id", help="the own-channel post it is (a 失声 check proposal)")
    p.add_argument("--override", metavar="REASON", help="publish despite 保密审查 findings, for this reason")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_respond)

    p = ts.add_parser("publish", help="publish a draft response after 保密审查")
    p.add_argument("id")
    p.add_argument("no", type=int, help="response number (#)")
    p.add_argument("--link")
    p.add_argument("--at", help="when it was published (ISO time; default now)")
    p.add_argument("--override", metavar="REASON", help="publish despite 保密审查 findings, for this reason")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_publish)

    p = ts.add_parser("export", help="处置台账: the tickets as CSV or Excel (subject, unit, deadlines and whether "
                                     "they were met, responses, 领导批示 and 落实反馈, closing time)")
    p.add_argument("out", type=Path, help="file to write: .csv or .xlsx")
    p.add_argument("--status", action="append", choices=_STATUSES, help="repeatable (default: every status)")
    p.add_argument("--unit")
    p.add_argument("--since", help="only tickets opened on or after this day (YYYY-MM-DD, local)")
    p.set_defaults(func=cmd_tickets_export)

    p = ts.add_parser("instruct", help="record a 领导批示 on the ticket (a ticket cannot be closed until it is "
                                       "reported back on)")
    p.add_argument("id")
    p.add_argument("--leader", required=True, help="批示领导, e.g. 王局长")
    p.add_argument("--text", required=True, help="批示内容")
    p.add_argument("--at", help="when the leader instructed (ISO time; default now)")
    p.add_argument("--due", help="反馈时限: report back by then (ISO time)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_instruct)

    p = ts.add_parser("feedback", help="report back (落实反馈) on a 领导批示")
    p.add_argument("id")
    p.add_argument("no", type=int, help="instruction number (#)")
    p.add_argument("--text", required=True, help="落实情况")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_tickets_feedback)

    p = ts.add_parser("review", help="保密审查 of a draft text (file or - for stdin); exit 1 when anything is found")
    p.add_argument("file", help="text file, or - for standard input")
    _json(p)
    p.set_defaults(func=cmd_tickets_review)

    p = ts.add_parser("auto-open", help="run the rule once: tickets for open events at/above auto_open_min_level, "
                      "levels raised with their events (the scheduler runs it after each crawl)")
    p.set_defaults(func=cmd_tickets_auto_open)

    p = ts.add_parser("check-silence", help="run the 失声 check once over the tickets not closed (the scheduler "
                      "runs it after each crawl)")
    p.set_defaults(func=cmd_tickets_check_silence)


def _add_foia(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("foia", help="依申请公开: information requests and their statutory deadlines")
    fs = f.add_subparsers(dest="foia_command", required=True)

    p = fs.add_parser("register", help="register a request")
    p.add_argument("--applicant", required=True)
    p.add_argument("--contact")
    p.add_argument("--content", required=True)
    p.add_argument("--channel", required=True, choices=_FOIA_CHANNELS)
    p.add_argument("--received", required=True, help="date received (YYYY-MM-DD; 条例 第三十一条)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_register)

    p = fs.add_parser("list", help="requests with their deadlines")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--open", action="store_true", help="only requests not yet answered")
    p.add_argument("--on", help="as of this date (default today)")
    _json(p)
    p.set_defaults(func=cmd_foia_list)

    p = fs.add_parser("show", help="one request with its clock and audit trail")
    p.add_argument("id")
    p.add_argument("--on", help="as of this date (default today)")
    _json(p)
    p.set_defaults(func=cmd_foia_show)

    p = fs.add_parser("extend", help="the one extension (第三十三条), with the approver")
    p.add_argument("id")
    p.add_argument("--approved-by", required=True)
    p.add_argument("--reason", required=True)
    p.add_argument("--days", type=int, help="working days (default and maximum: 20)")
    p.add_argument("--on", help="approval date (default today)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_extend)

    p = fs.add_parser("correct", help="补正: send the notice (--notice-on) or record the corrected application "
                                      "(--received-on)")
    p.add_argument("id")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--notice-on", help="date the 补正 notice was sent")
    g.add_argument("--received-on", help="date the corrected application was received")
    p.add_argument("--items", help="what must be corrected (with --notice-on)")
    p.add_argument("--due", help="correction period end (default: 15 working days)")
    p.add_argument("--late-reason", help="good reason for a correction after the period")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_correct)

    p = fs.add_parser("consult", help="third-party consultation (第三十二条): --sent or --answered")
    p.add_argument("id")
    p.add_argument("--third-party", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sent")
    g.add_argument("--answered")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_consult)

    p = fs.add_parser("abandon", help="视为放弃: no correction by the period")
    p.add_argument("id")
    p.add_argument("--on", help="date (default today)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_abandon)

    p = fs.add_parser("template", help="print a reply letter for a reply type (remedy statement included)")
    p.add_argument("id")
    p.add_argument("--type", required=True, choices=_REPLY_TYPES)
    p.add_argument("--details", default="")
    p.set_defaults(func=cmd_foia_template)

    p = fs.add_parser("reply", help="record the reply (refused without the remedy statement)")
    p.add_argument("id")
    p.add_argument("--type", required=True, choices=_REPLY_TYPES)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text")
    src.add_argument("--text-file", type=Path)
    p.add_argument("--on", help="reply date (default today)")
    _by(p)
    _json(p)
    p.set_defaults(func=cmd_foia_reply)

    p = fs.add_parser("reminders", help="deadlines within 3 working days, overdue, lapsed 补正, 日历未覆盖")
    p.add_argument("--on", help="as of this date (default today)")
    _json(p)
    p.set_defaults(func=cmd_foia_reminders)


# ---- shared helpers ----------------------------------------------------------------------------------------

class _Context:
    """What every handler needs, built from the settings once; ``client`` is open for the command's duration."""

    def __init__(self, settings: Settings, client: Elasticsearch) -> None:
        from zoneinfo import ZoneInfo

        from response.config import load_response_config
        from response.service import ensure_indices

        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.config: ResponseConfig = load_response_config(settings.config_file("response.yaml"))
        self.client = client
        ensure_indices(self.client, settings.elasticsearch)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def when(self, value: str | None) -> datetime:
        if not value:
            return self.now()
        try:
            at = datetime.fromisoformat(value)
        except ValueError as exc:
            raise YuqingError(f"时间格式不对：{value!r}（例如 2026-09-28T10:30）") from exc
        return at if at.tzinfo else at.replace(tzinfo=self.tz)

    def day(self, value: str | None) -> date:
        if not value:
            return self.now().date()
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise YuqingError(f"日期格式不对：{value!r}（例如 2026-09-28）") from exc

    def tickets(self) -> TicketService:
        from response.service import TicketService

        return TicketService(self.client, self.settings.elasticsearch.index_prefix)

    def foia(self) -> FoiaService:
        from response.service import FoiaService

        return FoiaService(self.client, self.settings.elasticsearch.index_prefix)


def _run(settings: Settings, body: Any) -> int:
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        result: int = body(_Context(settings, client))
        return result


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=1))


def _read_text(text: str | None, path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise YuqingError(f"读取 {path} 失败：{exc}") from exc
    return text or ""


# ---- tickets ----------------------------------------------------------------------------------------------

def _ticket_json(ticket: Ticket, now: datetime) -> dict[str, Any]:
    from response.tickets import deadline_lines, is_overdue

    data = ticket.model_dump(mode="json")
    data["overdue_now"] = is_overdue(ticket, now)
    data["deadline_lines"] = deadline_lines(ticket, now, _zone(now))
    data["instruction_states"] = {str(i.no): i.state(now) for i in ticket.instructions}
    return data


def _ticket_line(ticket: Ticket, now: datetime) -> str:
    from response.tickets import format_span, is_overdue

    due = ticket.first_due_at
    if ticket.status in ("已回应", "已办结", "不予处置") or due is None:
        clock = ""
    elif now > due:
        clock = f"超期{format_span(now - due)}"
    else:
        clock = f"剩{format_span(due - now)}"
    flags = "".join(f"[{f}]" for f, on in (("失声", ticket.silent), ("超期", is_overdue(ticket, now)),
                                           ("批示待反馈", bool(ticket.pending_instructions())),
                                           ("专报待批示", ticket.awaiting_instruction)) if on)
    level = ticket.risk_level or "-"
    return f"{ticket.id}  {ticket.status:<4} {level:<3} {ticket.unit:<10} {clock:<12} {flags}{ticket.title}"


def _zone(now: datetime) -> tzinfo:
    """The office's time zone, which ``_Context.now`` carries: every time printed for a person is in it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (the office's time zone)")
    return now.tzinfo


def _print_ticket(ticket: Ticket, now: datetime) -> None:
    from response.audit import local
    from response.config import RISK_LABELS
    from response.tickets import deadline_lines, instruction_lines

    tz = _zone(now)

    s = ticket.subject
    print(f"处置单 {ticket.id}  {ticket.title}")
    print(f"  状态：{ticket.status}    风险等级：{RISK_LABELS.get(ticket.risk_level or '', '未定级')}")
    print(f"  责任单位：{ticket.unit}" + (f"    承办人：{ticket.handler}" if ticket.handler else ""))
    print(f"  对象：{'事件' if s.kind == 'event' else '信息'} {s.id}" + (f"（{s.topic}）" if s.topic else ""))
    rule = f"（规则 {ticket.rule}）" if ticket.rule else ""
    print(f"  创建：{local(ticket.opened_at, tz):%Y-%m-%d %H:%M} {ticket.opened_by}{rule}")
    flags = [f for f, on in (("失声", ticket.silent), ("超期", ticket.overdue)) if on]
    if flags:
        print(f"  标记：{'、'.join(flags)}")
    print("  期限：")
    for line in deadline_lines(ticket, now, tz):
        print(f"    {line}")
    if ticket.responses:
        print("  回应：")
        for r in ticket.responses:
            review = ""
            if r.review is not None:
                review = f"，保密审查：{r.review.summary}" + (
                    f"（强制放行：{r.review.override_reason}）" if r.review.override_reason else "")
            print(f"    #{r.no} {r.state} {r.channel} {local(r.at, tz):%Y-%m-%d %H:%M} {r.link or ''}{review}")
            if r.text:
                flat = " ".join(r.text.split())
                print(f"       {flat[:100]}{'…' if len(flat) > 100 else ''}")
    if ticket.instructions:
        print("  领导批示：")
        for line in instruction_lines(ticket, now, tz):
            print(f"    {line}")
    if ticket.proposals:
        print("  建议确认的回应（本机关渠道发布）：")
        for p in ticket.proposals:
            print(f"    {p.channel} {local(p.at, tz):%Y-%m-%d %H:%M} {p.title} {p.url or ''} (post {p.post_id})")
    print("  审计记录：")
    for e in ticket.audit:
        print(f"    {e.line(tz)}")


def _show_ticket(args: argparse.Namespace, ticket: Ticket, now: datetime) -> int:
    if args.json:
        _print_json(_ticket_json(ticket, now))
    else:
        _print_ticket(ticket, now)
    return 0


def cmd_tickets_list(args: argparse.Namespace, settings: Settings) -> int:
    def body(ctx: _Context) -> int:
        now = ctx.now()
        total, tickets = ctx.tickets().list(statuses=args.status, unit=args.unit,
                                            overdue_at=now if args.overdue else None, text=args.text,
                                            size=args.limit, instructions_pending=args.instructions_pending,
                                            awaiting_instruction=args.awaiting_instruction)
        if args.json:
            for t in tickets:
                print(json.dumps(_ticket_json(t, now), ensure_ascii=False))
            return 0
        for t in tickets:
            print(_ticket_line(t, now))
        print(f"共 {total} 件" + (f"，显示前 {len(tickets)} 件" if total > len(tickets) else ""))
        return 0

    return _run(settings, body)


def cmd_tickets_show(args: argparse.Namespace, settings: Settings) -> int:
    return _run(settings, lambda ctx: _show_ticket(args, ctx.tickets().load(args.id).ticket, ctx.now()))


def cmd_tickets_open(args: argparse.Namespace, settings: Settings) -> int:
    from nlp.taxonomy import load_taxonomy
    from response.tickets import Subject, open_ticket, unit_for_topic

    def body(ctx: _Context) -> int:
        now = ctx.now()
        unit = args.unit
        note = args.note
        if args.topic:
            taxonomy = load_taxonomy(settings.config_file("taxonomy.yaml"))
            if args.topic not in taxonomy.names:
                raise YuqingError(f"未知主题“{args.topic}”，可选：{'、'.join(taxonomy.names)}")
            topic_unit = unit_for_topic(args.topic, {c.name: c.unit for c in taxonomy.categories},
                                        ctx.config.default_unit)
            if unit and unit != topic_unit:
                note = f"责任单位由“{topic_unit}”（主题“{args.topic}”）改为“{unit}”" + (f"：{note}" if note else "")
            unit = unit or topic_unit
        subject = Subject(
            kind="event" if args.event else "post", id=args.event or args.post, title=args.title,
            topic=args.topic, started_at=ctx.when(args.started_at) if args.started_at else None,
            keywords=tuple(k.strip() for k in args.keyword if k.strip()),
        )
        ticket = open_ticket(subject, unit=unit or ctx.config.default_unit, by=args.by, now=now, config=ctx.config,
                             risk_level=args.level, note=note)
        ctx.tickets().create(ticket)
        return _show_ticket(args, ticket, now)

    return _run(settings, body)


def _change(settings: Settings, args: argparse.Namespace, change: Any) -> int:
    def body(ctx: _Context) -> int:
        now = ctx.now()
        saved = ctx.tickets().update(args.id, lambda t: change(ctx, t, now))
        return _show_ticket(args, saved.ticket, now)

    return _run(settings, body)


def cmd_tickets_assign(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import assign

    return _change(settings, args, lambda ctx, t, now: assign(t, args.unit, reason=args.reason, by=args.by, now=now,
                                                              handler=args.handler))


def cmd_tickets_status(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import change_status

    return _change(settings, args, lambda ctx, t, now: change_status(t, args.to, by=args.by, now=now, note=args.note))


def cmd_tickets_level(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import change_level

    level = None if args.to == "none" else args.to
    return _change(settings, args, lambda ctx, t, now: change_level(t, level, config=ctx.config, by=args.by,
                                                                    now=now, reason=args.reason))


def cmd_tickets_export(args: argparse.Namespace, settings: Settings) -> int:
    from response.ledger import write_ledger

    fmt = args.out.suffix.lower().lstrip(".")
    if fmt not in ("csv", "xlsx"):
        raise YuqingError(f"不支持的台账格式：{args.out.name}（请用 .csv 或 .xlsx）")

    def body(ctx: _Context) -> int:
        now = ctx.now()
        since = ctx.day(args.since) if args.since else None
        tickets = [lt.ticket for lt in ctx.tickets().all_loaded(statuses=args.status)
                   if (args.unit is None or lt.ticket.unit == args.unit)
                   and (since is None or lt.ticket.opened_at.astimezone(ctx.tz).date() >= since)]
        part = args.out.with_name(args.out.name + ".part")  # a failed write leaves no half file under the name
        try:
            with part.open("wb") as out:
                rows = write_ledger(tickets, out, "csv" if fmt == "csv" else "xlsx", now=now,
                                    tz=settings.timezone)
            part.replace(args.out)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise YuqingError(f"写入 {args.out} 失败：{exc}") from exc
        print(f"处置台账：{rows} 件处置单 → {args.out}")
        return 0

    return _run(settings, body)


def cmd_tickets_instruct(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import add_instruction

    return _change(settings, args, lambda ctx, t, now: add_instruction(
        t, leader=args.leader, text=args.text, at=ctx.when(args.at), by=args.by, now=now,
        due_at=ctx.when(args.due) if args.due else None))


def cmd_tickets_feedback(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import add_feedback

    return _change(settings, args, lambda ctx, t, now: add_feedback(t, args.no, text=args.text, by=args.by, now=now))


def _secrecy(settings: Settings) -> Any:
    from response.secrecy import load_secrecy_rules

    return load_secrecy_rules(settings.config_file("secrecy.yaml"), settings.paths.config_dir)


def cmd_tickets_respond(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import add_response

    text = _read_text(args.text, args.text_file)
    rules = None if args.draft else _secrecy(settings)
    return _change(settings, args, lambda ctx, t, now: add_response(
        t, channel=args.channel, text=text, at=ctx.when(args.at), by=args.by, now=now,
        findings=rules.review(text) if rules else (), link=args.link, draft=args.draft,
        override_reason=args.override, post_id=args.post_id,
    ))


def cmd_tickets_publish(args: argparse.Namespace, settings: Settings) -> int:
    from response.tickets import TicketError, publish_response

    rules = _secrecy(settings)

    def change(ctx: _Context, t: Ticket, now: datetime) -> Ticket:
        draft = next((r for r in t.responses if r.no == args.no), None)
        if draft is None:
            raise TicketError(f"处置单 {t.id} 没有回应#{args.no}")
        return publish_response(t, args.no, findings=rules.review(draft.text), by=args.by, now=now,
                                at=ctx.when(args.at) if args.at else None, link=args.link,
                                override_reason=args.override)

    return _change(settings, args, change)


def cmd_tickets_review(args: argparse.Namespace, settings: Settings) -> int:
    text = sys.stdin.read() if args.file == "-" else _read_text(None, Path(args.file))
    findings = _secrecy(settings).review(text)
    if args.json:
        _print_json([f.__dict__ for f in findings])
    elif not findings:
        print("保密审查：未发现问题")
    else:
        print(f"保密审查：发现 {len(findings)} 处问题")
        for f in findings:
            print(f"  {f.describe()}")
    return 1 if findings else 0


# ---- 依申请公开 ------------------------------------------------------------------------------------------------

def _clock_json(req: FoiaRequest, today: date, ctx: _Context) -> dict[str, Any]:
    from response.calendar import WorkCalendar
    from response.foia import foia_clock

    c = foia_clock(req, today, WorkCalendar.official(), ctx.config.foia)
    return {
        "state": c.state, "clock_start": c.clock_start and c.clock_start.isoformat(),
        "due": c.due and c.due.isoformat(), "base_due": c.base_due and c.base_due.isoformat(),
        "correction_notice_due": c.correction_notice_due.isoformat(), "excluded_days": c.excluded_days,
        "remaining": c.remaining, "overdue": c.overdue, "uncovered": c.uncovered, "notes": list(c.notes),
    }


def _foia_line(req: FoiaRequest, today: date, ctx: _Context) -> str:
    c = _clock_json(req, today, ctx)
    if c["state"] in ("已答复", "视为放弃"):
        clock = c["state"] if not req.reply else f"已答复({req.reply.type})"
    elif c["due"] is None:
        clock = c["state"]
    elif c["remaining"] < 0:
        clock = f"超期{-c['remaining']}个工作日"
    else:
        clock = f"{c['due']} 前，剩{c['remaining']}个工作日"
    flag = "[日历未覆盖]" if c["uncovered"] else ""
    return f"{req.id}  收到 {req.received_on}  {req.applicant:<8} {clock} {flag} {req.content[:30]}"


def _print_foia(req: FoiaRequest, today: date, ctx: _Context) -> None:
    c = _clock_json(req, today, ctx)
    print(f"依申请公开 {req.id}")
    print(f"  申请人：{req.applicant}" + (f"（{req.contact}）" if req.contact else ""))
    print(f"  内容：{req.content}")
    print(f"  渠道：{req.channel}    收到：{req.received_on}    状态：{c['state']}")
    if c["due"]:
        print(f"  答复期限：{c['due']}（未延期时 {c['base_due']}），截至 {today} 剩 {c['remaining']} 个工作日")
    print(f"  补正告知期限：{c['correction_notice_due']}")
    for note in c["notes"]:
        print(f"  · {note}")
    if req.reply:
        print(f"  答复：{req.reply.type} {req.reply.replied_on}" + ("（超期）" if req.reply.late else ""))
    print("  审计记录：")
    for e in req.audit:
        print(f"    {e.line(ctx.tz)}")


def _show_foia(args: argparse.Namespace, req: FoiaRequest, ctx: _Context, today: date | None = None) -> int:
    today = today or ctx.now().date()
    if args.json:
        _print_json({**req.model_dump(mode="json"), "clock": _clock_json(req, today, ctx)})
    else:
        _print_foia(req, today, ctx)
    return 0


def cmd_foia_register(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import register

    def body(ctx: _Context) -> int:
        req = register(applicant=args.applicant, content=args.content, channel=args.channel,
                       received_on=ctx.day(args.received), by=args.by, now=ctx.now(), contact=args.contact)
        ctx.foia().create(req)
        return _show_foia(args, req, ctx)

    return _run(settings, body)


def cmd_foia_list(args: argparse.Namespace, settings: Settings) -> int:
    def body(ctx: _Context) -> int:
        today = ctx.day(args.on)
        total, reqs = ctx.foia().list(open_only=args.open, size=args.limit)
        for r in reqs:
            if args.json:
                print(json.dumps({**r.model_dump(mode="json"), "clock": _clock_json(r, today, ctx)},
                                 ensure_ascii=False))
            else:
                print(_foia_line(r, today, ctx))
        if not args.json:
            print(f"共 {total} 件" + (f"，显示前 {len(reqs)} 件（--limit）" if total > len(reqs) else ""))
        return 0

    return _run(settings, body)


def cmd_foia_show(args: argparse.Namespace, settings: Settings) -> int:
    return _run(settings, lambda ctx: _show_foia(args, ctx.foia().load(args.id).request, ctx, ctx.day(args.on)))


def _foia_change(settings: Settings, args: argparse.Namespace, change: Any) -> int:
    def body(ctx: _Context) -> int:
        from response.calendar import WorkCalendar

        cal = WorkCalendar.official()
        saved = ctx.foia().update(args.id, lambda r: change(ctx, r, ctx.now(), cal))
        return _show_foia(args, saved.request, ctx)

    return _run(settings, body)


def cmd_foia_extend(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import extend

    return _foia_change(settings, args, lambda ctx, r, now, cal: extend(
        r, approved_by=args.approved_by, approved_on=ctx.day(args.on), reason=args.reason, by=args.by, now=now,
        cal=cal, cfg=ctx.config.foia, working_days=args.days))


def cmd_foia_correct(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import receive_correction, request_correction

    def change(ctx: _Context, r: FoiaRequest, now: datetime, cal: Any) -> FoiaRequest:
        if args.notice_on:
            if not args.items:
                raise YuqingError("告知补正须用 --items 说明需补正的事项")
            return request_correction(r, notified_on=ctx.day(args.notice_on), items=args.items, by=args.by, now=now,
                                      cal=cal, cfg=ctx.config.foia,
                                      correction_due=ctx.day(args.due) if args.due else None)
        return receive_correction(r, corrected_on=ctx.day(args.received_on), by=args.by, now=now,
                                  late_reason=args.late_reason)

    return _foia_change(settings, args, change)


def cmd_foia_consult(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import finish_consultation, start_consultation

    def change(ctx: _Context, r: FoiaRequest, now: datetime, cal: Any) -> FoiaRequest:
        if args.sent:
            return start_consultation(r, third_party=args.third_party, sent_on=ctx.day(args.sent), by=args.by,
                                      now=now)
        return finish_consultation(r, third_party=args.third_party, answered_on=ctx.day(args.answered), by=args.by,
                                   now=now)

    return _foia_change(settings, args, change)


def cmd_foia_abandon(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import mark_abandoned

    return _foia_change(settings, args, lambda ctx, r, now, cal: mark_abandoned(
        r, on=ctx.day(args.on), by=args.by, now=now))


def cmd_foia_template(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import reply_template

    def body(ctx: _Context) -> int:
        req = ctx.foia().load(args.id).request
        print(reply_template(req, args.type, ctx.config.foia, details=args.details), end="")
        return 0

    return _run(settings, body)


def cmd_foia_reply(args: argparse.Namespace, settings: Settings) -> int:
    from response.foia import reply

    text = _read_text(args.text, args.text_file)
    return _foia_change(settings, args, lambda ctx, r, now, cal: reply(
        r, reply_type=args.type, text=text, replied_on=ctx.day(args.on), by=args.by, now=now, cal=cal,
        cfg=ctx.config.foia))


def cmd_foia_reminders(args: argparse.Namespace, settings: Settings) -> int:
    from response.calendar import WorkCalendar
    from response.foia import reminders
    from response.reminders import open_requests

    def body(ctx: _Context) -> int:
        today = ctx.day(args.on)
        cal = WorkCalendar.official()
        reqs = open_requests(ctx.foia())  # every open request, page by page
        found = [(r, m) for r in reqs for m in reminders(r, today, cal, ctx.config.foia)]
        if args.json:
            for r, m in found:
                print(json.dumps({**m.__dict__, "applicant": r.applicant, "due": m.due and m.due.isoformat()},
                                 ensure_ascii=False))
        else:
            for r, m in found:
                print(f"[{m.kind}] {m.message}（{r.applicant}）")
            print(f"共 {len(found)} 条提醒（{today}）")
        return 0

    return _run(settings, body)


def cmd_tickets_auto_open(args: argparse.Namespace, settings: Settings) -> int:
    from response.jobs import ResponseJobs

    def body(ctx: _Context) -> int:
        report = ResponseJobs.from_settings(settings).auto_open(ctx.client, ctx.now())
        print(f"按规则新建 {len(report.opened)} 件，调高等级 {len(report.raised)} 件，留待下次 {report.skipped} 件"
              + "".join(f"\n  新建 {i}" for i in report.opened) + "".join(f"\n  调级 {i}" for i in report.raised))
        return 0

    return _run(settings, body)


def cmd_tickets_check_silence(args: argparse.Namespace, settings: Settings) -> int:
    from response.jobs import ResponseJobs

    def body(ctx: _Context) -> int:
        report = ResponseJobs.from_settings(settings).silence(ctx.client, ctx.now())
        print(f"检查 {report.checked} 件，更新 {len(report.changed)} 件，失声 {len(report.silent)} 件，"
              f"留待下次 {report.skipped} 件" + "".join(f"\n  失声 {i}" for i in report.silent))
        return 0

    return _run(settings, body)
