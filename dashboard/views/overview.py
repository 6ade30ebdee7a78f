"""舆情概览 (for 预判): totals by sentiment, posts per source, hot words and the recent negative posts."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import streamlit as st

from dashboard import components, data
from dashboard import format as fmt
from index.search import PostQuery

backend = components.backend_or_stop()
call = components.call_or_stop

st.title("舆情概览")
with st.sidebar:
    st.header("筛选")
    window_label = st.selectbox(
        "时间范围", options=list(data.OVERVIEW_WINDOWS), index=1, key="overview_window"
    )

window = data.OVERVIEW_WINDOWS[window_label]
since = data.window_start(datetime.now(UTC), window) if window is not None else None
base = PostQuery(since=since)
st.caption(f"统计范围：{window_label}（按发布时间）")

total = call(data.total, backend, base)
by_sentiment = call(data.counts, backend, base, "analysis.sentiment")
columns = st.columns(5)
columns[0].metric("舆情总数", total)
for column, (value, label) in zip(columns[1:4], fmt.SENTIMENT_LABELS.items(), strict=True):
    column.metric(label, by_sentiment.get(value, 0))
columns[4].metric(fmt.UNANALYSED_LABEL, total - sum(by_sentiment.values()))

left, right = st.columns(2)
with left:
    st.subheader("来源分布")
    by_source = call(data.counts, backend, base, "source")
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
    words = call(data.hot_words, backend, base, 20)
    if words:
        st.dataframe(
            pd.DataFrame({"热词": [w for w, _ in words], "篇数": [n for _, n in words]}),
            hide_index=True,
            column_config={"篇数": st.column_config.ProgressColumn("篇数", format="%d", min_value=0,
                                                                   max_value=max(n for _, n in words))},
        )
    else:
        st.info("该时间范围内暂无热词。")

st.subheader("近期负面舆情")
negative = call(data.search, backend, PostQuery(since=since, sentiments=("negative",), size=10))
if negative.total == 0:
    st.info("该时间范围内暂无负面舆情。")
else:
    st.markdown(fmt.count_line(negative.total, len(negative.hits)))
    for hit in negative.hits:
        components.post_card(hit.post, backend.settings.timezone)
