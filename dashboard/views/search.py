"""检索: full-text search in the 专题 syntax (any words, +must, !exclude, "exact phrases"), filters, sorting,
highlighted matches, counts by source/topic/day, and CSV/Excel export of the whole result (masked by role)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from dashboard import components, data, downloads, judging, summaries
from dashboard import format as fmt
from events.keyword_groups import ExpressionError, parse_expression
from index.export import KIND_LABELS, ExportFormat
from index.search import PostQuery, SortOrder, highlight_terms

backend = components.backend_or_stop()
viewer = components.current_viewer()
settings = backend.settings
tz = settings.timezone
call = components.call_or_stop
CUSTOM = "自定义日期"
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("xlsx", "csv")
SYNTAX_HELP = ("空格分隔的词任一出现即可；`+词` 必须出现；`!词` 必须不出现；用引号 `\"…\"` 精确匹配含空格的短语。"
               "例：`图书馆 博物馆 +闭馆 !招聘`")

WINDOWS = [*data.OVERVIEW_WINDOWS, CUSTOM]
LINK_KEY = "search_link_followed"  # the query of the link whose filters were set (set once, then the user's)

st.title("检索")
today = datetime.now(ZoneInfo(tz)).date()
# A link from an alert mail or a report (/search?since=…&until=…&topic=…) sets the filters once; from then on they
# are the user's. The defaults, as session state (a widget given both a value and a state warns).
link_query = st.query_params.to_dict()
link = summaries.search_link_filters(link_query, KIND_LABELS)
follow = not link.empty and st.session_state.get(LINK_KEY) != repr(sorted(link_query.items()))
if follow:
    st.session_state[LINK_KEY] = repr(sorted(link_query.items()))
    st.session_state["search_text"] = link.text
    if link.since or link.until:
        st.session_state["search_window"] = CUSTOM
        st.session_state["search_dates"] = (link.since or link.until, link.until or today)
    else:
        st.session_state["search_window"] = WINDOWS[3]
    st.session_state["filter_sentiments"] = list(link.sentiments)
    st.session_state["filter_kinds"] = list(link.kinds)
    st.session_state["filter_no_reposts"] = link.no_reposts
    # what the link does not name is not filtered on (the counts in the mail are over all of it)
    for key, value in (("filter_units", []), ("filter_risks", []), ("filter_groups", []),
                       ("filter_relevance", "all"), ("search_sort", "newest")):
        st.session_state[key] = value
    st.session_state.pop("search_page", None)
for key, default in (("search_window", WINDOWS[3]), ("search_dates", (today - timedelta(days=7), today))):
    if key not in st.session_state:
        st.session_state[key] = default
text = st.text_input("检索式", key="search_text", placeholder="例：图书馆 +闭馆 !招聘（按回车检索）", help=SYNTAX_HELP)

everything = PostQuery()
with st.sidebar:
    st.header("筛选")
    window_label = st.selectbox("时间范围", WINDOWS, key="search_window")
    picked = st.date_input("起止日期", key="search_dates", disabled=window_label != CUSTOM)  # a range (state)
    dates = tuple(picked) if isinstance(picked, tuple | list) else (picked,)  # one date while picking the second
    source_counts = call(data.counts, backend, everything, "source")
    if follow:
        st.session_state["filter_sources"] = [s for s in link.sources if s in source_counts]
    sources = st.multiselect("来源", list(source_counts), key="filter_sources", placeholder="全部来源",
                             format_func=lambda s: f"{s}（{source_counts.get(s, 0)}）")
    kinds = st.multiselect("类型", list(KIND_LABELS), key="filter_kinds", placeholder="全部类型",
                           format_func=lambda k: KIND_LABELS.get(k, k))
    sentiments = st.multiselect("情感倾向", list(fmt.SENTIMENT_LABELS), key="filter_sentiments", placeholder="全部",
                                format_func=fmt.sentiment_label)
    relevance = st.radio("相关性", list(summaries.RELEVANCE_CHOICES), key="filter_relevance", horizontal=True,
                         format_func=summaries.RELEVANCE_CHOICES.__getitem__,
                         help="是否与文化工作相关：人工研判过的按人工结论，其余按模型判定")
    topic_counts = call(data.counts, backend, everything, "analysis.topic")
    if follow:
        st.session_state["filter_topics"] = [t for t in link.topics if t in topic_counts]
    topics = st.multiselect("主题", list(topic_counts), key="filter_topics", placeholder="全部主题")
    unit_counts = call(data.counts, backend, everything, "reply.unit")
    units = st.multiselect("答复单位", list(unit_counts), key="filter_units", placeholder="全部单位")
    risks = st.multiselect("事件风险等级", list(summaries.RISK_LABELS), key="filter_risks", placeholder="不限",
                           format_func=summaries.RISK_LABELS.__getitem__, help="只看属于这些等级事件的舆情")
    groups = st.multiselect("专题", data.keyword_group_names(backend), key="filter_groups", placeholder="全部专题")
    no_reposts = st.checkbox("不含转载", key="filter_no_reposts",
                             help="转载（与更早一条内容近似的信息）不列出，每条内容只算一次，与日报、周报的统计口径一致")
    sort: SortOrder = st.radio("排序", summaries.SORT_ORDERS, key="search_sort",
                    format_func=summaries.SORT_LABELS.__getitem__)

if follow:
    unknown = [v for v in (*link.sources, *link.topics) if v not in source_counts and v not in topic_counts]
    missing = f"链接中的“{fmt.md_escape('、'.join(unknown))}”暂无舆情，未作筛选。" if unknown else ""
    st.info(f"已按链接设置筛选条件，可在左侧修改。{missing}", icon="🔗")

since: datetime | None = None
until: datetime | None = None
window = data.OVERVIEW_WINDOWS.get(window_label)
if window_label == CUSTOM:
    if len(dates) != 2:
        st.info("请在左侧选择起止日期。")
        st.stop()
    zone = ZoneInfo(tz)
    since = datetime.combine(dates[0], time(), zone).astimezone(UTC)
    until = datetime.combine(dates[1] + timedelta(days=1), time(), zone).astimezone(UTC)
elif window is not None:
    since = data.window_start(datetime.now(UTC), window)

try:
    expression = parse_expression(text) if text.strip() else None
except ExpressionError as exc:
    components.fail(f"检索式无法识别：{exc}。{SYNTAX_HELP}")

query = summaries.apply_expression(PostQuery(
    sources=tuple(sources), kinds=tuple(kinds), sentiments=tuple(sentiments), topics=tuple(topics),
    units=tuple(units), groups=tuple(groups), relevant_only=relevance == "relevant",
    irrelevant_only=relevance == "irrelevant", since=since, until=until, sort=sort,
    size=settings.dashboard.page_size, exclude_duplicates=no_reposts,
), expression)
if risks:
    query = replace(query, event_ids=call(data.event_ids_of_risk, backend, tuple(sorted(risks))))

facets = call(data.facets, backend, query)
pages = max(1, -(-min(facets.total, 10_000) // query.size))
page = 1
if pages > 1:
    page = int(st.number_input(f"页码（共 {pages} 页）", min_value=1, max_value=pages, value=1, key="search_page"))
result = call(data.search, backend, replace(query, offset=(page - 1) * query.size))

if result.total == 0:
    hint = f"：{fmt.md_escape(text)}" if text.strip() else ""
    st.info(f"未找到相关舆情{hint}。可尝试更换检索式或放宽左侧筛选条件。", icon="🔍")
    st.stop()

st.markdown(fmt.count_line(result.total, len(result.hits), newest_first=sort == "newest") if page == 1 else
            f"共 {result.total} 条，第 {page} 页")
with st.expander("统计（按来源、主题、日期）"):
    by_source, by_topic, by_day = st.columns(3)
    by_source.dataframe(pd.DataFrame({"来源": list(facets.by_source), "条数": list(facets.by_source.values())}),
                        hide_index=True)
    by_topic.dataframe(pd.DataFrame({"主题": list(facets.by_topic), "条数": list(facets.by_topic.values())}),
                       hide_index=True)
    by_day.dataframe(pd.DataFrame({"日期": list(facets.by_day), "条数": list(facets.by_day.values())}),
                     hide_index=True)

with st.expander("导出检索结果（CSV / Excel）"):
    max_rows = settings.dashboard.export_max_rows
    st.caption(f"导出全部 {result.total} 条符合条件的结果（不只是本页），最多 {max_rows} 条；"
               "领导和分析人员导出的内容已遮盖个人信息。")
    export_format: ExportFormat = st.radio("格式", EXPORT_FORMATS, key="export_format", horizontal=True,
                             format_func={"xlsx": "Excel", "csv": "CSV"}.__getitem__)
    wanted = (repr(query), export_format)
    if st.button("生成导出文件", key="export_make"):
        made = call(downloads.export_download, backend, query, export_format, viewer, datetime.now(UTC))
        st.session_state["export_file"] = (wanted, made)
    ready = st.session_state.get("export_file")
    if ready is not None and ready[0] == wanted:
        file = ready[1]
        st.success(downloads.export_summary(file.stats, max_rows))
        st.download_button(f"下载 {file.file_name}", data=file.data, file_name=file.file_name, mime=file.mime,
                           key="export_download", type="primary")

terms = highlight_terms(query)
for hit in result.hits:
    components.post_card(hit.post, tz, terms, judge_link=judging.can_judge(viewer))
