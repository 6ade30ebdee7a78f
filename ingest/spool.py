"""A local spool for posts that could not be indexed (Elasticsearch unavailable): nothing crawled is lost.

Posts are written as JSON lines under ``<data_dir>/spool``; the next ingest session (a crawl, ``yuqing ingest``)
replays them first, through the same stages.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from yuqing.config_write import atomic_write_bytes
from yuqing.models import Post

log = logging.getLogger(__name__)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, posts: Iterable[Post], *, tag: str) -> Path:
        """Write ``posts`` to a new spool file (fsynced, renamed into place); returns its path. An OSError (a full
        disk) leaves no file behind, not even a partial one."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{tag}-{stamp}-{os.getpid()}.jsonl"
        atomic_write_bytes(path, "".join(post.model_dump_json() + "\n" for post in posts).encode("utf-8"))
        return path

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.jsonl")) if self.directory.is_dir() else []

    def read(self, path: Path) -> tuple[list[Post], int]:
        """The posts in a spool file and how many of its lines are not posts (each logged)."""
        posts: list[Post] = []
        bad = 0
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    posts.append(Post.model_validate_json(line))
                except ValidationError as exc:
                    bad += 1
                    log.error("spool %s line %d is not a post: %s", path, n, exc)
        return posts, bad

    def done(self, path: Path, *, bad_lines: int, refused: int = 0) -> None:
        """A replayed file: deleted, or kept as ``*.rejected`` for a person when some of its lines could not be read
        or Elasticsearch refused some of its posts (the same request would be refused again, and the pages may be
        gone from their source by now: the file is all that is left of them)."""
        if bad_lines or refused:
            target = path.with_suffix(".rejected")
            path.rename(target)
            why = "; ".join(part for part in (f"{bad_lines} unreadable lines" if bad_lines else "",
                                              f"{refused} posts refused by elasticsearch" if refused else "") if part)
            log.error("spool %s: %s; kept as %s (replay it with `yuqing ingest %s` once fixed)", path, why, target,
                      target)
        else:
            path.unlink()
