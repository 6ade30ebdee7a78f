"""依申请公开: register requests, their statutory clock in working days (调休 included; 日历未覆盖 flagged), reminders,
extension, 补正, third-party consultation, and the reply from a template that must state the remedies.
``?id=<request>`` opens one.

Thin: the rules are ``response.foia`` (政府信息公开条例 2019), the helpers ``dashboard.tracking``. Every change is
saved against the version the user saw, so a concurrent edit is reported, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard import components, tracking
from dashboard import format as fmt
from dashboard.auth import sees_personal_data
from response.calendar import WorkCalendar
from response.config import load_response_config
from response.foia import (
    FOIA_CHANNELS,
    REPLY_TYPES,
    FoiaRequest,
    extend,
    finish_consultation,
    mark_abandoned,
    receive_correction,
    register,
    reminders,
    reply,
    reply_template,
    request_correction,
    start_consultation,
)
from response.service import LoadedRequest
from yuqing.errors import YuqingError

T = TypeVar("T")
FLASH = "foia_flash"
SEEN = "foia_seen"  # the version of the selected request the user last saw (changes are saved against it)

viewer = components.require_page("foia")
backend = components.backend_or_stop()
settings = backend.settings
tz = ZoneInfo(settings.timezone)
now = datetime.now(tz).replace(microsecond=0)
today = now.date()
acting = tracking.can_act(viewer)
cal = WorkCalendar.official()
mask = components.viewer_mask()  # leaders and analysts: personal data masked, the applicant by surname only
personal = viewer is not None and sees_personal_data(viewer.role)


def es(func: Callable[[], T]) -> T:
    return components.es_or_stop(backend, func)


try:
    cfg = load_response_config(settings.config_file("response.yaml")).foia
except YuqingError as exc:
    components.fail(f"依申请公开配置有误：{fmt.error_text(exc)}")
svc = es(lambda: tracking.services(backend.client, settings.elasticsearch))
by = tracking.operator(viewer) if viewer is not None else ""

st.title("依申请公开")
flash = st.session_state.pop(FLASH, None)
if flash:
    st.success(flash)
if not acting and viewer is not None:
    st.info(tracking.READ_ONLY_NOTE.format(role=viewer.role_label))
st.caption(
    f"答复期限：收到申请之日起 {cfg.answer_working_days} 个工作日（条例第三十三条，"
    "按国务院放假安排含调休计算，收到当日不计）；"
    f"经批准可延长一次，不超过 {cfg.extension_working_days} 个工作日；"
    f"补正应在 {cfg.correction_notice_working_days} 个工作日内一次性告知，收到补正后重新计算；"
    "征求第三方意见的时间不计入。"
)


def show_request(request_id: str) -> None:
    st.query_params["id"] = request_id
    st.session_state.pop("foia_pick", None)


if acting:
    with st.expander("登记新申请"):
        with st.form("foia_register", clear_on_submit=True):
            left, right = st.columns(2)
            applicant = left.text_input("申请人", key="foia_applicant")
            contact = right.text_input("联系方式（可选）", key="foia_contact")
            channel = left.selectbox("申请方式", list(FOIA_CHANNELS), key="foia_channel")
            received = right.date_input("收到申请日期", value=today, max_value=today, key="foia_received")
            content = st.text_area("申请内容", key="foia_content")
            submitted = st.form_submit_button("登记", type="primary")
        if submitted:
            try:
                req = register(applicant=applicant, content=content, channel=channel, received_on=received, by=by,
                               now=now, contact=contact.strip() or None)
                es(lambda: svc.foia.create(req))
            except YuqingError as exc:
                st.error(str(exc))
            else:
                st.session_state[FLASH] = f"已登记申请 {req.id}。"
                show_request(req.id)
                st.rerun()

# ---- reminders and the list -------------------------------------------------------------------------------
with st.sidebar:
    st.header("筛选")
    open_only = st.checkbox("仅看未办结", value=True, key="foia_open_only")
    words = st.text_input("申请内容包含", key="foia_text")
total, requests = es(lambda: svc.foia.list(open_only=open_only, text=words.strip() or None, size=500))
clocks = {r.id: tracking.request_clock(r, today, cal, cfg) for r in requests}

notices = [(r, m) for r in requests for m in reminders(r, today, cal, cfg)]
if notices:
    st.subheader(f"提醒（{len(notices)}）")
    for r, m in notices:
        icon = "🔴" if m.kind in ("答复已超期", "补正期限已过") else "🟠"
        who = tracking.applicant_name(r.applicant, personal)
        st.warning(f"{icon} {m.kind}：{fmt.md_escape(f'{m.message}（{who}）')}")

st.subheader(f"申请（{total}）")
if not requests:
    st.info("没有符合条件的申请。")
for r in requests:
    st.markdown(tracking.request_line(r, clocks[r.id], cfg, mask, personal))

# ---- one request ------------------------------------------------------------------------------------------
wanted = st.query_params.get("id")
pick_ids = [r.id for r in requests]
if wanted and wanted not in pick_ids:
    pick_ids.insert(0, wanted)
if not pick_ids:
    st.stop()
labels = {r.id: f"{tracking.applicant_name(r.applicant, personal)}：{mask(r.content)[:30]}"
          for r in requests}
picked = st.selectbox("查看申请", pick_ids, index=pick_ids.index(wanted) if wanted in pick_ids else 0,
                      format_func=lambda i: f"{labels.get(i, i)}（{i}）", key="foia_pick")
if picked != wanted:
    st.query_params["id"] = picked
try:
    loaded = es(lambda: svc.foia.load(picked))
except YuqingError as exc:
    components.fail(str(exc))
seen = st.session_state.get(SEEN)
if not isinstance(seen, LoadedRequest) or seen.request.id != picked:
    seen = loaded
st.session_state[SEEN] = loaded  # what this run shows is what the next action is saved against
req = loaded.request
clock = tracking.request_clock(req, today, cal, cfg)

st.divider()
st.header(fmt.md_escape(f"{tracking.applicant_name(req.applicant, personal)} 的申请"))
st.markdown(f"**申请内容**：{fmt.md_escape(mask(req.content))}")
st.caption(f"{req.id} · {req.channel} · {req.received_on} 收到 · {fmt.md_escape(req.registered_by)} 登记"
           + (f" · 联系方式：{fmt.md_escape(req.contact)}" if req.contact and personal else ""))
text, colour = tracking.clock_text(clock, cfg)
st.markdown(f"**办理状态**：:{colour}[{fmt.md_escape(text)}]")
if clock.base_due and clock.due and clock.base_due != clock.due:
    st.caption(f"原答复期限 {clock.base_due}")
st.caption(f"补正告知期限：{clock.correction_notice_due}")
for note in clock.notes:
    st.markdown(f"- {fmt.md_escape(note)}")
if req.reply is not None:
    late = "（超过答复期限）" if req.reply.late else ""
    st.markdown(f"**答复**：{req.reply.type}，{req.reply.replied_on}{late}")
    st.text(tracking.reply_text(req, personal, mask))


def act(change: Callable[[FoiaRequest], FoiaRequest], done: str) -> None:
    """Apply ``change`` to the version the user saw and save it; an illegal step or a conflict is shown."""
    assert isinstance(seen, LoadedRequest)
    try:
        saved = es(lambda: svc.foia.save(seen, change(seen.request)))
    except YuqingError as exc:  # FoiaError, FoiaConflict (a concurrent edit), AuditError
        st.error(str(exc))
        return
    st.session_state[FLASH] = done
    st.session_state[SEEN] = saved
    st.rerun()


final = req.reply is not None or req.abandoned_on is not None
if acting and not final:
    st.subheader("办理操作")
    waiting = req.correction is not None and req.correction.corrected_on is None
    left, right = st.columns(2)
    if req.correction is None:
        with left.form("correction_form"):
            st.markdown("**告知补正**（一次性告知）")
            notified = st.date_input("告知日期", value=today, key="corr_notified")
            items = st.text_area("需补正的事项", key="corr_items")
            if st.form_submit_button("告知补正"):
                act(lambda r: request_correction(r, notified_on=notified, items=items, by=by, now=now, cal=cal,
                                                 cfg=cfg), "已记录补正告知，答复期限暂停计算。")
    elif waiting:
        with left.form("corrected_form"):
            st.markdown("**收到补正**")
            corrected = st.date_input("收到补正日期", value=today, max_value=today, key="corr_received")
            late_reason = st.text_input("逾期补正的理由（逾期时填写）", key="corr_late")
            if st.form_submit_button("收到补正"):
                act(lambda r: receive_correction(r, corrected_on=corrected, by=by, now=now,
                                                 late_reason=late_reason or None), "已收到补正，答复期限重新计算。")
        due = req.correction.correction_due if req.correction else None
        if due is not None and today > due:  # only once the period has run out (the rule refuses it before)
            with right.form("abandon_form"):
                st.markdown("**视为放弃申请**（补正期限届满未补正）")
                sure = st.checkbox(f"确认申请人在补正期限 {due} 前未补正；记录后不可撤销", key="abandon_sure")
                if st.form_submit_button("视为放弃"):
                    if sure:
                        act(lambda r: mark_abandoned(r, on=today, by=by, now=now), "已记录视为放弃申请。")
                    else:
                        st.warning("请先勾选确认。")
        elif due is not None:
            right.caption(f"补正期限 {due} 届满后仍未收到补正的，可在此记录视为放弃申请。")
    if not waiting:
        if req.extension is None:
            with right.form("extend_form"):
                st.markdown("**延期**（需政府信息公开工作机构负责人同意）")
                approver = st.text_input("批准人", key="ext_by")
                approved_on = st.date_input("批准日期", value=today, key="ext_on")
                days = st.number_input("延长工作日", min_value=1, max_value=cfg.extension_working_days,
                                       value=cfg.extension_working_days, key="ext_days")
                ext_reason = st.text_input("延期理由", key="ext_reason")
                if st.form_submit_button("延期"):
                    act(lambda r: extend(r, approved_by=approver, approved_on=approved_on, reason=ext_reason, by=by,
                                         now=now, cal=cal, cfg=cfg, working_days=int(days)), "已延期。")
        with left.form("consult_form"):
            st.markdown("**征求第三方意见**（所需时间不计入期限）")
            party = st.text_input("第三方", key="consult_party")
            sent = st.date_input("发出日期", value=today, key="consult_sent")
            if st.form_submit_button("征求意见"):
                act(lambda r: start_consultation(r, third_party=party, sent_on=sent, by=by, now=now),
                    f"已记录向 {party.strip()} 征求意见。")
        pending = [c.third_party for c in req.consultations if c.answered_on is None]
        if pending:
            with right.form("consult_done_form"):
                st.markdown("**收到第三方意见**")
                done_party = st.selectbox("第三方", pending, key="consult_done_party")
                answered = st.date_input("收到日期", value=today, key="consult_answered")
                if st.form_submit_button("收到意见"):
                    act(lambda r: finish_consultation(r, third_party=done_party, answered_on=answered, by=by,
                                                      now=now), "已记录收到意见，恢复计算期限。")

    st.markdown("**答复**")
    reply_type = st.selectbox("答复类型", list(REPLY_TYPES), key="reply_type",
                              format_func=lambda t: f"{t}（{REPLY_TYPES[t][0]}）")
    with st.form("reply_form"):
        letter = st.text_area("答复书（须含行政复议、行政诉讼的救济途径告知）",
                              value=reply_template(req, reply_type, cfg), height=300, key=f"reply_text_{reply_type}")
        replied_on = st.date_input("答复日期", value=today, max_value=today, key="reply_on")
        sure = st.checkbox("答复书已核对无误（记录答复后不可修改）", key="reply_sure")
        if st.form_submit_button("答复", type="primary"):
            if sure:
                act(lambda r: reply(r, reply_type=reply_type, text=letter, replied_on=replied_on, by=by, now=now,
                                    cal=cal, cfg=cfg), "已记录答复。")
            else:
                st.warning("请先勾选“答复书已核对无误”。")

st.subheader("审计记录")
st.dataframe(
    pd.DataFrame({
        "时间": [fmt.format_time(e.at, settings.timezone) for e in req.audit],
        "操作人": [e.by for e in req.audit],
        "操作": [e.action for e in req.audit],
        "变更": [f"{e.from_value or '—'} → {e.to_value or '—'}" if e.from_value or e.to_value else ""
                 for e in req.audit],
        "说明": [e.note or "" for e in req.audit],
    }),
    hide_index=True,
)
