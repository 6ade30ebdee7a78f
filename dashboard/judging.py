"""Plain logic behind the 人工研判 page (no Streamlit here): who may judge, the queues, the judged list and its
export, a judgement made on the page's backend.

Press officers and admins judge; leaders and analysts see the judgements. A judgement names the signed-in user
(``显示名（用户名）``) and is written into the post at once (:mod:`ingest.judgements`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from dashboard.auth import Viewer
from dashboard.tracking import can_act, operator
from index.export import csv_cell
from index.judgements import JudgementRecord, judgement_query
from index.search import PostQuery
from ingest.judgements import JudgementService
from nlp.taxonomy import RuleEvidence
from yuqing.models import Analysis

QUEUE_LABELS: dict[str, str] = {
    "uncertain": "模型拿不准",
    "model_relevant": "模型判为相关（待确认）",
    "all_unjudged": "全部未研判",
}
QUEUE_HELP: dict[str, str] = {
    "uncertain": "相关概率接近判定阈值的舆情：人工判断最能纠正模型。",
    "model_relevant": "模型判为相关、会进入事件和预警的舆情，把握最小的排在前面：确认或排除。",
    "all_unjudged": "尚未经人工研判的全部舆情。",
}
READ_ONLY_NOTE = "您的角色（{role}）可查看人工研判结果；研判由宣传人员或管理员进行。"
UNDECIDED_TOPIC = "（暂不确定）"


def evidence_line(analysis: Analysis | None, evidence: RuleEvidence, threshold: float, shown: int = 6) -> str:
    """Why the model called a post what it did, for the person judging it: its relevance probability against the
    threshold, and what the keyword rules (as they are now) found, left unread or did not count."""
    parts = []
    if analysis is not None:
        parts.append(f"模型相关概率 {analysis.relevance_prob:.2f}（阈值 {threshold:.2f}）")

    def some(words: tuple[str, ...]) -> str:
        return "、".join(words[:shown]) + ("等" if len(words) > shown else "")

    if evidence.abroad:
        parts.append("关键词规则：涉及境外，不计")
    elif evidence.hits:
        parts.append(f"关键词规则命中：{some(evidence.hits)}")
    else:
        parts.append("关键词规则未命中" + (f"（仅泛用词：{some(evidence.weak)}）" if evidence.weak else ""))
    if evidence.silenced:
        parts.append(f"扰民投诉中不计：{some(evidence.silenced)}")
    if evidence.ignored:
        parts.append(f"地名或转发者不计：{some(evidence.ignored)}")
    return " · ".join(parts)


def can_judge(viewer: Viewer | None) -> bool:
    """Press officers and admins judge (as they act on tickets); leaders and analysts read."""
    return can_act(viewer)


def queue_query(queue: str, *, threshold: float, margin: float, size: int, since: datetime | None = None,
                sources: Sequence[str] = ()) -> PostQuery:
    """The posts of a 待研判 queue (one of :data:`QUEUE_LABELS`; pure): never judged, first publications only;
    newest first, except 模型判为相关: least sure first."""
    base = PostQuery(judged=False, exclude_duplicates=True, since=since, sources=tuple(sources), size=size)
    if queue == "uncertain":
        low, high = max(0.0, threshold - margin), min(1.0, threshold + margin)
        return replace(base, relevance_prob=(round(low, 4), round(high, 4)))
    if queue == "model_relevant":  # least sure first: the likeliest mistakes (a keyword hit, little else)
        return replace(base, relevant_only=True, sort="least_sure")
    if queue == "all_unjudged":
        return base
    raise ValueError(f"unknown queue {queue!r}; one of {list(QUEUE_LABELS)}")


@dataclass(frozen=True)
class JudgedFilter:
    """What the 已研判 list shows."""

    relevant: bool | None = None
    differs_only: bool = False
    mine_only: bool = False


def judged_query(f: JudgedFilter, viewer: Viewer | None) -> dict[str, object]:
    """The judgements query of the 已研判 list (pure)."""
    by = operator(viewer) if f.mine_only and viewer is not None else None
    return judgement_query(relevant=f.relevant, judged_by=by, differs_from_model=f.differs_only)


def topic_choice(relevant: bool, choice: str | None) -> str | None:
    """The topic a form's choice stands for (pure): none for 不相关 or 暂不确定."""
    if not relevant or not choice or choice == UNDECIDED_TOPIC:
        return None
    return choice


def relevance_label(value: bool | None) -> str:
    return {True: "相关", False: "不相关", None: "未分析"}[value]


def judgement_line(r: JudgementRecord, tz: str) -> str:
    """A judged post's summary under its title (pure; plain text, the caller escapes it)."""
    at = r.judged_at.astimezone(ZoneInfo(tz)).strftime("%m-%d %H:%M")
    human = relevance_label(r.relevant) + (f"·{r.topic}" if r.topic else "")
    model = relevance_label(r.model_relevant) + (f"·{r.model_topic}" if r.model_topic else "")
    times = f"（共 {len(r.history)} 次研判）" if len(r.history) > 1 else ""
    return f"人工研判：{human} · 模型：{model} · {r.judged_by} {at}{times}"


EXPORT_COLUMNS = ("研判时间", "研判人", "人工结论", "人工主题", "模型结论", "模型主题", "模型相关概率", "来源", "标题",
                  "链接", "备注")


def judged_csv(records: Sequence[JudgementRecord], tz: str, mask: Callable[[str], str] = lambda text: text) -> bytes:
    """The 已研判 list as a CSV for Excel (UTF-8 with BOM; pure). ``mask`` is applied to titles and notes (the
    viewer's role, as on the page); a cell that starts like a formula is kept as text."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(EXPORT_COLUMNS)
    zone = ZoneInfo(tz)
    for r in records:
        w.writerow([csv_cell(v) for v in (
            r.judged_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), r.judged_by, relevance_label(r.relevant),
            r.topic or "", relevance_label(r.model_relevant), r.model_topic or "",
            "" if r.relevance_prob is None else f"{r.relevance_prob:.3f}", r.source or "", mask(r.title), r.url or "",
            mask(r.note or ""))])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def judge(service: JudgementService, viewer: Viewer, post_id: str, *, relevant: bool, topic: str | None,
          note: str | None, now: datetime) -> JudgementRecord:
    """Record the viewer's judgement (raises :class:`PermissionError` for a read-only role)."""
    if not can_judge(viewer):
        raise PermissionError(f"{viewer.role} may not judge posts")
    return service.judge(post_id, relevant=relevant, topic=topic, by=operator(viewer), at=now, note=note)
