"""事件详情 (``event?id=<id>``; the alert mails and the 热点事件 page link here): the level and the reasons it fired,
heat with the 6 h / 24 h forecast, the level history, posts over time by sentiment, sources, the member posts with
their links, a link to open a 处置单 for it on the 处置跟踪 page (``tickets?event=<id>``) and its 舆情专报 as a Word
or HTML download (``dashboard.briefs``). Without an id: a
choice of the hottest open events. Thin: the tables are ``dashboard.event_views``."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import briefs, charts, components, event_data, judging
from dashboard import event_views as ev
from dashboard import format as fmt
from dashboard.data import DashboardError
from index.events import EventFilter

POSTS_SHOWN = 100

viewer = components.require_page("event")
backend = components.backend_or_stop()
tz = backend.settings.timezone
call = components.call_or_stop
now = datetime.now(UTC).replace(second=0, microsecond=0)

st.title("事件详情")
wanted = st.query_params.get("id")
if not wanted:
    found = call(event_data.events, backend, EventFilter(size=50, in_scope_only=True))
    if not found or not found.records:
        st.info("暂无事件。事件由采集后的聚类任务生成（`yuqing run` / `yuqing events update`）。")
        st.stop()
    options = {r.event_id: f"{ev.LEVEL_DOTS.get(r.risk_level, '')} {r.title}（热度 {r.heat:.0f}）"
               for r in found.records}
    wanted = st.selectbox("选择事件", options=list(options), format_func=options.__getitem__, key="event_pick")
    st.query_params["id"] = wanted

record = call(event_data.event, backend, wanted)
if record is None:
    components.fail(f"未找到事件 {fmt.md_escape(wanted)}（可能已被清除）。请从“热点事件”页重新选择。")
if record.status == "merged" and record.merged_into:
    st.warning("该事件已并入另一事件，以下为并入前的情况。")
    st.page_link("views/event.py", label="查看合并后的事件", icon="➡️", query_params={"id": record.merged_into})

mask = components.viewer_mask()  # leaders and analysts: personal data in titles masked
st.subheader(fmt.md_escape(mask(record.title)))
status = {"open": "进行中", "closed": "已结束", "merged": "已合并"}.get(record.status, record.status)
st.caption(f"{ev.level_text(record.risk_level)} · {status} · 共 {record.count} 条 · "
           f"{fmt.format_time(record.started_at, tz)} 至 {fmt.format_time(record.last_post_at, tz)} · "
           f"主题：{record.topic or '未识别'} · 责任单位：{record.unit or '未确定'}")
ticket = call(event_data.ticket, backend, record.event_id)
if ticket is None:
    st.page_link("views/tickets.py", label="发起处置单（处置跟踪）", icon="🗂️", query_params={"event": record.event_id})
else:  # the 处置单 as it stands: status, how it stands against its deadlines, 领导批示 waiting for a report back
    st.page_link("views/tickets.py", label=ev.ticket_label(ticket, now), icon="🗂️", query_params={"id": ticket.id})

if record.status != "merged":  # the 舆情专报 for the leaders, made when asked for (it reads the posts and 处置单)
    with st.expander("舆情专报（呈报局领导）"):
        st.caption("根据当前数据生成：舆情概况、传播态势、主要信息、研判、处置情况与处置建议；个人信息已脱敏。")
        brief_format: briefs.BriefFormat = st.radio("格式", briefs.FORMATS, horizontal=True, key="brief_format",
                                                    format_func=briefs.FORMAT_LABELS.__getitem__)
        wanted_brief = (record.event_id, brief_format)
        if st.button("生成舆情专报", key="brief_make"):
            st.session_state["brief_file"] = (wanted_brief, call(briefs.brief_file, backend, record.event_id,
                                                                 brief_format, datetime.now(UTC)))
        made_brief = st.session_state.get("brief_file")
        if made_brief is not None and made_brief[0] == wanted_brief:
            brief = made_brief[1]
            if brief.note:
                st.warning(brief.note)
            st.download_button(f"下载 {brief.file_name}", data=brief.data, file_name=brief.file_name,
                               mime=brief.mime, key="brief_download", type="primary")
        if viewer is not None and briefs.can_submit(viewer) and st.button(
                "邮件呈报局领导", key="brief_submit", help="发送给预警规则文件中的呈报对象（reports.brief）"):
            try:  # a failure is said here; the rest of the page still shows
                sent = briefs.submit(backend, record.event_id, viewer, datetime.now(UTC))
            except DashboardError as exc:
                st.error(str(exc), icon="🚫")
            else:
                if sent.entry is None:
                    st.info("本分钟内已呈报过该专报，未重复发送。")
                else:
                    st.success(f"已提交发送给 {'、'.join(sent.recipients)}（附 Word 版）；发送情况见“预警投递”。")
                if sent.ticket_error:
                    st.warning(f"邮件已提交，但未能记入处置单：{sent.ticket_error}")

cols = st.columns(4)
cols[0].metric("当前热度", f"{record.heat:.1f}")
cols[1].metric("6小时预测", f"{record.heat_6h:.1f}", delta=ev.forecast_delta(record.heat, record.heat_6h))
cols[2].metric("24小时预测", f"{record.heat_24h:.1f}", delta=ev.forecast_delta(record.heat, record.heat_24h))
cols[3].metric("负面占比", f"{record.negative_share:.0%}")

left, right = st.columns(2)
with left:
    st.markdown("**预警等级依据**")
    st.markdown("\n".join(f"- {fmt.md_escape(reason)}" for reason in record.risk_reasons) or "—")
    if record.sensitive_words:
        st.caption("敏感词：" + "、".join(record.sensitive_words))
with right:
    st.markdown("**等级变化**")
    if record.level_history:
        st.dataframe(ev.history_frame(record, tz), hide_index=True, width="stretch")
    else:
        st.caption("暂无记录")

first = record.first_post
st.markdown(f"**首发**：{fmt.md_escape(first.source)} · {fmt.format_time(first.published_at, tz)} · "
            + fmt.title_link(mask(first.title), first.url or ""))
st.markdown(f"**本局发布**：{ev.own_posts_text(record)}")
if record.keywords:
    st.caption("关键词：" + "、".join(record.keywords))
if record.hashtags:
    st.caption(fmt.md_escape("话题：" + "、".join(f"#{t}#" for t in record.hashtags)))

st.markdown("**传播走势（按情感）**")
frame = ev.timeline_frame(record, tz)
if frame.empty:
    st.caption("暂无走势数据")
else:
    st.altair_chart(charts.sentiment_bars(frame, height=240), width="stretch")

a, b = st.columns(2)
with a:
    st.markdown("**来源分布**")
    st.dataframe(ev.sources_frame(record), hide_index=True, width="stretch")
with b:
    st.markdown("**情感构成**")
    st.write(ev.sentiment_text(record) or "—")
    st.markdown("**渠道**")
    st.write(ev.kinds_text(record) or "—")
    e = record.engagement
    st.caption(f"互动：点赞 {e.likes} · 评论 {e.comments} · 转发 {e.reposts}")

members = call(event_data.posts, backend, record.event_id, POSTS_SHOWN)
shown = f"，显示最早的 {len(members.hits)} 条" if members.total > len(members.hits) else ""
st.markdown(f"**相关信息**（共 {members.total} 条{shown}，按发布时间）")
components.unreadable_notice(members.unreadable)
for hit in members.hits:
    components.post_card(hit.post, tz, judge_link=judging.can_judge(viewer))
