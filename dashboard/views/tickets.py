"""处置跟踪: tickets by status with their deadline countdown (overdue in red), a unit filter; open a ticket from
an event (``?event=<id>``, the 事件详情 page links here), assign with a reason, change status, record a response
after its 保密审查, publish a draft (with an override reason when findings remain); 领导批示 (a leader records
their own, an officer one given elsewhere) and the 落实反馈 on it, which a ticket needs before it closes.
``?id=<ticket>`` opens one.

Thin: the rules are ``response.tickets`` / ``response.event_tickets``, the helpers ``dashboard.tracking``.
Every change is saved against the version the user saw, so a concurrent edit is reported, never overwritten.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import accounts, components, tracking
from dashboard import format as fmt
from nlp.taxonomy import load_taxonomy
from response.config import CHANNELS, RISK_LEVELS, load_response_config
from response.event_tickets import subject_for_event, ticket_id_for_event, unit_for_event
from response.secrecy import load_secrecy_rules
from response.service import LoadedTicket
from response.tickets import (
    STATUSES,
    TRANSITIONS,
    SecrecyBlocked,
    Ticket,
    TicketError,
    add_feedback,
    add_instruction,
    add_response,
    assign,
    change_status,
    deadline_lines,
    open_ticket,
    publish_response,
)
from yuqing.errors import YuqingError

T = TypeVar("T")
EVENT_PAGE = Path(__file__).resolve().parent / "event.py"  # 事件详情 (issue 8), when present
FLASH = "tickets_flash"
ACTIVE = ("待研判", "处置中", "已回应")
CLOSED = ("已办结", "不予处置")
LIST_ACTIVE, LIST_CLOSED = 1000, 100
SEEN = "ticket_seen"  # the version of the selected ticket the user last saw (changes are saved against it)

viewer = components.require_page("tickets")
backend = components.backend_or_stop()
settings = backend.settings
tz = ZoneInfo(settings.timezone)
now = datetime.now(tz).replace(microsecond=0)
acting = tracking.can_act(viewer)
instructing = tracking.can_instruct(viewer)
mask = components.viewer_mask()  # leaders and analysts: personal data in titles masked


def es(func: Callable[[], T]) -> T:
    return components.es_or_stop(backend, func)


try:
    config = load_response_config(settings.config_file("response.yaml"))
    rules = load_secrecy_rules(settings.config_file("secrecy.yaml"), settings.paths.config_dir)
    taxonomy = load_taxonomy(settings.config_file("taxonomy.yaml"))
except YuqingError as exc:
    components.fail(f"处置跟踪配置有误：{fmt.error_text(exc)}")
topic_units = {c.name: c.unit for c in taxonomy.categories}
svc = es(lambda: tracking.services(backend.client, settings.elasticsearch))
by = tracking.operator(viewer) if viewer is not None else ""

st.title("处置跟踪")
flash = st.session_state.pop(FLASH, None)
if flash:
    st.success(flash)
if not acting and viewer is not None:
    st.info(tracking.READ_ONLY_NOTE.format(role=viewer.role_label)
            + ("您可在处置单下方记录领导批示。" if instructing else ""))


def leader_accounts() -> list[str]:
    """The display names of the leader accounts in users.yaml (the sign-in gate read it on this run already)."""
    return [u.display_name for u in accounts.load_users(accounts.users_path(settings)).users if u.role == "leader"]


def show_ticket(ticket_id: str) -> None:
    st.query_params["id"] = ticket_id
    st.session_state.pop("ticket_pick", None)


# ---- open a ticket from an event ---------------------------------------------------------------------------
wanted_event = st.query_params.get("event")
if acting:
    with st.expander("从事件创建处置单", expanded=bool(wanted_event)):
        events = es(lambda: tracking.open_events(backend.client, settings.elasticsearch.index_prefix))
        if wanted_event and wanted_event not in {e.event_id for e in events}:
            asked = wanted_event
            extra = es(lambda: tracking.event_by_id(backend.client, settings.elasticsearch.index_prefix, asked))
            if extra is None:
                st.warning(f"没有找到事件 {fmt.md_escape(wanted_event)}。")
            else:
                events.insert(0, extra)
        if not events:
            st.caption("暂无进行中的事件（事件由采集后的聚类生成）。")
        else:
            by_id = {e.event_id: e for e in events}
            ids = list(by_id)
            start = ids.index(wanted_event) if wanted_event in by_id else 0
            eid = st.selectbox("事件", ids, index=start, format_func=lambda i: tracking.event_label(by_id[i]),
                               key="open_event")
            event = by_id[eid]
            existing = es(lambda: svc.tickets.get(ticket_id_for_event(eid)))
            if existing is not None:
                t = existing.ticket
                st.info(f"该事件已有处置单 {t.id}（{t.status}，{fmt.md_escape(t.unit)}）。")
                if st.button("查看该处置单", key="open_existing"):
                    show_ticket(t.id)
                    st.rerun()
            else:
                default_unit = unit_for_event(event, topic_units, config.default_unit)
                with st.form(f"open_ticket_{eid}"):
                    title = st.text_input("标题", value=event.title, key=f"open_title_{eid}")
                    left, right = st.columns(2)
                    unit = left.text_input("责任单位", value=default_unit, key=f"open_unit_{eid}",
                                           help="默认按事件主题确定（谁实施谁公开）；修改须说明理由")
                    levels = list(RISK_LEVELS)
                    level = right.selectbox("风险等级", levels, index=levels.index(event.risk_level),
                                            format_func=tracking.level_label, key=f"open_level_{eid}")
                    keywords = st.text_input("回应关键词（失声检查用，逗号分隔）", value="，".join(event.keywords[:5]),
                                             key=f"open_keywords_{eid}")
                    reason = st.text_input("改派理由（责任单位与默认不同时必填）", key=f"open_reason_{eid}")
                    submitted = st.form_submit_button("创建处置单", type="primary")
                if submitted:
                    words = tuple(w.strip() for w in keywords.replace(",", "，").split("，") if w.strip())
                    note = None
                    if unit.strip() != default_unit:
                        note = f"责任单位由“{default_unit}”改为“{unit.strip()}”：{reason.strip()}"
                    try:
                        if note is not None and not reason.strip():
                            raise TicketError("责任单位与默认不同，须填写改派理由")
                        subject = subject_for_event(event).model_copy(update={"keywords": words})
                        ticket = open_ticket(subject, unit=unit, by=by, now=now, config=config,
                                             risk_level=level, title=title, note=note)
                        es(lambda: svc.tickets.create(ticket))
                    except TicketError as exc:
                        st.error(str(exc))
                    else:
                        st.session_state[FLASH] = f"已创建处置单 {ticket.id}。"
                        show_ticket(ticket.id)
                        st.rerun()

# ---- the list ---------------------------------------------------------------------------------------------
# Every ticket still in hand (soonest deadline first) and the last closed ones (newest first).
active_total, active = es(lambda: svc.tickets.list(statuses=list(ACTIVE), size=LIST_ACTIVE))
closed_total, closed = es(lambda: svc.tickets.list(statuses=list(CLOSED), size=LIST_CLOSED, newest_first=True))
tickets = active + closed
by_status = es(svc.tickets.count_by_status)
units = sorted({t.unit for t in tickets})
with st.sidebar:
    st.header("筛选")
    statuses = st.multiselect("状态", list(STATUSES), key="tickets_status", placeholder="全部状态")
    unit_choice = st.selectbox("责任单位", ["全部", *units], key="tickets_unit")
    overdue_only = st.checkbox("仅看超期", key="tickets_overdue")
    instructed_only = st.checkbox("仅看批示待反馈", key="tickets_instructed")
    briefed_only = st.checkbox("仅看专报待批示", key="tickets_briefed",
                               help="已呈报舆情专报、此后尚未记录领导批示的处置单")
    # a leader follows what became of their own instructions
    mine = viewer is not None and viewer.role == "leader" and st.checkbox("只看我批示的", key="tickets_mine")
shown = tracking.filter_tickets(tickets, statuses=statuses, unit=None if unit_choice == "全部" else unit_choice,
                                overdue_only=overdue_only, now=now, instructions_pending=instructed_only,
                                instructed_by=viewer.display_name if mine and viewer is not None else None,
                                awaiting_instruction=briefed_only)

cols = st.columns(len(STATUSES) + 2)
for col, status in zip(cols, STATUSES, strict=False):
    col.metric(status, by_status.get(status, 0))
cols[-2].metric("超期", sum(1 for t in active if tracking.countdown(t, now)[1]))
cols[-1].metric("批示待反馈", sum(1 for t in tickets if t.pending_instructions()))
if active_total > len(active) or closed_total > len(closed):
    st.caption(f"显示期限最近的 {len(active)} 件（共 {active_total} 件未办结）和最近结束的 {len(closed)} 件"
               f"（共 {closed_total} 件）。")

if shown:
    with st.expander("导出处置台账"):
        st.caption(f"按当前筛选导出 {len(shown)} 件处置单：对象、责任单位、时限及完成情况、回应、领导批示与落实反馈。")
        ledger_format = st.radio("格式", ["xlsx", "csv"], key="ledger_format", horizontal=True,
                                 format_func=lambda f: {"xlsx": "Excel", "csv": "CSV"}[f])
        wanted_ledger = (tuple(t.id for t in shown), ledger_format)
        if st.button("生成处置台账", key="ledger_make"):
            st.session_state["ledger_file"] = (wanted_ledger, tracking.ledger_file(
                shown, "csv" if ledger_format == "csv" else "xlsx", now, settings.timezone, mask))
        made_ledger = st.session_state.get("ledger_file")
        if made_ledger is not None and made_ledger[0] == wanted_ledger:
            ledger = made_ledger[1]
            st.download_button(f"下载 {ledger.file_name}（{ledger.rows} 件）", data=ledger.data,
                               file_name=ledger.file_name, mime=ledger.mime, key="ledger_download", type="primary")

if not tickets:
    st.info("尚无处置单。可从事件创建，或由规则对 II 级及以上事件自动创建。")
elif not shown:
    st.info("没有符合筛选条件的处置单。")
for status in STATUSES:
    group = [t for t in shown if t.status == status]
    if group:
        st.subheader(f"{status}（{len(group)}）")
        for t in group:
            st.markdown(tracking.ticket_line(t, now, mask))

# ---- one ticket -------------------------------------------------------------------------------------------
wanted = st.query_params.get("id")
pick_ids = [t.id for t in shown]
if wanted and wanted not in pick_ids:
    pick_ids.insert(0, wanted)
if not pick_ids:
    st.stop()
titles = {t.id: mask(t.title) for t in tickets}
picked = st.selectbox("查看处置单", pick_ids, index=pick_ids.index(wanted) if wanted in pick_ids else 0,
                      format_func=lambda i: f"{titles.get(i, i)}（{i}）", key="ticket_pick")
if picked != wanted:
    st.query_params["id"] = picked
loaded = es(lambda: svc.tickets.get(picked))
if loaded is None:
    components.fail(f"没有处置单 {fmt.md_escape(picked)}。")
seen = st.session_state.get(SEEN)
if not isinstance(seen, LoadedTicket) or seen.ticket.id != picked:
    seen = loaded
st.session_state[SEEN] = loaded  # what this run shows is what the next action is saved against
ticket = loaded.ticket

st.divider()
st.header(fmt.md_escape(mask(ticket.title)))
subject = ticket.subject
about = f"{'事件' if subject.kind == 'event' else '信息'} {fmt.md_escape(subject.id)}"
# The event as it is now: its title may have changed since the ticket was opened (a 话题 took over as more
# posts came), and its level and heat are what the handling is measured against.
current = (es(lambda: tracking.event_by_id(backend.client, settings.elasticsearch.index_prefix, subject.id))
           if subject.kind == "event" else None)
if current is not None:
    merged = "（已并入其他事件）" if current.status == "merged" else ""
    about = f"事件 {fmt.md_escape(mask(tracking.event_label(current)))}{merged}"
st.markdown(
    f"**状态**：{ticket.status} · **责任单位**：{fmt.md_escape(ticket.unit)}"
    + (f" · **承办人**：{fmt.md_escape(ticket.handler)}" if ticket.handler else "")
    + f" · **风险等级**：{tracking.level_label(ticket.risk_level)} · **对象**：{about}"
)
if subject.kind == "event" and EVENT_PAGE.exists():  # in-app navigation keeps the login (a plain link reloads)
    with contextlib.suppress(StreamlitAPIException):  # the page is not in this viewer's navigation
        st.page_link("views/event.py", label="查看事件详情", icon="🔥", query_params={"id": subject.id})
st.caption(f"{ticket.id} · {fmt.md_escape(ticket.opened_by)} 于 {fmt.format_time(ticket.opened_at, settings.timezone)} "
           f"创建" + (f"（规则 {fmt.md_escape(ticket.rule)}）" if ticket.rule else ""))
if ticket.silent:
    st.error("失声：首个时限前未见本机关回应。")
for line in deadline_lines(ticket, now, ZoneInfo(settings.timezone)):
    st.markdown(f":red[{fmt.md_escape(line)}]" if "已超期" in line else fmt.md_escape(line))
for p in ticket.proposals:
    st.info(f"失声检查发现本机关发布，建议确认为回应：{p.channel}「{fmt.md_escape(p.title)}」"
            f"{fmt.format_time(p.at, settings.timezone)}" + (f" {fmt.safe_url(p.url) or ''}" if p.url else ""))
if ticket.responses:
    st.subheader("回应")
    for r in ticket.responses:
        review = f" · 保密审查：{fmt.md_escape(r.review.summary)}" if r.review else ""
        link = f" · [链接]({fmt.safe_url(r.link)})" if r.link and fmt.safe_url(r.link) else ""
        st.markdown(f"**#{r.no} {r.channel}**（{r.state}，{fmt.format_time(r.at, settings.timezone)}）"
                    f"{review}{link}  \n{fmt.md_escape(r.text)}")
STATE_COLOURS = {"已反馈": "green", "待反馈": "orange", "逾期未反馈": "red"}
if ticket.instructions:
    st.subheader("领导批示")
    for ins in ticket.instructions:
        state = ins.state(now)
        due = f" · 反馈时限 {fmt.format_time(ins.due_at, settings.timezone)}" if ins.due_at is not None else ""
        st.markdown(f"**#{ins.no} {fmt.md_escape(ins.leader)}**（{fmt.format_time(ins.at, settings.timezone)}）"
                    f" :{STATE_COLOURS[state]}-badge[{state}]{due}  \n{fmt.md_escape(mask(ins.text))}")
        for fb in ins.feedback:  # internal texts: personal data in them masked as in titles
            st.markdown(f"> {fmt.format_time(fb.at, settings.timezone)} {fmt.md_escape(fb.by)} 反馈："
                        f"{fmt.md_escape(mask(fb.text))}")


def act(change: Callable[[Ticket], Ticket], done: str, text: str = "") -> None:
    """Apply ``change`` to the version the user saw and save it; errors and 保密审查 findings shown."""
    assert isinstance(seen, LoadedTicket)
    try:
        saved = es(lambda: svc.tickets.save(seen, change(seen.ticket)))
    except SecrecyBlocked as exc:
        st.error(f"保密审查发现 {len(exc.findings)} 处问题，不能发布；修改后重试，或填写放行理由后发布。")
        st.markdown(tracking.highlight_findings(text, exc.findings))
        for line in tracking.finding_lines(exc.findings):
            st.markdown(f"- {fmt.md_escape(line)}")
        return
    except YuqingError as exc:  # TicketError, TicketConflict (a concurrent edit), AuditError
        st.error(str(exc))
        return
    st.session_state[FLASH] = done
    st.session_state[SEEN] = saved
    st.rerun()


if acting and ticket.status not in ("已办结", "不予处置"):
    st.subheader("处置操作")
    recorded = {r.post_id for r in ticket.responses if r.post_id}
    for p in ticket.proposals:
        if p.post_id in recorded:
            continue
        if st.button(f"确认为回应：{p.channel}「{p.title[:30]}」", key=f"confirm_{p.post_id}"):
            # Already public on the bureau's own channel: recorded as published at its own time, after the
            # same 保密审查 as any response (findings stop it here; record it below with an override instead).
            act(partial(add_response, channel=p.channel, text=p.title, at=p.at, by=by, now=now,
                        findings=rules.review(p.title), link=p.url, post_id=p.post_id),
                f"已将本机关发布确认为回应（{p.channel}）。", p.title)
    left, right = st.columns(2)
    with left.form("assign_form", clear_on_submit=False):
        st.markdown("**改派**")
        new_unit = st.text_input("责任单位", value=ticket.unit, key="assign_unit")
        handler = st.text_input("承办人（可选）", value=ticket.handler or "", key="assign_handler")
        reason = st.text_input("改派理由", key="assign_reason")
        if st.form_submit_button("改派"):
            act(lambda t: assign(t, new_unit, reason=reason, by=by, now=now, handler=handler or None),
                f"已改派给 {new_unit.strip()}。")
    options = list(TRANSITIONS[ticket.status])
    if options:
        with right.form("status_form"):
            st.markdown("**变更状态**")
            to = st.selectbox("变更为", options, key="status_to")
            note = st.text_input("说明（不予处置、重新处置须填写理由）", key="status_note")
            if st.form_submit_button("变更状态"):
                act(lambda t: change_status(t, to, by=by, now=now, note=note or None), f"状态已变更为 {to}。")

    with st.form("respond_form"):
        st.markdown("**记录回应**（发布前自动进行保密审查）")
        c1, c2, c3 = st.columns(3)
        channel = c1.selectbox("渠道", list(CHANNELS), key="respond_channel")
        day = c2.date_input("发布日期", value=now.date(), key="respond_date")
        clock = c3.time_input("发布时间", value=now.time(), key="respond_time", step=60)
        text = st.text_area("回应正文", key="respond_text")
        link = st.text_input("链接（可选）", key="respond_link")
        draft = st.checkbox("仅保存为草稿（不发布）", key="respond_draft")
        override = st.text_input("放行理由（保密审查有发现仍须发布时填写，记入审计）", key="respond_override")
        b1, b2 = st.columns(2)
        review_only = b1.form_submit_button("保密审查")
        record = b2.form_submit_button("记录回应", type="primary")
    if review_only:
        findings = rules.review(text)
        if findings:
            st.warning(f"保密审查发现 {len(findings)} 处问题：")
            st.markdown(tracking.highlight_findings(text, findings))
            for line in tracking.finding_lines(findings):
                st.markdown(f"- {fmt.md_escape(line)}")
        else:
            st.success("保密审查未发现问题。")
    if record:
        at = datetime.combine(day, clock, tzinfo=tz)
        act(lambda t: add_response(t, channel=channel, text=text, at=at, by=by, now=now,
                                   findings=() if draft else rules.review(text), link=link.strip() or None,
                                   draft=draft, override_reason=override or None),
            "已保存回应草稿。" if draft else "已记录回应。", text)

    drafts = [r for r in ticket.responses if r.state == "草稿"]
    if drafts:
        with st.form("publish_form"):
            st.markdown("**发布草稿**")
            no = st.selectbox("草稿", [r.no for r in drafts], key="publish_no",
                              format_func=lambda n: f"#{n} {next(r.channel for r in drafts if r.no == n)}")
            p_override = st.text_input("放行理由（保密审查有发现时填写）", key="publish_override")
            publish = st.form_submit_button("发布草稿")
        if publish:
            draft_text = next(r.text for r in drafts if r.no == no)
            act(lambda t: publish_response(t, no, findings=rules.review(draft_text), by=by, now=now,
                                           override_reason=p_override or None),
                f"回应#{no} 已发布。", draft_text)

# 领导批示 after the actions: a leader records their own; an officer one given on paper or in the OA
DUE_OPTIONS = {"不设反馈时限": None, "24 小时内反馈": 24, "3 天内反馈": 72, "7 天内反馈": 168}
if instructing and ticket.status != "已办结":
    with st.form("instruct_form", clear_on_submit=False):
        st.markdown("**记录领导批示**")
        is_leader = viewer is not None and viewer.role == "leader"
        i1, i2, i3, i4 = st.columns(4)
        names = tracking.leader_names(leader_accounts(), tickets)
        own = viewer.display_name if is_leader and viewer else None
        leader = i1.selectbox("批示领导", names, index=names.index(own) if own in names else None,
                              accept_new_options=True, placeholder="选择或输入领导姓名", key="instruct_leader",
                              help="领导账号的姓名和已记录过的批示领导；不在其中的可直接输入")
        i_day = i2.date_input("批示日期", value=now.date(), key="instruct_date")
        i_clock = i3.time_input("批示时间", value=now.time(), key="instruct_time", step=60)
        due_choice = i4.selectbox("反馈时限", list(DUE_OPTIONS), key="instruct_due")
        instruction = st.text_area("批示内容", key="instruct_text")
        instruct = st.form_submit_button("记录批示", type="primary" if is_leader else "secondary")
    if instruct:
        i_at = datetime.combine(i_day, i_clock, tzinfo=tz)
        hours = DUE_OPTIONS[due_choice]
        i_due = i_at + timedelta(hours=hours) if hours is not None else None
        act(lambda t: add_instruction(t, leader=leader or "", text=instruction, at=i_at, by=by, now=now, due_at=i_due),
            "已记录领导批示。")
if acting and ticket.instructions:
    with st.form("feedback_form", clear_on_submit=False):
        st.markdown("**反馈落实情况**")
        order = sorted(ticket.instructions, key=lambda i: (bool(i.feedback), i.no))  # not yet reported back first
        fb_no = st.selectbox("批示", [i.no for i in order], key="feedback_no",
                             format_func=lambda n: next(f"#{i.no} {i.leader}（{i.state(now)}）：{i.text[:30]}"
                                                        for i in ticket.instructions if i.no == n))
        fb_text = st.text_area("落实情况", key="feedback_text")
        report = st.form_submit_button("提交反馈")
    if report:
        act(lambda t: add_feedback(t, fb_no, text=fb_text, by=by, now=now), f"已反馈批示#{fb_no} 的落实情况。")

st.subheader("审计记录")
st.dataframe(
    pd.DataFrame({
        "时间": [fmt.format_time(e.at, settings.timezone) for e in ticket.audit],
        "操作人": [e.by for e in ticket.audit],
        "操作": [e.action for e in ticket.audit],
        "变更": [f"{e.from_value or '—'} → {e.to_value or '—'}" if e.from_value or e.to_value else ""
                 for e in ticket.audit],
        "说明": [e.note or "" for e in ticket.audit],
    }),
    hide_index=True,
)
