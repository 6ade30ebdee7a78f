"""Source health: one record per source and run in ``<prefix>-source-health`` (:class:`SourceRun`), and each
source's status (the labels people read are the dashboard's).

Status, from the newest runs of a source:
- ``failing``: the last run failed (the crawl process died, or every request errored);
- ``silent``: the source yielded nothing (no item found, nothing answered "not modified") for
  ``crawl.silent_after_runs`` consecutive runs —
  a broken selector, a blocked crawler or a moved feed; this is different from
- ``calm``: the source answers with items but nothing new;
- ``ok``: new items in the last run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from index.client import WriteBlocked, blocked_answer
from index.layout import SOURCE_HEALTH
from index.records import SourceRun
from yuqing.errors import YuqingError

Status = Literal["ok", "calm", "silent", "failing", "unknown"]
ALARMING: frozenset[str] = frozenset({"silent", "failing"})


@dataclass(frozen=True)
class SourceStatus:
    source: str
    status: Status
    last_run: datetime | None
    last_success: datetime | None
    consecutive_empty: int
    last_error: str | None = None


def run_ok(*, found: int, indexed: int, errors: int) -> bool:
    """A run failed when it found nothing and everything it tried errored."""
    return not (errors > 0 and found == 0 and indexed == 0)


def crashed_run(source: str, kind: str, error: str, now: datetime) -> SourceRun:
    """The record of a crawl whose process died without a report."""
    return SourceRun(source=source, kind=kind, started_at=now, finished_at=now, ok=False, error=error,
                     finish_reason="crashed")


def run_id(run: SourceRun) -> str:
    """The record id of a run (pure): the same run always gets the same id, so writing it again is harmless."""
    key = "\x1f".join((run.source, run.kind, run.started_at.isoformat(), run.finished_at.isoformat()))
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def write_runs(client: Elasticsearch, prefix: str, runs: Sequence[SourceRun]) -> None:
    """Index ``runs``, each under its :func:`run_id`. Raises :class:`WriteBlocked` when the index is read-only
    and :class:`SourceHealthNotWritten` when a run was refused for another reason."""
    if not runs:
        return
    alias = SOURCE_HEALTH.alias(prefix)
    resp = client.bulk(operations=[line for r in runs for line in
                                   ({"index": {"_index": alias, "_id": run_id(r)}}, r.as_source())])
    if not resp["errors"]:
        return
    errors = [item["index"] for item in resp["items"] if "error" in item["index"]]
    first = errors[0]
    kind = first["error"].get("type") if isinstance(first["error"], dict) else str(first["error"])
    if any(blocked_answer(e.get("status"), e["error"].get("type") if isinstance(e["error"], dict) else None)
           for e in errors):
        raise WriteBlocked(f"source health: {len(errors)} of {len(runs)} runs not recorded")
    raise SourceHealthNotWritten(f"source health: {len(errors)} of {len(runs)} runs refused by {alias}: "
                                 f"{first.get('status')} {kind}")


class SourceHealthNotWritten(YuqingError):
    """Elasticsearch refused a source-health record for a reason other than a write block."""


def status_of(source: str, runs: list[SourceRun], silent_after: int) -> SourceStatus:
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


def source_statuses(client: Elasticsearch, prefix: str, sources: Sequence[str], silent_after: int,
                    history: int = 20) -> list[SourceStatus]:
    alias = SOURCE_HEALTH.alias(prefix)
    client.indices.refresh(index=alias)
    if not sources:
        return []
    # One round trip for every source (the dashboard's overview asks on each refresh).
    searches: list[dict[str, Any]] = []
    for name in sources:
        searches += [{"index": alias},
                     {"query": {"term": {"source": name}}, "size": history, "sort": [{"finished_at": "desc"}]}]
    out = []
    for name, resp in zip(sources, client.msearch(searches=searches)["responses"], strict=True):
        if "error" in resp:
            raise RuntimeError(f"reading the runs of source {name} from {alias}: {resp['error']}")
        out.append(status_of(name, [SourceRun.model_validate(h["_source"]) for h in resp["hits"]["hits"]],
                             silent_after))
    return out
