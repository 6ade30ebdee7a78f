"""人工研判 (``judge``; ``judge?post=<id>`` opens one post, as the 研判 links of 检索 and 事件详情 do): press officers
mark posts 相关 / 不相关 with a topic, from queues of posts nobody judged yet (模型拿不准 first); the 已研判 list
shows who judged what against the model's call, with a CSV download. Leaders and analysts read. Thin: the rules
are ``dashboard.judging`` and ``ingest.judgements``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import components, data, judging
from dashboard import format as fmt
from index.versioned import ConcurrentUpdateError, RecordExistsError
from ingest.judgements import JudgementError, PostNotUpdatedError
from ingest.stages.analyse import analysis_text
from nlp.taxonomy import rule_evidence
from yuqing.models import Post

T = TypeVar("T")
QUEUE_SIZE = 20
JUDGED_SHOWN = 100
FLASH = "judge_flash"

viewer = components.require_page("judge")
backend = components.backend_or_stop()
settings = backend.settings
tz = settings.timezone
call = components.call_or_stop
acting = judging.can_judge(viewer)
service = call(data.judgement_service, backend)
topics = list(service.topics)
taxonomy = call(data.taxonomy, settings.config_file("taxonomy.yaml"))


def es(func: Callable[[], T]) -> T:
    return components.es_or_stop(backend, func)


st.title("人工研判")
st.caption("人工判断舆情是否与本局文化工作相关、属于哪类主题。研判结果立即覆盖模型结论，检索、专题、事件和预警随之调整，"
           "重新采集后仍然保留，并可导出作为模型下一轮训练的标注。")
flash = st.session_state.pop(FLASH, None)
if flash:
    st.success(flash)
if not acting and viewer is not None:
    st.info(judging.READ_ONLY_NOTE.format(role=viewer.role_label))


def save(post: Post, relevant: bool, choice: str | None, note: str) -> None:
    assert viewer is not None
    topic = judging.topic_choice(relevant, choice)
    try:
        with data.es_errors(backend):
            judging.judge(service, viewer, post.doc_id, relevant=relevant, topic=topic, note=note,
                          now=datetime.now(ZoneInfo(tz)).replace(microsecond=0))
    except PostNotUpdatedError:
        # stored: a second try would meet its own judgement as someone else's; the jobs write it into the post
        st.warning("研判已保存，但写入该条舆情时出错（Elasticsearch 暂不可用）。系统将在下一轮采集后自动更新该条舆情，"
                   "无需重复提交。")
        data.clear_cached_queries()
        return
    except (RecordExistsError, ConcurrentUpdateError):
        st.warning("这条舆情刚刚已由他人研判，页面已刷新为最新结果；如需修改请再次提交。")
        data.clear_cached_queries()
        return
    except (JudgementError, data.DashboardError) as exc:
        st.error(f"研判未保存：{exc}")
        return
    data.clear_cached_queries()
    verdict = "相关" + (f"（{topic}）" if topic else "") if relevant else "不相关"
    st.session_state[FLASH] = f"已保存：「{fmt.md_escape(post.title[:30])}」研判为{verdict}。"
    st.rerun()


def judge_form(post: Post) -> None:
    """The 相关 / 不相关 form under a post, preset to the current call (the person's, else the model's)."""
    a = post.analysis
    relevant_now = a.relevant if a is not None else None
    topic_now = a.topic if a is not None else None
    with st.form(f"judge-{post.doc_id}", border=False):
        left, mid, right = st.columns([2, 3, 4])
        choice = left.radio("是否相关", ["相关", "不相关"], index=0 if relevant_now is not False else 1,
                            horizontal=True, key=f"judge-rel-{post.doc_id}")
        options = [judging.UNDECIDED_TOPIC, *topics]
        topic = mid.selectbox("主题（相关时）", options,
                              index=options.index(topic_now) if topic_now in options else 0,
                              key=f"judge-topic-{post.doc_id}")
        note = right.text_input("备注（可选）", key=f"judge-note-{post.doc_id}", max_chars=500)
        if st.form_submit_button("保存研判", type="primary", key=f"judge-save-{post.doc_id}"):
            save(post, choice == "相关", topic, note)


def show(post: Post, record_line: str | None = None) -> None:
    components.post_card(post, tz)
    evidence = rule_evidence(analysis_text(post), taxonomy)
    line = judging.evidence_line(post.analysis, evidence, settings.nlp.relevance_threshold)
    st.caption(fmt.md_escape(components.viewer_mask()(line)))  # it quotes the post (an address, a repost author)
    if record_line:
        st.caption(fmt.md_escape(record_line))
    if acting:
        judge_form(post)


wanted = st.query_params.get("post") or ""
if wanted:
    st.subheader("指定舆情")
    try:
        one = es(lambda: service.post(wanted))
    except JudgementError:
        st.warning("未找到该舆情（可能已被清除）。")
    else:
        existing = es(lambda: service.get(wanted))
        show(one, judging.judgement_line(existing.record, tz) if existing is not None else None)
    st.divider()

queue_tab, judged_tab = st.tabs(["待研判", "已研判"])

with queue_tab:
    queue = st.radio("队列", list(judging.QUEUE_LABELS), key="judge_queue", horizontal=True,
                     format_func=judging.QUEUE_LABELS.__getitem__)
    st.caption(judging.QUEUE_HELP[queue])
    query = judging.queue_query(queue, threshold=settings.nlp.relevance_threshold,
                                margin=settings.dashboard.judge_margin, size=QUEUE_SIZE)
    result = call(data.search, backend, query)
    if result.total == 0:
        st.info("该队列暂无待研判的舆情。")
    else:
        more = f"，显示前 {len(result.hits)} 条" if result.total > len(result.hits) else ""
        st.markdown(f"共 {result.total} 条待研判{more}")
        for hit in result.hits:
            if hit.post.doc_id != wanted:  # shown above already (its form once)
                show(hit.post)

with judged_tab:
    c1, c2, c3 = st.columns(3)
    relevance = c1.radio("人工结论", ["全部", "相关", "不相关"], key="judged_relevance", horizontal=True)
    differs = c2.checkbox("只看与模型不一致", key="judged_differs")
    mine = c3.checkbox("只看我的研判", key="judged_mine")
    f = judging.JudgedFilter(relevant={"相关": True, "不相关": False}.get(relevance), differs_only=differs,
                             mine_only=mine)
    total, records = es(lambda: service.latest(judging.judged_query(f, viewer), size=JUDGED_SHOWN))
    if total == 0:
        st.info("暂无人工研判记录。")
    else:
        mask = components.viewer_mask()
        st.markdown(f"共 {total} 条研判" + (f"，显示最新 {len(records)} 条" if total > len(records) else ""))
        every = es(lambda: service.everything(judging.judged_query(f, viewer), settings.dashboard.export_max_rows))
        st.download_button(f"下载全部 {len(every)} 条研判记录（CSV）", data=judging.judged_csv(every, tz, mask),
                           file_name="人工研判记录.csv", mime="text/csv", key="judged_download")
        lines = []
        for r in records:
            title = fmt.title_link(mask(r.title) or "（无标题）", r.url or "")
            lines.append(f"- **{title}**  \n:gray[:small[{fmt.md_escape(judging.judgement_line(r, tz))}]]")
        st.markdown("\n".join(lines))
