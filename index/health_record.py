"""Recording source health when Elasticsearch cannot take it: the runs are kept on disk and written first by
the next recording, so a crawl made while the cluster was down or refusing writes (the flood-stage block) still
shows in source health once it is back.

Each run is written under an id derived from its content (``index.source_health.run_id``), so a run written
twice — a spooled file replayed after a partial write — is one record. Spool files live in ``<data_dir>/spool/health``
(beside the posts' spool, not in it): ``runs-<time>-<pid>.jsonl``; a recording claims a file by renaming it
before writing it, so concurrent crawl processes never replay the same file twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from elasticsearch import ApiError, TransportError
from pydantic import ValidationError

from index.client import WriteBlocked, describe, es_client
from index.records import SourceRun
from index.source_health import SourceHealthNotWritten, write_runs
from yuqing.config_write import atomic_write_bytes
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)


class HealthSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def write(self, runs: Sequence[SourceRun]) -> Path:
        """Keep ``runs`` in a new file (fsynced, renamed into place); returns its path. An OSError (a full disk)
        leaves no file behind, not even a partial one."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"runs-{stamp}-{os.getpid()}.jsonl"
        atomic_write_bytes(path, "".join(run.model_dump_json() + "\n" for run in runs).encode("utf-8"))
        return path

    def claim(self) -> list[tuple[Path, list[SourceRun]]]:
        """The spooled files this process could claim (renamed to ``*.claimed-<pid>``), each with its runs; an
        unreadable line is logged and dropped (the rest of the file is kept)."""
        if not self.directory.is_dir():
            return []
        claimed: list[tuple[Path, list[SourceRun]]] = []
        for path in [*sorted(self.directory.glob("runs-*.jsonl")), *self._orphaned()]:
            mine = path.with_name(f"{path.name.split('.claimed-', 1)[0]}.claimed-{os.getpid()}")
            try:
                path.rename(mine)
            except FileNotFoundError:  # another process claimed it first
                continue
            runs: list[SourceRun] = []
            for n, line in enumerate(mine.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    runs.append(SourceRun.model_validate_json(line))
                except ValidationError as exc:
                    log.error("source-health spool %s line %d is not a run (dropped): %s", path, n, exc)
            claimed.append((mine, runs))
        return claimed

    def _orphaned(self) -> list[Path]:
        """Files claimed by a process that is gone (killed between claiming and writing, e.g. a crawl stopped at its
        timeout while Elasticsearch hung): free to claim again, or their runs would never be recorded."""
        out = []
        for path in sorted(self.directory.glob("runs-*.jsonl.claimed-*")):
            pid = path.name.rsplit(".claimed-", 1)[1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                log.info("source-health spool %s was claimed by process %s, which has ended: claimed again", path,
                         pid)
                out.append(path)
        return out

    @staticmethod
    def release(path: Path) -> None:
        """Give a claimed file back (its runs could not be written)."""
        path.rename(path.with_name(path.name.split(".claimed-", 1)[0]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def spool_dir(data_dir: Path) -> Path:
    return data_dir / "spool" / "health"


def record_runs(settings: ElasticsearchSettings, data_dir: Path, runs: Sequence[SourceRun]) -> bool:
    """Write ``runs`` and whatever earlier recordings had to keep; when Elasticsearch is unavailable or blocks
    writes, keep them all on disk (under ``data_dir``) for the next recording (logged once, with the reason).
    True when written."""
    directory = spool_dir(data_dir)
    spool = HealthSpool(directory)
    claimed = spool.claim()
    pending = [run for _, batch in claimed for run in batch]
    try:
        with es_client(settings) as client:
            write_runs(client, settings.index_prefix, [*pending, *runs])
    except (ApiError, TransportError, WriteBlocked, SourceHealthNotWritten) as exc:
        for path, _ in claimed:
            spool.release(path)
        if runs:
            try:
                spool.write(runs)
            except OSError as disk:  # a full disk as well: said, not raised (the crawl itself is done)
                log.error("could not record source health (%s) nor keep %d runs in %s (%s); those runs are lost, "
                          "%d earlier ones stay kept", describe(exc), len(runs), directory, disk.strerror or disk,
                          len(pending))
                return False
        log.error("could not record source health (%s); %d runs kept in %s, recorded by the next crawl",
                  describe(exc), len(runs) + len(pending), directory)
        return False
    except BaseException:  # a bug, or the process told to stop: what was claimed goes back, this run is kept
        for path, _ in claimed:
            spool.release(path)
        if runs:
            spool.write(runs)
        raise
    for path, _ in claimed:
        path.unlink()
    if pending:
        log.info("source health: %d runs kept while elasticsearch was unavailable are recorded now", len(pending))
    return True
