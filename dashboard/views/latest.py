"""最新舆情: the newest posts first, exact-substring keyword search, filters in the sidebar."""

from __future__ import annotations

import streamlit as st

from dashboard import components, data
from dashboard import format as fmt
from index.search import PostQuery, search_terms

backend = components.backend_or_stop()
tz = backend.settings.timezone

st.title("最新舆情")
text = st.text_input(
    "搜索关键词",
    key="search_text",
    placeholder="输入关键词后按回车；多个关键词用空格分隔，须同时出现",
)

with st.sidebar:
    st.header("筛选")
    source_counts = components.call_or_stop(data.counts, backend, PostQuery(), "source")
    sources = st.multiselect(
        "来源",
        options=list(source_counts),
        format_func=lambda s: f"{s}（{source_counts.get(s, 0)}）",
        key="filter_sources",
        placeholder="全部来源",
    )
    sentiments = st.multiselect(
        "情感倾向",
        options=list(fmt.SENTIMENT_LABELS),
        format_func=fmt.sentiment_label,
        key="filter_sentiments",
        placeholder="全部",
    )
    relevant_only = st.checkbox("仅看相关", key="filter_relevant", help="只显示模型判定与文化工作相关的舆情")

query = PostQuery(
    text=text.strip(),
    sources=tuple(sources),
    sentiments=tuple(sentiments),
    relevant_only=relevant_only,
    size=backend.settings.dashboard.page_size,
)
result = components.call_or_stop(data.search, backend, query)

if result.total == 0:
    hint = f"：{fmt.md_escape(query.text)}" if query.text else ""
    st.info(f"未找到相关舆情{hint}。可尝试更换关键词或放宽左侧筛选条件。", icon="🔍")
else:
    st.markdown(fmt.count_line(result.total, len(result.hits)))
    terms = search_terms(query.text)
    for hit in result.hits:
        components.post_card(hit.post, tz, terms)
