"""总览: volume by sentiment over time, sentiment share, hot events, active alerts, 处置单 due and overdue, the
人工研判 waiting, source health, sources and hot words, recent negative posts. Each panel refreshes itself
(``dashboard.refresh_s``); queries are cached for ``dashboard.cache_ttl_s``. The time range defaults to the shortest
window holding posts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import charts, components, data, judging, summaries
from dashboard import format as fmt
from index.overview import Interval, PostSummary
from index.search import PostQuery
from index.source_health import ALARMING

backend = components.backend_or_stop()
settings = backend.settings
tz = settings.timezone
call = components.call_or_stop
live = components.live_panel(settings.dashboard.refresh_s)

st.title("舆情总览")
labels = list(data.OVERVIEW_WINDOWS)
if "overview_window" not in st.session_state:  # first visit: a window that holds posts, never a page of zeros
    first_now = datetime.now(UTC).replace(second=0, microsecond=0)
    st.session_state["overview_window"] = summaries.default_window_label(call(data.data_span, backend, first_now),
                                                                         labels)
with st.sidebar:
    st.header("筛选")
    window_label = st.selectbox("时间范围", options=labels, key="overview_window")
window = data.OVERVIEW_WINDOWS[window_label]
st.caption(f"统计范围：{window_label}（按发布时间，无发布时间的按采集时间）。"
           f"各栏每 {settings.dashboard.refresh_s} 秒自动刷新。")


@dataclass(frozen=True)
class Queries:
    """The panels' queries for the window ending at ``now`` (the current minute: a panel refreshing itself moves
    its window and its deadlines along, and the panels of one minute share Streamlit's cache)."""

    now: datetime
    since: datetime | None
    interval: Interval
    summary: Callable[[], PostSummary]
    events: Callable[[], Any]
    alerts: Callable[[], Any]
    tickets: Callable[[], Any]
    health: Callable[[], Any]
    words: Callable[[], list[tuple[str, int]]]
    negative: Callable[[], Any]
    waiting: tuple[Callable[[], int], ...]


def queries() -> Queries:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    since = data.window_start(now, window) if window is not None else None
    base = PostQuery(since=since)
    interval = summaries.chart_interval(since, now, call(data.data_span, backend, now))
    queues = [replace(judging.queue_query(q, threshold=settings.nlp.relevance_threshold,
                                          margin=settings.dashboard.judge_margin, size=0), since=since)
              for q in QUEUES]
    return Queries(
        now=now, since=since, interval=interval,
        summary=partial(data.post_summary, backend, base, interval),
        events=partial(data.top_events, backend, since),
        alerts=partial(data.alerts, backend, since),
        tickets=partial(data.tickets, backend, now),
        health=partial(data.source_health, backend),
        words=partial(data.hot_words, backend, base, 20),
        negative=partial(data.search, backend, PostQuery(since=since, sentiments=("negative",), size=10)),
        waiting=tuple(partial(data.total, backend, q) for q in queues),
    )


QUEUES = ("model_relevant", "uncertain")
# The panels' queries, started together (data.prefetch): each panel below then takes its answer from the cache
# (or waits for it), and reaches the browser as soon as it is in.
first = queries()
data.prefetch(first.summary, first.events, first.alerts, first.tickets, first.health, first.words, first.negative,
              *first.waiting)


@live
def sentiment_panel() -> None:
    q = queries()
    summary = call(q.summary)
    total, by_sentiment = summary.total, summary.by_sentiment
    columns = st.columns(5)
    columns[0].metric("舆情总数", total)
    for column, (value, label) in zip(columns[1:4], fmt.SENTIMENT_LABELS.items(), strict=True):
        n = by_sentiment.get(value, 0)
        column.metric(label, n, delta=summaries.share_text(n, total) or None, delta_color="off")
    columns[4].metric(fmt.UNANALYSED_LABEL, total - sum(by_sentiment.values()))
    st.subheader("舆情走势")
    frame = summaries.volume_frame(summary.volume, tz, q.interval)
    if frame.empty or not frame["条数"].any():
        st.info("该时间范围内暂无舆情。")
    else:
        st.altair_chart(charts.sentiment_bars(frame, height=260), width="stretch")


@live
def events_panel() -> None:
    st.subheader("热点事件")
    events = call(queries().events)
    if events is None or not events.items:
        st.info("该时间范围内暂无活跃事件。" if events is not None else "尚未建立事件数据（事件聚类任务未运行）。")
        return
    components.unreadable_notice(events.unreadable)
    mask = components.viewer_mask()
    st.dataframe(summaries.events_frame(events.items, tz, mask), hide_index=True,
                 column_config={"热度": st.column_config.ProgressColumn("热度", format="%.1f", min_value=0,
                                                                       max_value=100),
                                "详情": st.column_config.LinkColumn(
                                    "详情", display_text="查看", help="在新标签页打开；在本页打开请用下方的“打开”")})
    # in this tab (a new tab is a new browser session, which asks to sign in again)
    titles = {e.event_id: f"{summaries.RISK_LABELS.get(e.risk_level, e.risk_level)} {mask(e.title)}"
              for e in events.items}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    picked = left.selectbox("查看事件", options=list(titles), format_func=titles.__getitem__, key="overview_event")
    right.page_link("views/event.py", label="打开", icon="📌", query_params={"id": picked})


@live
def alerts_panel() -> None:
    st.subheader("预警")
    alerts = call(queries().alerts)
    if alerts is None:
        st.info("尚未建立预警发件箱（预警服务未运行）。")
        return
    columns = st.columns(4)
    columns[0].metric("待发送", alerts.by_status["pending"] + alerts.by_status["sending"])
    columns[1].metric("待汇总", alerts.by_status["held"],
                      help="按规则合并进汇总邮件（或安静时段后一并发送）的提醒，到点自动发出，不是积压")
    columns[2].metric("发送失败", alerts.by_status["failed"])
    columns[3].metric("已发送", alerts.by_status["sent"])
    if alerts.by_status["failed"]:
        st.error(f"有 {alerts.by_status['failed']} 条预警邮件发送失败，请检查收件人和邮件服务器设置。")
    components.unreadable_notice(alerts.recent.unreadable)
    if alerts.recent.items:
        st.dataframe(summaries.alerts_frame(alerts.recent.items, tz, components.viewer_mask()), hide_index=True)
    else:
        st.info("该时间范围内没有预警。")


@live
def tickets_panel() -> None:
    st.subheader("处置单")
    q = queries()
    tickets = call(q.tickets)
    if tickets is None:
        st.info("尚未建立处置单数据。")
        return
    columns = st.columns(5)
    columns[0].metric("待办", tickets.open, help="待研判和处置中的处置单")
    columns[1].metric("24小时内到期", tickets.due_soon)
    columns[2].metric("已超期", tickets.overdue)
    columns[3].metric("专报待批示", tickets.awaiting_instruction, help="已呈报舆情专报、此后尚未记录领导批示的处置单")
    columns[4].metric("批示待反馈", tickets.instructions_pending, help="有领导批示尚未反馈落实情况的处置单")
    components.unreadable_notice(tickets.soonest.unreadable)
    if tickets.soonest.items:
        st.dataframe(summaries.tickets_frame(tickets.soonest.items, tz, q.now, components.viewer_mask()),
                     hide_index=True)
    else:
        st.info("没有待处置的处置单。")


@live
def judging_panel() -> None:
    st.subheader("人工研判")
    columns = st.columns(2)
    for column, queue, query in zip(columns, QUEUES, queries().waiting, strict=True):
        column.metric(f"待研判·{judging.QUEUE_LABELS[queue]}", call(query))
    if judging.can_judge(components.current_viewer()):
        st.page_link(components.JUDGE_PAGE, label="去人工研判", icon="🏷️")


@live
def health_panel() -> None:
    st.subheader("信源状态")
    statuses = call(queries().health)
    if not statuses:
        st.info("尚未配置信源。")
        return
    counts = summaries.health_counts(statuses)
    st.markdown(" · ".join(f"{fmt.md_escape(label)} {n}" for label, n in counts.items()))
    alarming = [s for s in statuses if s.status in ALARMING]
    if alarming:
        st.warning("需要关注：" + "；".join(fmt.md_escape(f"{s.source}（{fmt.STATUS_LABELS[s.status]}）")
                                        for s in alarming))


@live
def words_panel() -> None:
    q = queries()
    summary = call(q.summary)  # cached: the request of the first panel
    left, right = st.columns(2)
    with left:
        st.subheader("来源分布")
        by_source = summary.by_source
        if by_source:
            st.dataframe(
                pd.DataFrame({"来源": list(by_source), "条数": list(by_source.values())}),
                hide_index=True,
                column_config={"条数": st.column_config.ProgressColumn("条数", format="%d", min_value=0,
                                                                       max_value=max(by_source.values()))},
            )
        else:
            st.info("该时间范围内暂无舆情。")
    with right:
        st.subheader("热词")
        words = call(q.words)
        if words:
            st.dataframe(
                pd.DataFrame({"热词": [w for w, _ in words], "篇数": [n for _, n in words]}),
                hide_index=True,
                column_config={"篇数": st.column_config.ProgressColumn("篇数", format="%d", min_value=0,
                                                                       max_value=max(n for _, n in words))},
            )
        else:
            st.info("该时间范围内暂无热词。")


@live
def negative_panel() -> None:
    st.subheader("近期负面舆情")
    negative = call(queries().negative)
    if negative.total == 0:
        st.info("该时间范围内暂无负面舆情。")
        return
    st.markdown(fmt.count_line(negative.total, len(negative.hits)))
    for hit in negative.hits:
        components.post_card(hit.post, tz)


sentiment_panel()
left, right = st.columns(2)
with left:
    events_panel()
    health_panel()
with right:
    alerts_panel()
    tickets_panel()
    judging_panel()
words_panel()
negative_panel()
