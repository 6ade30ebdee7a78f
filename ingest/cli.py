"""``yuqing ingest FILE.jsonl``: ingest posts from a JSON-lines file (imports, analysts' collections).

Each line is one JSON object with the fields of a post (``yuqing.models.Post``): at least ``url`` and
``source`` (or ``--source``), usually ``title``, ``content``, ``published_at`` (ISO 8601 with a UTC offset),
``kind``, ``author``, ``site``. ``fetched_at`` defaults to the time of the import. Every line is checked; a bad
one is reported with its line number and left out, the good ones go through the same stages as crawled posts
(redaction, classifier, segmentation, near-duplicates, index). Exit status 1 when a line was bad or a post
could not be indexed.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from yuqing.config_files import field_path
from yuqing.errors import YuqingError
from yuqing.models import Engagement, Post, Reply
from yuqing.settings import Settings

log = logging.getLogger(__name__)


class BadLine(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line


# What an import line gives (README: Importing posts); the other fields of a post are derived by the ingest stages
IMPORT_FIELDS = ("url", "title", "content", "source", "site", "kind", "author", "published_at", "fetched_at",
                 "engagement", "category", "reply", "repost_of")


def _no_unknown_keys(data: dict[str, Any], line: int) -> None:
    """A key that is no post field (``text`` for ``content``, ``publish_time``) would be dropped silently by the
    model, and the post imported without it: refused instead, naming the key and the fields to use."""
    for where, model, value, fields in (
            ("", Post, data, IMPORT_FIELDS),
            ("engagement.", Engagement, data.get("engagement"), tuple(Engagement.model_fields)),
            ("reply.", Reply, data.get("reply"), tuple(Reply.model_fields))):
        if not isinstance(value, dict):
            continue
        unknown = [k for k in value if k not in model.model_fields]
        if unknown:
            raise BadLine(line, f"field '{where}{unknown[0]}': not a field of a post here; the fields are "
                                f"{', '.join(where + k for k in fields)}")


def parse_line(text: str, line: int, *, source: str | None, fetched_at: datetime) -> Post:
    """The post on one line; raises :class:`BadLine` naming the line and the field."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadLine(line, f"not JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise BadLine(line, f"expected a JSON object, got {type(data).__name__}")
    _no_unknown_keys(data, line)
    if source is not None:
        data.setdefault("source", source)
    data.setdefault("fetched_at", fetched_at.isoformat())
    try:
        return Post.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise BadLine(line, f"field '{field_path(tuple(first['loc']))}': {first['msg']}{more}") from exc


def read_posts(path: Path, *, source: str | None, fetched_at: datetime, bad: list[BadLine]) -> Iterator[Post]:
    """The good posts of ``path``, in order; each bad line is logged and appended to ``bad``."""
    with path.open(encoding="utf-8-sig") as fh:
        for n, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield parse_line(text, n, source=source, fetched_at=fetched_at)
            except BadLine as exc:
                log.error("%s: %s", path, exc)
                bad.append(exc)


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.session import IngestSession
    from yuqing.progress import progress

    path: Path = args.file
    if not path.is_file():
        raise YuqingError(f"no such file: {path}")
    with path.open(encoding="utf-8-sig") as fh:
        lines = sum(1 for text in fh if text.strip())
    bad: list[BadLine] = []
    session = IngestSession(settings, source=None, tag=f"ingest:{path.stem}")
    session.open()
    with progress(f"ingest {path.name}", total=lines, unit="posts") as bar:
        session.on_batch = lambda report: bar.update(report.received)
        try:
            for post in read_posts(path, source=args.source, fetched_at=datetime.now().astimezone(), bad=bad):
                session.add(post)
        finally:
            report = session.close()
        bar.update(len(bad))
    print(f"{path}: {lines} lines, {len(bad)} bad; {report.summary()}")
    return 1 if bad or report.index_errors else 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="ingest posts from a JSON-lines file (one post's fields per line)")
    p.add_argument("file", type=Path, help="JSON lines: url, source, title, content, published_at, …")
    p.add_argument("--source", help="the source of lines that name none")
    p.set_defaults(func=_ingest)
