"""依申请公开 (政府信息公开申请): registration, the statutory clock, 补正, third-party consultation, extension,
replies per 第三十六条 and reminders — pure functions over :class:`FoiaRequest`.

The clock (《中华人民共和国政府信息公开条例》2019):

- 第三十一条: the receipt date depends on the channel (当面: the day it is handed in; 邮寄: the day it is signed
  for; 网上/传真: the day receipt is confirmed). It is entered as ``received_on``.
- 第三十三条: reply within 20 working days "自收到申请之日起". The receipt day is not counted (期间开始之日不计入,
  民法典 第二百零一条, and the practice of the 政府信息公开 offices): the first working day after receipt is day
  1, the 20th working day after it is the last day. Working days follow the official calendar incl. 调休
  (:mod:`response.calendar`). One extension of at most 20 working days with the approval of the head of the
  政府信息公开工作机构, granted before the original deadline and notified to the applicant.
- 第三十条: an unclear request gets one 补正 notice (一次性告知) within 7 working days of receipt; the clock then
  restarts from the day the corrected application is received (that day not counted). Without a correction
  by the period given, the request counts as withdrawn (视为放弃申请).
- 第三十二条/第三十三条第二款: time spent consulting a third party (or another agency) is not counted: the
  working days after the day the 征求意见书 was sent, up to and including the day the answer came, are
  skipped. The third party has 15 working days to answer.
- 第三十六条/第三十七条: the reply types (:data:`REPLY_TYPES`); every reply states the remedies — 行政复议 within
  60 days and 行政诉讼 within 6 months (第五十一条) — and is refused without them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from response.audit import AuditEntry, required
from response.audit import check_append_only as _check_trail
from response.calendar import DateSpan, WorkCalendar
from response.config import FoiaSettings, Remedy
from yuqing.errors import YuqingError

FoiaChannel = Literal["当面提交", "邮寄", "网上申请", "传真", "电子邮件"]
FOIA_CHANNELS: tuple[FoiaChannel, ...] = ("当面提交", "邮寄", "网上申请", "传真", "电子邮件")

ReplyType = Literal["已主动公开", "予以公开", "部分公开", "不予公开", "信息不存在", "非本机关负责公开", "重复申请",
                    "按特别规定办理"]
# Each reply type: the article it rests on and what the reply must tell the applicant.
REPLY_TYPES: dict[ReplyType, tuple[str, str]] = {
    "已主动公开": ("第三十六条第（一）项", "所申请公开信息已经主动公开，告知获取该政府信息的方式、途径"),
    "予以公开": ("第三十六条第（二）项",
                 "所申请公开信息可以公开，向申请人提供该政府信息，或者告知获取的方式、途径和时间"),
    "部分公开": ("第三十七条", "所申请公开信息含有不应当公开的内容但能够区分处理的，提供可以公开的部分，并说明理由"),
    "不予公开": ("第三十六条第（三）项", "依据本条例的规定决定不予公开，告知申请人不予公开并说明理由"),
    "信息不存在": ("第三十六条第（四）项", "经检索没有所申请公开信息，告知申请人该政府信息不存在"),
    "非本机关负责公开": ("第三十六条第（五）项",
                         "所申请公开信息不属于本机关负责公开，告知申请人并说明理由；能够确定负责公开的机关的，告知其名称、联系方式"),
    "重复申请": ("第三十六条第（六）项",
                 "已就申请人提出的申请作出答复、申请人重复申请公开相同政府信息的，告知不予重复处理"),
    "按特别规定办理": ("第三十六条第（七）项",
                       "所申请公开信息属于工商、不动产登记资料等，有关法律、行政法规对信息的获取有特别规定的，告知依照其规定办理"),
}

ClockState = Literal["办理中", "待补正", "征求意见中", "已答复", "视为放弃"]


class FoiaError(YuqingError):
    """An illegal step on a 依申请公开 request (Chinese message for the user)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CorrectionNotice(_Model):
    notified_on: date
    items: str  # what must be corrected (一次性告知)
    correction_due: date  # the period given to the applicant
    corrected_on: date | None = None


class Consultation(_Model):
    third_party: str
    sent_on: date
    answered_on: date | None = None

    def span(self, today: date, limit: date | None = None) -> DateSpan | None:
        """The days not counted: after sending, up to the answer (open: up to today), and at most up to ``limit``
        (the end of the third party's statutory time to answer: after it the agency decides, 第三十二条, so a
        consultation nobody closed does not stop the clock for good)."""
        end = self.answered_on or today
        if limit is not None:
            end = min(end, limit)
        if end <= self.sent_on:
            return None
        return DateSpan(self.sent_on + timedelta(days=1), end)


class Extension(_Model):
    approved_by: str
    approved_on: date
    working_days: int = Field(ge=1)
    reason: str


class FoiaReply(_Model):
    type: ReplyType
    replied_on: date
    text: str
    by: str
    late: bool = False


class FoiaRequest(_Model):
    id: str
    applicant: str
    contact: str | None = None
    content: str
    channel: FoiaChannel
    received_on: date
    registered_by: str
    registered_at: datetime
    correction: CorrectionNotice | None = None
    consultations: tuple[Consultation, ...] = ()
    extension: Extension | None = None
    reply: FoiaReply | None = None
    abandoned_on: date | None = None
    audit: tuple[AuditEntry, ...] = ()


@dataclass(frozen=True)
class FoiaClock:
    """Where a request stands on ``today``."""

    state: ClockState
    clock_start: date | None  # receipt, or receipt of the corrected application; None while awaiting it
    due: date | None  # the last day to reply (extension and excluded days included)
    base_due: date | None  # the last day without the extension (an extension must be approved by then)
    correction_notice_due: date  # the last day for a 补正 notice
    excluded_days: int  # working days not counted (third-party consultation)
    remaining: int | None  # working days left after today (0: today is the last day; negative: overdue)
    uncovered: bool  # some counted day lies beyond the official calendar data (日历未覆盖)
    notes: tuple[str, ...] = ()

    @property
    def overdue(self) -> bool:
        return self.remaining is not None and self.remaining < 0 and self.state not in ("已答复", "视为放弃")


@dataclass(frozen=True)
class Reminder:
    request_id: str
    kind: Literal["答复期限临近", "答复已超期", "补正期限已过", "日历未覆盖"]
    due: date | None
    remaining: int | None
    message: str


def _req(value: str | None, what: str) -> str:
    return required(value, what, FoiaError)


def _append(req: FoiaRequest, entry: AuditEntry, **changes: object) -> FoiaRequest:
    return req.model_copy(update={**changes, "audit": (*req.audit, entry)})


def request_id_for(applicant: str, content: str, received_on: date, registered_at: datetime) -> str:
    digest = hashlib.sha1(f"{applicant}\x00{content}\x00{registered_at.isoformat()}".encode()).hexdigest()[:6]
    return f"YS-{received_on:%Y%m%d}-{digest}"


def register(*, applicant: str, content: str, channel: FoiaChannel, received_on: date, by: str, now: datetime,
             contact: str | None = None) -> FoiaRequest:
    if channel not in FOIA_CHANNELS:
        raise FoiaError(f"未知申请渠道“{channel}”，可选：{'、'.join(FOIA_CHANNELS)}")
    if received_on > now.date():
        raise FoiaError(f"收到申请日期 {received_on} 晚于今天")
    applicant, content, by = _req(applicant, "申请人"), _req(content, "申请内容"), _req(by, "操作人")
    req = FoiaRequest(
        id=request_id_for(applicant, content, received_on, now), applicant=applicant, contact=contact or None,
        content=content, channel=channel, received_on=received_on, registered_by=by, registered_at=now,
    )
    return _append(req, AuditEntry(at=now, by=by, action="登记", to_value="办理中",
                                   note=f"{channel}，{received_on:%Y-%m-%d} 收到"))


def _not_final(req: FoiaRequest) -> None:
    if req.reply is not None:
        raise FoiaError(f"申请 {req.id} 已于 {req.reply.replied_on} 答复")
    if req.abandoned_on is not None:
        raise FoiaError(f"申请 {req.id} 已视为放弃（{req.abandoned_on}）")


def request_correction(req: FoiaRequest, *, notified_on: date, items: str, by: str, now: datetime,
                       cal: WorkCalendar, cfg: FoiaSettings, correction_due: date | None = None) -> FoiaRequest:
    """The one 补正 notice (第三十条): within 7 working days of receipt, naming everything to correct."""
    _not_final(req)
    by, items = _req(by, "操作人"), _req(items, "需补正的事项")
    if req.correction is not None:
        raise FoiaError(f"申请 {req.id} 已于 {req.correction.notified_on} 告知补正；补正应一次性告知，不能再次要求")
    if notified_on < req.received_on:
        raise FoiaError(f"补正告知日期 {notified_on} 早于收到申请日期 {req.received_on}")
    notice_due = cal.add_working_days(req.received_on, cfg.correction_notice_working_days).day
    if notified_on > notice_due:
        raise FoiaError(
            f"补正告知应在收到申请之日起{cfg.correction_notice_working_days}个工作日内（{notice_due} 前）作出，"
            f"{notified_on} 已超期；请按原申请办理答复")
    due = correction_due or cal.add_working_days(notified_on, cfg.correction_period_working_days).day
    if due <= notified_on:
        raise FoiaError(f"补正期限 {due} 须晚于告知日期 {notified_on}")
    notice = CorrectionNotice(notified_on=notified_on, items=items, correction_due=due)
    return _append(req, AuditEntry(at=now, by=by, action="告知补正", from_value="办理中", to_value="待补正",
                                   note=f"{items}（补正期限 {due}）"), correction=notice)


def receive_correction(req: FoiaRequest, *, corrected_on: date, by: str, now: datetime,
                       late_reason: str | None = None) -> FoiaRequest:
    """The corrected application arrived: the 20 working days count again from ``corrected_on``."""
    _not_final(req)
    by = _req(by, "操作人")
    notice = req.correction
    if notice is None:
        raise FoiaError(f"申请 {req.id} 未告知补正")
    if notice.corrected_on is not None:
        raise FoiaError(f"申请 {req.id} 已于 {notice.corrected_on} 收到补正")
    if corrected_on < notice.notified_on:
        raise FoiaError(f"收到补正日期 {corrected_on} 早于补正告知日期 {notice.notified_on}")
    if corrected_on > now.date():
        raise FoiaError(f"收到补正日期 {corrected_on} 晚于今天")
    note = f"{corrected_on:%Y-%m-%d} 收到补正，答复期限自该日起重新计算"
    if corrected_on > notice.correction_due:
        late_reason = _req(late_reason, f"逾期补正（补正期限 {notice.correction_due}）的正当理由")
        note += f"；逾期补正，理由：{late_reason}"
    return _append(req, AuditEntry(at=now, by=by, action="收到补正", from_value="待补正", to_value="办理中",
                                   note=note), correction=notice.model_copy(update={"corrected_on": corrected_on}))


def mark_abandoned(req: FoiaRequest, *, on: date, by: str, now: datetime) -> FoiaRequest:
    """No correction by the period given and no good reason: 视为放弃申请 (第三十条)."""
    _not_final(req)
    by = _req(by, "操作人")
    notice = req.correction
    if notice is None or notice.corrected_on is not None:
        raise FoiaError(f"申请 {req.id} 没有待补正的告知，不能视为放弃")
    if on <= notice.correction_due:
        raise FoiaError(f"补正期限 {notice.correction_due} 未过，不能视为放弃")
    return _append(req, AuditEntry(at=now, by=by, action="视为放弃", from_value="待补正", to_value="视为放弃",
                                   note=f"补正期限 {notice.correction_due} 届满未补正"), abandoned_on=on)


def start_consultation(req: FoiaRequest, *, third_party: str, sent_on: date, by: str, now: datetime) -> FoiaRequest:
    """A 征求意见书 sent to a third party or another agency (第三十二条): its time is not counted."""
    _not_final(req)
    by, third_party = _req(by, "操作人"), _req(third_party, "第三方")
    start = req.correction.corrected_on if req.correction and req.correction.corrected_on else req.received_on
    if sent_on < start:
        raise FoiaError(f"征求意见日期 {sent_on} 早于答复期限起算日 {start}")
    if req.correction is not None and req.correction.corrected_on is None:
        raise FoiaError(f"申请 {req.id} 待补正，补正后再征求第三方意见")
    if any(c.third_party == third_party and c.answered_on is None for c in req.consultations):
        raise FoiaError(f"已在征求“{third_party}”的意见")
    c = Consultation(third_party=third_party, sent_on=sent_on)
    return _append(req, AuditEntry(at=now, by=by, action="征求意见", to_value=third_party,
                                   note=f"{sent_on:%Y-%m-%d} 发出征求意见书，所需时间不计入答复期限"),
                   consultations=(*req.consultations, c))


def finish_consultation(req: FoiaRequest, *, third_party: str, answered_on: date, by: str,
                        now: datetime) -> FoiaRequest:
    _not_final(req)
    by = _req(by, "操作人")
    open_ = [i for i, c in enumerate(req.consultations) if c.third_party == third_party and c.answered_on is None]
    if not open_:
        raise FoiaError(f"没有正在征求“{third_party}”意见的记录")
    i = open_[0]
    c = req.consultations[i]
    if answered_on < c.sent_on:
        raise FoiaError(f"回复日期 {answered_on} 早于发出日期 {c.sent_on}")
    done = c.model_copy(update={"answered_on": answered_on})
    consultations = (*req.consultations[:i], done, *req.consultations[i + 1:])
    return _append(req, AuditEntry(at=now, by=by, action="收到意见", from_value=third_party,
                                   note=f"{answered_on:%Y-%m-%d} 收到意见（或期满），恢复计算答复期限"),
                   consultations=consultations)


def extend(req: FoiaRequest, *, approved_by: str, approved_on: date, reason: str, by: str, now: datetime,
           cal: WorkCalendar, cfg: FoiaSettings, working_days: int | None = None) -> FoiaRequest:
    """The one extension (第三十三条): approved by the head of the 政府信息公开工作机构 before the deadline."""
    _not_final(req)
    by = _req(by, "操作人")
    approved_by, reason = _req(approved_by, "批准人（政府信息公开工作机构负责人）"), _req(reason, "延期理由")
    days = cfg.extension_working_days if working_days is None else working_days
    if req.extension is not None:
        raise FoiaError(f"申请 {req.id} 已于 {req.extension.approved_on} 延期一次，不能再次延期")
    if not 1 <= days <= cfg.extension_working_days:
        raise FoiaError(f"延长的期限最长不得超过{cfg.extension_working_days}个工作日")
    clock = foia_clock(req, approved_on, cal, cfg)
    if clock.base_due is None:
        raise FoiaError(f"申请 {req.id} 待补正，答复期限尚未起算，无需延期")
    if approved_on > clock.base_due:
        raise FoiaError(f"延期须在答复期限 {clock.base_due} 届满前批准，{approved_on} 已过期")
    ext = Extension(approved_by=approved_by, approved_on=approved_on, working_days=days, reason=reason)
    new_due = foia_clock(req.model_copy(update={"extension": ext}), approved_on, cal, cfg).due
    return _append(req, AuditEntry(at=now, by=by, action="延期", from_value=str(clock.due), to_value=str(new_due),
                                   note=f"延长{days}个工作日，{approved_by} 批准：{reason}；须告知申请人"),
                   extension=ext)


def _remaining(cal: WorkCalendar, day: date, due: date, spans: Sequence[DateSpan]) -> int:
    """Working days left after ``day`` up to ``due`` (0: ``day`` is the last day); negative once ``day`` is past
    ``due``, also on a weekend or holiday right after it (no working day has passed yet, but the deadline has)."""
    left = cal.working_days_between(day, due, skip=spans)
    return min(left, -1) if day > due else left


def foia_clock(req: FoiaRequest, today: date, cal: WorkCalendar, cfg: FoiaSettings) -> FoiaClock:
    """The request's deadlines and state on ``today`` (pure)."""
    notice = cal.add_working_days(req.received_on, cfg.correction_notice_working_days)
    notes: list[str] = []
    uncovered = notice.uncovered
    if req.abandoned_on is not None:
        return FoiaClock("视为放弃", None, None, None, notice.day, 0, None, uncovered, ("补正期限届满未补正",))
    if req.correction is not None and req.correction.corrected_on is None and req.reply is None:
        c = req.correction
        notes.append(f"已于 {c.notified_on} 告知补正，期限 {c.correction_due}；收到补正后重新计算答复期限")
        if today > c.correction_due:
            notes.append("补正期限已过，未收到补正：可视为放弃申请")
        return FoiaClock("待补正", None, None, None, notice.day, 0, None, uncovered, tuple(notes))
    start = req.correction.corrected_on if req.correction and req.correction.corrected_on else req.received_on
    spans = [s for s in (c.span(today, cal.add_working_days(c.sent_on, cfg.third_party_working_days).day)
                         for c in req.consultations) if s is not None]
    base = cal.add_working_days(start, cfg.answer_working_days, skip=spans)
    extra = req.extension.working_days if req.extension else 0
    due = cal.add_working_days(start, cfg.answer_working_days + extra, skip=spans)
    uncovered = uncovered or base.uncovered or due.uncovered
    excluded = sum(cal.working_days_between(s.first - timedelta(days=1), s.last) for s in spans)
    state: ClockState = "办理中"
    if req.reply is not None:
        state = "已答复"
        remaining = _remaining(cal, req.reply.replied_on, due.day, ())
    else:
        remaining = _remaining(cal, today, due.day, spans)
        uncovered = uncovered or cal.uncovered_between(today, due.day)
        if any(c.answered_on is None for c in req.consultations):
            state = "征求意见中"
            notes.append("正在征求第三方意见，期间不计入答复期限（答复期限随之顺延）")
            for q in req.consultations:
                limit = cal.add_working_days(q.sent_on, cfg.third_party_working_days).day
                if q.answered_on is None and today > limit:
                    notes.append(f"“{q.third_party}”逾期（{limit}）未提出意见，由本机关依法决定（第三十二条）")
    if req.correction and req.correction.corrected_on:
        notes.append(f"{req.correction.corrected_on} 收到补正，答复期限自该日起计算")
    if req.extension:
        notes.append(f"已延期{req.extension.working_days}个工作日（{req.extension.approved_by} 批准）")
    if excluded:
        notes.append(f"征求意见所需 {excluded} 个工作日不计入")
    if uncovered:
        notes.append("日历未覆盖：期限涉及尚未收录放假安排的年份，已按周一至周五计算，请人工核对")
    return FoiaClock(state, start, due.day, base.day, notice.day, excluded, remaining, uncovered, tuple(notes))


_CN_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """1..99 in Chinese numerals (60 -> 六十, 6 -> 六, 15 -> 十五)."""
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    head = "" if tens == 0 else ("十" if tens == 1 else _CN_DIGITS[tens] + "十")
    return head + (_CN_DIGITS[ones] if ones else "")


def remedy_text(remedy: Remedy) -> str:
    return (
        f"如对本答复不服，可以自收到本答复之日起{remedy.review_days}日内向{remedy.review_body}申请行政复议，"
        f"或者自收到本答复之日起{remedy.litigation_months}个月内向{remedy.court}提起行政诉讼。"
    )


def missing_remedy(text: str, remedy: Remedy) -> list[str]:
    """What the reply text lacks of the remedy statement (empty: complete)."""
    def number(n: int) -> str:
        return f"(?:{n}|{chinese_number(n)})"

    checks = [
        ("行政复议", r"行政复议"),
        (f"{remedy.review_days}日内申请行政复议的期限", rf"{number(remedy.review_days)}\s*(?:日|天)"),
        ("行政诉讼", r"行政诉讼"),
        (f"{remedy.litigation_months}个月内提起行政诉讼的期限", rf"{number(remedy.litigation_months)}\s*个\s*月"),
    ]
    return [what for what, pattern in checks if not re.search(pattern, text)]


def reply_template(req: FoiaRequest, reply_type: ReplyType, cfg: FoiaSettings, *, details: str = "") -> str:
    """A reply letter (政府信息公开申请答复书) for ``reply_type``, remedy statement included."""
    article, what = REPLY_TYPES[reply_type]
    body = details.strip() or f"〔请填写：{what}〕"
    return (
        f"政府信息公开申请答复书\n\n{req.applicant}：\n"
        f"{cfg.agency}于{req.received_on:%Y年%m月%d日}收到您（单位）提出的政府信息公开申请，申请获取“{req.content}”。\n"
        f"经审查，根据《中华人民共和国政府信息公开条例》{article}的规定，答复如下：\n{body}\n\n"
        f"{remedy_text(cfg.remedy)}\n\n{cfg.agency}\n"
    )


def reply(req: FoiaRequest, *, reply_type: ReplyType, text: str, replied_on: date, by: str, now: datetime,
          cal: WorkCalendar, cfg: FoiaSettings) -> FoiaRequest:
    """Record the reply; refused without the remedy statement. A reply after the deadline is recorded as late."""
    _not_final(req)
    by = _req(by, "操作人")
    if reply_type not in REPLY_TYPES:
        raise FoiaError(f"未知答复类型“{reply_type}”，可选：{'、'.join(REPLY_TYPES)}")
    missing = missing_remedy(text, cfg.remedy)
    if missing:
        raise FoiaError(f"答复书缺少救济途径告知：{'、'.join(missing)}（例如：{remedy_text(cfg.remedy)}）")
    if replied_on < req.received_on:
        raise FoiaError(f"答复日期 {replied_on} 早于收到申请日期 {req.received_on}")
    if replied_on > now.date():
        raise FoiaError(f"答复日期 {replied_on} 晚于今天")
    if req.correction is not None and req.correction.corrected_on is None and reply_type not in (
            "非本机关负责公开", "重复申请", "按特别规定办理"):
        raise FoiaError(f"申请 {req.id} 待补正：收到补正（或视为放弃）前只能作出程序性答复")
    clock = foia_clock(req, replied_on, cal, cfg)
    late = clock.due is not None and replied_on > clock.due
    r = FoiaReply(type=reply_type, replied_on=replied_on, text=text, by=by, late=late)
    note = f"{REPLY_TYPES[reply_type][0]}，{replied_on:%Y-%m-%d} 答复" + (f"；超过答复期限 {clock.due}" if late else "")
    return _append(req, AuditEntry(at=now, by=by, action="答复", from_value=clock.state, to_value=reply_type,
                                   note=note), reply=r)


def reminders(req: FoiaRequest, today: date, cal: WorkCalendar, cfg: FoiaSettings) -> list[Reminder]:
    """What a person must be told on ``today``: a deadline within ``remind_within_working_days`` working days,
    an overdue one, a lapsed 补正 period, a clock beyond the calendar data. Messages name the request by its id,
    never the applicant (personal data: the reader adds the name where its role may see it)."""
    clock = foia_clock(req, today, cal, cfg)
    out: list[Reminder] = []
    if clock.state in ("已答复", "视为放弃"):
        return out
    if clock.state == "待补正" and req.correction is not None and today > req.correction.correction_due:
        due = req.correction.correction_due
        out.append(Reminder(req.id, "补正期限已过", due, None,
                            f"申请 {req.id} 补正期限 {due} 已过，未收到补正"))
    if clock.due is not None and clock.remaining is not None:
        if clock.remaining < 0:
            out.append(Reminder(
                req.id, "答复已超期", clock.due, clock.remaining,
                f"申请 {req.id} 答复期限 {clock.due} 已过 {-clock.remaining} 个工作日"))
        elif clock.remaining <= cfg.remind_within_working_days:
            when = "今天到期" if clock.remaining == 0 else f"还剩 {clock.remaining} 个工作日"
            out.append(Reminder(req.id, "答复期限临近", clock.due, clock.remaining,
                                f"申请 {req.id} 答复期限 {clock.due}，{when}"))
    if clock.uncovered:
        out.append(Reminder(req.id, "日历未覆盖", clock.due, clock.remaining,
                            f"申请 {req.id} 的期限涉及尚未收录放假安排的年份，请人工核对 {clock.due}"))
    return out


def check_append_only(before: FoiaRequest | None, after: FoiaRequest) -> None:
    _check_trail(f"申请 {after.id}", before.audit if before else (), after.audit,
                 changed=before is not None and after != before)
