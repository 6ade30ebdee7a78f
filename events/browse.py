"""``yuqing events list`` and ``yuqing events show``: the 热点事件 and 事件详情 pages at the terminal, read from the
events index (for an analyst, a script, or a press officer on a machine without the dashboard).

The list asks :func:`index.events.hot_events` exactly what the page asks (same filter, same order: the hottest
first; by default only the events in scope, saying how many were left out); the formatting is pure and
unit-tested. Times are shown in the office's time zone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from events.config import LEVEL_LABELS
from index.events import EventRecord, HotEvents
from index.search import PostHit
from yuqing.models import SENTIMENT_LABELS


def _t(value: datetime, tz: tzinfo) -> str:
    return f"{value.astimezone(tz):%m-%d %H:%M}"


def event_line(r: EventRecord, tz: tzinfo) -> str:
    """One row of the list: id, level, heat, size, last post, unit, title."""
    status = "" if r.status == "open" else "［已结束］" if r.status == "closed" else "［已合并］"
    scope = "" if r.in_scope else "［不需关注］"
    return (f"{r.event_id}  {r.risk_level:<3} 热度{r.heat:5.1f}  {r.count:>4}条  最新 {_t(r.last_post_at, tz)}  "
            f"{(r.unit or '—'):<8} {status}{scope}{r.title}")


def list_footer(found: HotEvents, in_scope_only: bool) -> str:
    """The count line under the list, naming what the filter left out."""
    shown = len(found.records)
    text = f"共 {found.total} 个事件" + (f"，显示热度最高的 {shown} 个" if found.total > shown else "")
    if in_scope_only and found.out_of_scope:
        text += f"；另有 {found.out_of_scope} 个与本局业务无关或只有本局发布信息的事件未列出（--all 可查看）"
    return text + "。"


def event_detail(r: EventRecord, tz: tzinfo) -> list[str]:
    """The 事件详情 of one event as lines of text."""
    first = r.first_post
    s = r.sentiment
    lines = [
        f"事件 {r.event_id}  {r.title}",
        f"  状态：{ {'open': '进行中', 'closed': '已结束', 'merged': '已合并'}[r.status]}"
        f"    风险等级：{LEVEL_LABELS[r.risk_level]}    热度：{r.heat:.1f}"
        f"（6小时后预计 {r.heat_6h:.1f}，24小时后 {r.heat_24h:.1f}）",
        f"  研判依据：{'；'.join(r.risk_reasons) or '—'}",
    ]
    if not r.in_scope:
        lines.append("  不需关注：不预警、不开处置单、不列入日报")
    if r.merged_into:
        lines.append(f"  已并入事件 {r.merged_into}（yuqing events show {r.merged_into}）")
    lines += [
        f"  主题：{r.topic or '—'}    责任单位：{r.unit or '—'}    业务相关占比：{r.relevance_share * 100:.0f}%",
        f"  时间：{_t(r.started_at, tz)} 至 {_t(r.last_post_at, tz)}（更新于 {_t(r.updated_at, tz)}）",
        f"  规模：{r.count} 条；来源：" + "、".join(f"{n.name} {n.count}" for n in r.sources[:8]),
        f"  情绪：负面 {s.negative}、中性 {s.neutral}、正面 {s.positive}" + (f"、未知 {s.unknown}" if s.unknown else "")
        + f"（负面占比 {r.negative_share * 100:.0f}%；不含本局发布）",
        f"  首发：{first.source} {_t(first.published_at, tz)} {first.title}" + (f" {first.url}" if first.url else ""),
        f"  本局发布：{f'{r.own_posts} 条' if r.own_posts else '尚无'}",
    ]
    if r.keywords:
        lines.append(f"  关键词：{'、'.join(r.keywords[:10])}")
    if r.places or r.orgs:
        lines.append(f"  地点：{'、'.join(r.places[:6]) or '—'}    机构：{'、'.join(r.orgs[:6]) or '—'}")
    if r.sensitive_words:
        lines.append(f"  敏感词：{'、'.join(r.sensitive_words)}")
    if r.hashtags:
        lines.append(f"  话题：{' '.join(f'#{t}#' for t in r.hashtags)}")
    if r.keyword_groups:
        lines.append(f"  专题：{'、'.join(r.keyword_groups)}")
    if r.level_history:
        lines.append("  等级变化：" + " → ".join(f"{h.level}（{_t(h.at, tz)}）" for h in r.level_history))
    if r.merged_from:
        lines.append(f"  并入的事件：{'、'.join(r.merged_from)}")
    return lines


def post_lines(total: int, hits: Sequence[PostHit], tz: tzinfo) -> list[str]:
    """The event's posts in time order (``--posts``)."""
    lines = [f"  信息（共 {total} 条" + (f"，显示前 {len(hits)} 条" if total > len(hits) else "") + "）："]
    for h in hits:
        p = h.post
        when = _t(p.published_at, tz) if p.published_at is not None else "时间不详"
        sentiment = SENTIMENT_LABELS.get(p.analysis.sentiment, "") if p.analysis is not None else ""
        title = p.title or p.content[:40]
        lines.append(f"    {when}  {p.source}  {sentiment:<2} {title}  {p.url}")
    return lines


def record_json(r: EventRecord) -> str:
    """One event as a JSON line (the stored record without its member ids)."""
    data: dict[str, Any] = r.model_dump(mode="json", exclude={"members"})
    return json.dumps(data, ensure_ascii=False)
