"""热点事件: the events (posts grouped by matter, ``yuqing events update``), hottest first, with risk colour, a
24-hour trend line, size, first publisher and responsible unit; filters by level, topic, unit and time. Each event
opens on the 事件详情 page (``event?id=<id>``). Thin: the tables are ``dashboard.event_views``."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import components, data, event_data
from dashboard import event_views as ev
from events.config import LEVELS
from index.events import EventFilter

viewer = components.require_page("events")
backend = components.backend_or_stop()
tz = backend.settings.timezone
call = components.call_or_stop
now = datetime.now(UTC).replace(second=0, microsecond=0)

st.title("热点事件")
facets = call(event_data.facets, backend)
with st.sidebar:
    st.header("筛选")
    levels = st.multiselect("风险等级", options=list(LEVELS), format_func=ev.level_text, key="events_levels",
                            placeholder="全部等级")
    topics = st.multiselect("主题", options=facets["topic"], key="events_topics", placeholder="全部主题")
    units = st.multiselect("责任单位", options=facets["unit"], key="events_units", placeholder="全部单位")
    window_label = st.selectbox("最近发帖", options=list(data.OVERVIEW_WINDOWS), index=1, key="events_window")
    include_closed = st.checkbox("包括已结束的事件", key="events_closed")
    in_scope_only = st.checkbox("只看需要关注的事件", value=True, key="events_in_scope",
                                help="不列出与本局业务无关的事件（其中与本局文化工作相关的信息太少）和只有本局渠道"
                                     "发布信息的事件；这些事件不预警、不开处置单、不列入日报")

window = data.OVERVIEW_WINDOWS[window_label]
since = data.window_start(now, window) if window is not None else None
found = call(event_data.events, backend, EventFilter(levels=tuple(levels), topics=tuple(topics), units=tuple(units),
                                                     since=since, include_closed=include_closed,
                                                     in_scope_only=in_scope_only))
if found is None:
    st.info("尚未建立事件数据：事件聚类任务（`yuqing run` 每次采集后运行，或 `yuqing events update`）还没有运行。")
    st.stop()
total, records = found.total, found.records
hidden = (f"另有 {found.out_of_scope} 个与本局业务无关或只有本局发布信息的事件未列出（取消勾选“只看需要关注的事件”"
          "可查看）。") if found.out_of_scope else ""
if not records:
    st.info("没有符合条件的事件。可放宽筛选条件或时间范围。" + hidden)
    st.stop()
st.caption(f"共 {total} 个事件" + (f"，显示热度最高的 {len(records)} 个" if total > len(records) else "")
           + "。热度 0–100；风险等级 I 级（红）最高。" + hidden)
st.dataframe(
    ev.events_frame(records, tz, now, components.viewer_mask(),
                    call(event_data.tickets_of, backend, [r.event_id for r in records])),
    hide_index=True, width="stretch",
    column_config={
        "热度": st.column_config.ProgressColumn("热度", min_value=0, max_value=100, format="%.1f"),
        "近24小时": st.column_config.LineChartColumn("近24小时", help="每小时新增条数", y_min=0),
        "详情": st.column_config.LinkColumn("详情", display_text="查看"),
    },
)

titles = {r.event_id: f"{ev.LEVEL_DOTS.get(r.risk_level, '')} {r.title}（热度 {r.heat:.0f}）" for r in records}
left, right = st.columns([3, 1], vertical_alignment="bottom")
picked = left.selectbox("查看事件详情", options=list(titles), format_func=titles.__getitem__, key="events_pick")
right.page_link("views/event.py", label="打开事件详情", icon="📌", query_params={"id": picked})
