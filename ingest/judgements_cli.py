"""``yuqing judgements …`` (人工研判): list, make, export and re-apply people's relevance judgements.

``export`` writes the judged texts with their human labels (JSON lines or CSV) for the next training round;
``reapply`` writes every judgement into its indexed post again (after ``yuqing migrate``, say).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from yuqing.errors import YuqingError
from yuqing.settings import Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from index.judgements import JudgementRecord
    from ingest.judgements import JudgementService

_YES_NO = {"yes": True, "no": False}
EXPORT_FIELDS = ("post_id", "text", "relevant", "topic", "source", "judged_by", "judged_at", "model_relevant")


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    j = sub.add_parser("judgements", help="人工研判: people's relevance judgements of posts (list, set, export)")
    js = j.add_subparsers(dest="judgements_command", required=True)

    def filters(p: argparse.ArgumentParser) -> None:
        p.add_argument("--relevant", choices=tuple(_YES_NO), help="only posts judged relevant (yes) or not (no)")
        p.add_argument("--by", dest="judged_by", help="only this person's judgements")
        p.add_argument("--since", help="judged on or after this day (YYYY-MM-DD, local time)")
        p.add_argument("--differs", action="store_true", help="only where the person differs from the classifier")

    p = js.add_parser("list", help="the latest judgements, newest first")
    filters(p)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    p.set_defaults(func=cmd_list)

    p = js.add_parser("set", help="judge one post (by id or URL)")
    p.add_argument("post", help="post id, or the post's URL")
    p.add_argument("--relevant", choices=tuple(_YES_NO), required=True)
    p.add_argument("--topic", help="taxonomy topic (relevant posts only)")
    p.add_argument("--by", required=True, help="who judges (recorded)")
    p.add_argument("--note")
    p.set_defaults(func=cmd_set)

    p = js.add_parser("export", help="the judged texts with their labels, for the next training round")
    p.add_argument("file", type=Path, help="output file (.jsonl or .csv)")
    p.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file's suffix, else jsonl")
    filters(p)
    p.set_defaults(func=cmd_export)

    p = js.add_parser("reapply", help="write every judgement into its indexed post again")
    p.set_defaults(func=cmd_reapply)


def post_id_of(value: str) -> str:
    """A post id as given, or the id of a post's URL (pure)."""
    from yuqing.models import canonicalize_url, doc_id_for

    value = value.strip()
    if value.startswith(("http://", "https://")):
        return doc_id_for(canonicalize_url(value))
    return value


def since_of(value: str | None, tz: str) -> datetime | None:
    """The start of a local day given as YYYY-MM-DD (pure)."""
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise YuqingError(f"日期格式不对：{value!r}（例如 2026-09-28）") from exc
    return datetime.combine(day, time(), ZoneInfo(tz))


def _query(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    from index.judgements import judgement_query

    relevant = _YES_NO[args.relevant] if args.relevant else None
    return judgement_query(relevant=relevant, judged_by=args.judged_by, since=since_of(args.since, settings.timezone),
                           differs_from_model=args.differs)


def _service(settings: Settings, client: Elasticsearch) -> JudgementService:
    from ingest.judgements import JudgementService
    from nlp.taxonomy import load_taxonomy

    topics = load_taxonomy(settings.config_file("taxonomy.yaml")).names
    return JudgementService.ready(client, settings.elasticsearch, topics)


def _run(settings: Settings, body: Any) -> int:
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        result: int = body(_service(settings, client))
        return result


def _label(value: bool | None) -> str:
    return {True: "相关", False: "不相关", None: "未分析"}[value]


def record_line(r: JudgementRecord, tz: str) -> str:
    """One judgement as the list prints it (pure)."""
    at = r.judged_at.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    topic = f"（{r.topic}）" if r.topic else ""
    model = _label(r.model_relevant) + (f"（{r.model_topic}）" if r.model_topic else "")
    return f"{at}  {r.judged_by}  {_label(r.relevant)}{topic}  模型：{model}  {r.title[:40]}  {r.post_id}"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    def body(service: JudgementService) -> int:
        total, records = service.latest(_query(args, settings), size=args.limit)
        for r in records:
            print(json.dumps(r.model_dump(mode="json"), ensure_ascii=False) if args.json
                  else record_line(r, settings.timezone))
        if not args.json:
            print(f"共 {total} 条" + (f"，显示前 {len(records)} 条" if total > len(records) else ""))
        return 0

    return _run(settings, body)


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    def body(service: JudgementService) -> int:
        record = service.judge(post_id_of(args.post), relevant=_YES_NO[args.relevant], topic=args.topic,
                               by=args.by, at=datetime.now(ZoneInfo(settings.timezone)), note=args.note)
        print(record_line(record, settings.timezone))
        return 0

    return _run(settings, body)


def export_format(path: Path, given: str | None) -> str:
    """The export's format: as given, else from the file's suffix, else JSON lines (pure)."""
    return given or ("csv" if path.suffix.lower() == ".csv" else "jsonl")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    fmt = export_format(args.file, args.format)
    target: Path = args.file
    if target.parent and not target.parent.is_dir():
        raise YuqingError(f"导出目录不存在：{target.parent}")

    def body(service: JudgementService) -> int:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        count = relevant = 0
        try:
            with tmp.open("w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as out:
                writer = csv.DictWriter(out, EXPORT_FIELDS) if fmt == "csv" else None
                if writer is not None:
                    writer.writeheader()
                for row in service.export_rows(_query(args, settings)):
                    data = row.as_json()
                    if writer is not None:
                        writer.writerow(data)
                    else:
                        out.write(json.dumps(data, ensure_ascii=False) + "\n")
                    count += 1
                    relevant += int(row.relevant)
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise YuqingError(f"写入 {target} 失败：{exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        print(f"{target}: {count} judged texts ({relevant} relevant, {count - relevant} not relevant)")
        return 0

    return _run(settings, body)


def cmd_reapply(args: argparse.Namespace, settings: Settings) -> int:
    def body(service: JudgementService) -> int:
        print(f"{service.reapply()} posts carry their judgement again")
        return 0

    return _run(settings, body)

