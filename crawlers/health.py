"""Source health: one record per source and run in Elasticsearch, and each source's status.

Status, from the newest runs of a source:
- ``failing``: the last run failed (the crawl process died, or every request errored);
- ``silent``: the source yielded nothing (no item found, nothing answered "not modified") for
  ``crawl.silent_after_runs`` consecutive runs —
  a broken selector, a blocked crawler or a moved feed; this is different from
- ``calm``: the source answers with items but nothing new;
- ``ok``: new items in the last run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from crawlers.runner import CrawlReport, SourceRun
from index.client import make_client
from index.layout import SOURCE_HEALTH
from yuqing.settings import Settings

log = logging.getLogger(__name__)

Status = Literal["ok", "calm", "silent", "failing", "unknown"]
STATUS_LABELS: dict[str, str] = {
    "ok": "正常", "calm": "平静(无新内容)", "silent": "静默(无任何产出)", "failing": "失败", "unknown": "未运行",
}


@dataclass(frozen=True)
class RunRecord:
    source: str
    kind: str
    started_at: datetime
    finished_at: datetime
    found: int = 0
    new: int = 0
    indexed: int = 0
    unchanged: int = 0
    errors: int = 0
    spooled: int = 0
    ok: bool = True
    error: str | None = None
    finish_reason: str = ""

    def to_source(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None}
        out["started_at"] = self.started_at.isoformat()
        out["finished_at"] = self.finished_at.isoformat()
        return out

    @classmethod
    def from_source(cls, src: dict[str, Any]) -> RunRecord:
        data = dict(src)
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["finished_at"] = datetime.fromisoformat(data["finished_at"])
        return cls(**data)


@dataclass(frozen=True)
class SourceStatus:
    source: str
    status: Status
    last_run: datetime | None
    last_success: datetime | None
    consecutive_empty: int
    last_error: str | None = None


def run_ok(run: SourceRun) -> bool:
    """A run failed when it found nothing and everything it tried errored."""
    return not (run.errors > 0 and run.found == 0 and run.indexed == 0)


def records_from_report(report: CrawlReport, now: datetime) -> list[RunRecord]:
    """One record per source of a finished crawl."""
    started = datetime.fromisoformat(report.started_at)
    finished = datetime.fromisoformat(report.finished_at) if report.finished_at else now
    return [
        RunRecord(source=r.source, kind=r.kind, started_at=started, finished_at=finished, found=r.found, new=r.new,
                  indexed=r.indexed, unchanged=r.unchanged, errors=r.errors, spooled=r.spooled, ok=run_ok(r),
                  finish_reason=r.finish_reason)
        for r in report.sources
    ]


def write_records(client: Elasticsearch, prefix: str, records: list[RunRecord]) -> None:
    alias = SOURCE_HEALTH.alias(prefix)
    for rec in records:
        client.index(index=alias, document=rec.to_source())


def record_crash(settings: Settings, source: str, kind: str, error: str) -> None:
    """Record a crawl whose process died without a report (the scheduler's hook; a crawl that finishes
    records its own runs)."""
    now = datetime.now().astimezone()
    record = RunRecord(source=source, kind=kind, started_at=now, finished_at=now, ok=False, error=error,
                       finish_reason="crashed")
    client = make_client(settings.elasticsearch)
    try:
        write_records(client, settings.elasticsearch.index_prefix, [record])
    finally:
        client.close()


def status_of(source: str, runs: list[RunRecord], silent_after: int) -> SourceStatus:
    """Status from a source's runs, newest first (pure)."""
    if not runs:
        return SourceStatus(source, "unknown", None, None, 0)
    empty = 0
    for r in runs:
        if r.ok and r.found == 0 and r.unchanged == 0:  # a 304 (unchanged) is an answer, not silence
            empty += 1
        else:
            break
    # The last run that delivered: items found, or the source answered "not modified".
    last_success = next((r.finished_at for r in runs if r.ok and (r.found or r.unchanged)), None)
    newest = runs[0]
    status: Status
    if not newest.ok:
        status = "failing"
    elif empty >= silent_after:
        status = "silent"
    elif newest.new == 0:
        status = "calm"
    else:
        status = "ok"
    return SourceStatus(source, status, newest.finished_at, last_success, empty, newest.error)


def source_statuses(client: Elasticsearch, prefix: str, sources: list[str], silent_after: int,
                    history: int = 20) -> list[SourceStatus]:
    alias = SOURCE_HEALTH.alias(prefix)
    client.indices.refresh(index=alias)
    out = []
    for name in sources:
        resp = client.search(index=alias, query={"term": {"source": name}}, size=history,
                             sort=[{"finished_at": "desc"}])
        out.append(status_of(name, [RunRecord.from_source(h["_source"]) for h in resp["hits"]["hits"]],
                             silent_after))
    return out
