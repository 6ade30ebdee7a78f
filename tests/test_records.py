"""One record model per index, checked against its mapping in both directions; setup reaches old indices."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch
from pydantic import BaseModel

from index.events import EVENT_STATE, EVENTS, EventRecord, EventStateRecord
from index.foia import FOIA, FoiaRecord
from index.judgements import JUDGEMENTS, JudgementRecord
from index.layout import ALL_SPECS, CRAWL_STATE, POSTS, SOURCE_HEALTH, IndexSpec, setup_spec
from index.outbox import OUTBOX, OutboxEntry
from index.records import PageState, PostRecord, SourceRun
from index.tickets import TICKETS, TicketRecord
from nlp.segment import segment_for_index
from yuqing.models import Analysis, Engagement, Post, Reply
from yuqing.settings import Settings

RECORDS: dict[str, type[BaseModel]] = {
    POSTS.name: PostRecord, CRAWL_STATE.name: PageState, SOURCE_HEALTH.name: SourceRun,
    TICKETS.name: TicketRecord, FOIA.name: FoiaRecord, EVENTS.name: EventRecord, EVENT_STATE.name: EventStateRecord,
    OUTBOX.name: OutboxEntry, JUDGEMENTS.name: JudgementRecord,
}


def mapping_paths(properties: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, spec in properties.items():
        out.add(prefix + name)
        out |= mapping_paths(spec.get("properties", {}), f"{prefix}{name}.")
    return out


def opaque_paths(properties: dict[str, Any], prefix: str = "") -> set[str]:
    """Objects stored but not indexed (``enabled: false``): whatever a model keeps inside them is not mapped."""
    out: set[str] = set()
    for name, spec in properties.items():
        if spec.get("enabled") is False:
            out.add(prefix + name)
        out |= opaque_paths(spec.get("properties", {}), f"{prefix}{name}.")
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X | None``, ``list[X]`` …)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        out.add(prefix + name)
        for nested in _models_in(field.annotation):
            out |= model_paths(nested, f"{prefix}{name}.")
    return out


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: s.name)
def test_each_record_model_matches_its_mapping(spec: IndexSpec) -> None:
    opaque = opaque_paths(spec.mappings["properties"])
    fields = {f for f in model_paths(RECORDS[spec.name]) if not any(f.startswith(o + ".") for o in opaque)}
    mapped = mapping_paths(spec.mappings["properties"])
    assert not fields - mapped, f"fields of {RECORDS[spec.name].__name__} missing in the {spec.name} mapping"
    assert not mapped - fields, f"{spec.name} mapping fields missing in {RECORDS[spec.name].__name__}"


def test_a_post_survives_the_record_round_trip() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    analysis = Analysis(sentiment="negative", sentiment_probs={"negative": 0.7, "neutral": 0.2, "positive": 0.1},
                        relevant=True, relevance_prob=0.9, topic="文物保护", topic_probs={"文物保护": 0.6},
                        model_version="m1")
    post = Post(url="http://e.cn/1", title="古建筑失修", content="城墙多处坍塌。", source="s", kind="message",
                fetched_at=datetime(2026, 11, 27, 8, tzinfo=tz), published_at=datetime(2026, 11, 26, 8, tzinfo=tz),
                engagement=Engagement(likes=3), reply=Reply(text="已转文物局", unit="市文物局"),
                fingerprint="00ff00ff00ff00ff", analysis=analysis,
                title_seg=segment_for_index("古建筑失修"), content_seg=segment_for_index("城墙多处坍塌。"))
    source = PostRecord.from_post(post).as_source()
    assert PostRecord.source_of(post) == source  # the writer's fast path gives the record's _source
    plain = post.model_copy(update={"analysis": None, "fingerprint": None, "reply": None})
    assert PostRecord.source_of(plain) == PostRecord.from_post(plain).as_source()
    assert source["analysis"]["sentiment_score"] == 0.7 and source["analysis"]["topic_score"] == 0.6
    assert source["fingerprint_bands"] == ["0:00ff", "1:00ff", "2:00ff", "3:00ff"]
    assert "duplicate_of" not in source  # None is left out
    assert PostRecord.model_validate(source).to_post() == post


def test_setup_adds_new_mapping_fields_to_an_existing_index(settings: Settings, es_client: Elasticsearch) -> None:
    old = IndexSpec("probe", {"dynamic": "strict", "properties": {"a": {"type": "keyword"}}})
    new = IndexSpec("probe", {"dynamic": "strict", "properties": {"a": {"type": "keyword"}, "b": {"type": "long"}}})
    index = setup_spec(es_client, old, settings.elasticsearch)
    assert setup_spec(es_client, new, settings.elasticsearch) == index  # the same index, not a new one
    properties = es_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert set(properties) == {"a", "b"}
    es_client.index(index=index, document={"a": "x", "b": 1}, refresh=True)  # strict, and accepted
