"""Writing configuration files back: validated with the start-up models, replaced atomically, never half-written.

A settings form (dashboard 设置) or a command (`yuqing users`) hands :func:`write_config` the edited data, the
same pydantic model the loader validates the file with at start-up, and optionally that loader itself:

1. the data is validated with the model; a bad value raises :class:`ConfigError` naming the file and the field;
2. the YAML is written to a temporary file in the same folder, flushed and fsynced;
3. the loader reads the temporary file (so checks outside the model, such as duplicate source names, apply);
4. ``os.replace`` swaps it in (atomic on POSIX) and the folder is fsynced.

A crash before step 4 leaves the old file untouched (at worst a hidden ``.<name>.*.tmp`` file, removed by the next
write). Writers of one file are serialised by an advisory lock (``.<name>.lock`` beside it), and a writer that
read the file earlier can pass ``expected_digest`` to refuse overwriting somebody else's newer edit.

Comments inside the file are not kept (PyYAML), but the comment block at its top (the file's documentation) is.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from yuqing.config_files import validation_to_config_error
from yuqing.errors import ConfigError, YuqingError

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

DEFAULT_MODE = 0o644


class ConfigConflictError(YuqingError):
    """The file changed since the editor read it; writing would silently drop the other edit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} was changed by someone else since it was read; reload it and edit again")


ABSENT = "absent"


def file_digest(path: Path) -> str:
    """SHA-256 of the file's bytes (:data:`ABSENT` when there is no file): what an editor read, to pass back
    as ``expected_digest``."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ABSENT


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the advisory write lock of ``path`` (a ``.<name>.lock`` file beside it) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_files(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def atomic_write_bytes(
    path: Path, data: bytes, *, mode: int | None = None, before_replace: Callable[[Path], object] | None = None
) -> None:
    """Replace ``path`` with ``data`` atomically: temp file in the same folder, fsync, ``os.replace``, fsync folder.

    ``mode`` defaults to the current file's mode (0644 for a new file). ``before_replace`` is called with the
    temporary file's path once it is complete and may raise to abandon the write (the old file stays as it is).
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = DEFAULT_MODE
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


def leading_comments(text: str) -> str:
    """The comment block at the top of a YAML text (comment and blank lines before the first content line)."""
    lines: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "".join(lines)


def render_yaml(data: Mapping[str, Any], header: str = "") -> str:
    """``data`` as block-style YAML (Chinese kept readable, key order kept) after the ``header`` comments."""
    body = yaml.safe_dump(dict(data), allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000)
    if header and not header.endswith("\n"):
        header += "\n"
    return header + body


def validate(path: Path, data: Mapping[str, Any], model: type[M]) -> M:
    """``data`` validated with ``model``; a bad value raises :class:`ConfigError` naming ``path`` and the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_to_config_error(exc, path) from exc


def write_config(
    path: Path,
    data: Mapping[str, Any],
    model: type[M],
    *,
    check: Callable[[Path], object] | None = None,
    expected_digest: str | None = None,
    mode: int | None = None,
    new_file_header: str = "",
) -> M:
    """Validate ``data`` with ``model`` (and ``check``, the start-up loader, on the written bytes), then replace
    ``path`` atomically. Returns the validated model.

    ``data`` is plain YAML-able data (what a form edits, or ``model_dump(mode="json")``). ``expected_digest``
    (from :func:`file_digest` when the editor read the file; ``None`` skips the check) refuses the write with
    :class:`ConfigConflictError` when the file has changed since. ``new_file_header`` (YAML comments) opens a
    file written for the first time. Raises :class:`ConfigError` naming ``path`` and the offending field; the
    file is then left exactly as it was.
    """
    validated = validate(path, data, model)
    with locked(path):
        for stale in _temp_files(path):  # left by a writer that crashed before its replace
            log.warning("removing %s, left by an interrupted write of %s", stale, path)
            stale.unlink(missing_ok=True)
        if expected_digest is not None and file_digest(path) != expected_digest:
            raise ConfigConflictError(path)
        try:
            header = leading_comments(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            header = new_file_header
        text = render_yaml(data, header)

        def _check(tmp: Path) -> None:
            if check is None:
                return
            try:
                check(tmp)
            except ConfigError as exc:
                raise ConfigError(exc.detail, file=path, field=exc.field) from exc

        atomic_write_bytes(path, text.encode("utf-8"), mode=mode, before_replace=_check)
    log.debug("wrote %s", path)
    return validated
