"""预警投递: did every alert and report mail go out? Failed mails (given up) and mails being retried are shown with
their last error, so that someone fixes the mail server or the address instead of trusting silence."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components, data, summaries, tracking
from dashboard import format as fmt

STATUS_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败",
                 "held": "暂缓（汇总/安静时段）", "digested": "已并入汇总"}

FLASH = "delivery_flash"
backend = components.backend_or_stop()
tz = backend.settings.timezone

st.title("预警投递")
view = components.call_or_stop(data.alert_delivery, backend)
cols = st.columns(len(STATUS_LABELS))
for col, (status, label) in zip(cols, STATUS_LABELS.items(), strict=True):
    col.metric(label, view.counts.get(status, 0))


def table(rows: tuple[data.DeliveryRow, ...], *, retry: bool) -> pd.DataFrame:
    out: dict[str, list[object]] = {
        "决定时间": [fmt.format_time(r.decided_at, tz) for r in rows],
        "规则": [summaries.REPORT_RULES.get(r.rule, r.rule) for r in rows],
        "邮件主题": [r.subject for r in rows],
        "收件人": ["、".join(r.recipients) for r in rows],
        "尝试次数": [r.attempts for r in rows],
        "原因": [fmt.mail_error_text(r.last_error) for r in rows],
        "技术信息": [r.last_error or "" for r in rows],
    }
    if retry:
        out["下次重试"] = [fmt.format_time(r.next_attempt_at, tz) if r.next_attempt_at else "—" for r in rows]
    return pd.DataFrame(out)


flash = st.session_state.pop(FLASH, None)
if flash:
    st.success(flash)
if view.failed:
    failed = view.counts.get("failed", len(view.failed))
    st.error(f"有 {failed} 封预警邮件发送失败（已停止重试），请检查邮件服务器设置或收件地址。")
    st.dataframe(table(view.failed, retry=False), hide_index=True)
    viewer = components.current_viewer()
    acting = viewer is not None and tracking.can_act(viewer)
    if acting and st.button(f"问题已排除，重新发送这 {len(view.failed)} 封", key="requeue_failed"):
        assert viewer is not None
        done = components.call_or_stop(data.requeue_failed_mails, backend, [r.entry_id for r in view.failed], viewer)
        st.session_state[FLASH] = f"已重新排队 {len(done)} 封邮件，采集服务将在数秒内重新发送。"
        st.rerun()
if view.retrying:
    st.warning(f"有 {len(view.retrying)} 封邮件发送未成功，正在按退避间隔自动重试。")
    st.dataframe(table(view.retrying, retry=True), hide_index=True)
if view.partly:
    st.warning(f"有 {len(view.partly)} 封邮件已发出，但部分收件人被邮件服务器拒收（这些人没有收到），"
               "请核对其邮箱地址。")
    st.dataframe(pd.DataFrame({
        "决定时间": [fmt.format_time(r.decided_at, tz) for r in view.partly],
        "规则": [summaries.REPORT_RULES.get(r.rule, r.rule) for r in view.partly],
        "邮件主题": [r.subject for r in view.partly],
        "被拒收的收件人": ["、".join(r.refused) for r in view.partly],
    }), hide_index=True)
if not view.failed and not view.retrying and not view.partly:
    st.success("所有预警邮件均已正常投递或正在等待发送。")
st.caption("每封预警只发送一次：发件箱记录每封邮件的状态；邮件服务器不可用时自动重试，多次失败后在此列出。")
