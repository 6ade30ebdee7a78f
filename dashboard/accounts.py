"""Stored accounts: ``users.yaml`` read and changed through the atomic config writer, and the failed-login
ledger under ``data_dir`` (so neither a restart nor a second browser tab resets a lock-out).

Why a small file and not an Elasticsearch index: one dashboard server is the deployment, the ledger must keep
working (and refusing) while the cluster is unreachable, and it is a handful of entries that expire within
``dashboard.login_lockout_min``. Writers are serialised with an advisory lock and replace the file atomically.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dashboard.auth import (
    DEFAULT_ROUNDS,
    AttemptRecord,
    LoginPolicy,
    Role,
    UsersFile,
    UserSpec,
    hash_password,
    is_stale,
    normalize_username,
)
from yuqing.config_files import load_model, validation_to_config_error
from yuqing.config_write import ConfigConflictError, atomic_write_bytes, file_digest, locked, write_config
from yuqing.errors import YuqingError
from yuqing.settings import Settings

log = logging.getLogger(__name__)

USERS_FILE = "users.yaml"
DEMO_ADMIN = "admin"
USERS_FILE_HEADER = """\
# Dashboard accounts. Manage them with `yuqing users add|passwd|list|remove|unlock` (or 设置 in the dashboard);
# passwords are stored only as bcrypt hashes. Roles: press_officer (宣传人员) and admin (管理员) see personal data
# as stored; leader (领导) and analyst (分析人员) see it masked (config/privacy.yaml); only admins open 设置.
# This file holds credentials: keep it out of version control and readable only by the service.
"""
_UPDATE_TRIES = 3


class AccountError(YuqingError):
    """A user-management request that cannot be done (unknown or duplicate user, last admin, ...)."""


class LedgerWriteError(YuqingError, OSError):
    """The failed-login ledger cannot be written (a full disk, a read-only folder); logged where it happened.
    An OSError (``errno``/``strerror`` of the cause), so :func:`dashboard.auth.attempt_login`, which does not
    import this module, can tell it from a bug."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.path = path

    def __str__(self) -> str:
        return f"the login failure ledger {self.path} cannot be written ({self.strerror})"


def users_path(settings: Settings) -> Path:
    return settings.config_file(USERS_FILE)


def attempts_path(settings: Settings) -> Path:
    return settings.paths.data_dir / "auth" / "login_failures.json"


def login_policy(settings: Settings) -> LoginPolicy:
    d = settings.dashboard
    return LoginPolicy(max_failures=d.login_max_failures, lockout=timedelta(minutes=d.login_lockout_min),
                       session_ttl=timedelta(minutes=d.session_ttl_min))


def load_users(path: Path) -> UsersFile:
    """The users of ``path``; no file means no users yet; a malformed file raises ConfigError naming the field."""
    if not path.exists():
        return UsersFile()
    return load_model(path, UsersFile)


def update_users(path: Path, change: Callable[[UsersFile], UsersFile]) -> UsersFile:
    """Apply ``change`` to the current users and write the result (validated, atomic, mode 0600).

    Read and write are checked with the file's digest: when another writer got in between, the change is
    applied again to the newer file (a few times) instead of overwriting it.
    """
    for _ in range(_UPDATE_TRIES):
        digest = file_digest(path)
        users = change(load_users(path))
        data = users.model_dump(mode="json", exclude_none=True)
        try:
            return write_config(path, data, UsersFile, check=load_users, expected_digest=digest, mode=0o600,
                                new_file_header=USERS_FILE_HEADER)
        except ConfigConflictError:
            continue
    raise ConfigConflictError(path)


def add_user(path: Path, username: str, display_name: str, role: Role, password: str, *,
             unit: str | None = None, email: str | None = None, rounds: int = DEFAULT_ROUNDS) -> UserSpec:
    """Add a user; refuses an existing user name or a weak password (:class:`auth.PasswordPolicyError`)."""
    fields = {"username": normalize_username(username), "display_name": display_name, "role": role,
              "unit": unit or None, "email": email or None}
    try:
        user = UserSpec.model_validate({**fields, "password_hash": hash_password(password, rounds)})
    except ValidationError as exc:
        raise validation_to_config_error(exc, path) from exc

    def change(users: UsersFile) -> UsersFile:
        if users.get(user.username) is not None:
            raise AccountError(f"用户 {user.username} 已存在。")
        return UsersFile(users=[*users.users, user])

    update_users(path, change)
    log.info("users: added %s (%s) to %s", user.username, user.role, path)
    return user


def set_password(path: Path, username: str, password: str, *, rounds: int = DEFAULT_ROUNDS) -> None:
    """Set a new password (old sessions of the user end at their next click)."""
    name = normalize_username(username)
    new_hash = hash_password(password, rounds)

    def change(users: UsersFile) -> UsersFile:
        _require(users, name)
        return UsersFile(users=[u.model_copy(update={"password_hash": new_hash}) if u.username == name else u
                                for u in users.users])

    update_users(path, change)
    log.info("users: password of %s changed in %s", name, path)


def set_role(path: Path, username: str, role: Role) -> None:
    """Give a user another role (it applies at their next click); the last admin keeps the admin role."""
    name = normalize_username(username)

    def change(users: UsersFile) -> UsersFile:
        user = _require(users, name)
        if user.role == "admin" and role != "admin" and len(users.admins()) == 1:
            raise AccountError(f"{name} 是唯一的管理员，不能改为其他角色；请先添加另一位管理员。")
        return UsersFile(users=[u.model_copy(update={"role": role}) if u.username == name else u
                                for u in users.users])

    update_users(path, change)
    log.info("users: role of %s set to %s in %s", name, role, path)


def unlock_user(settings: Settings, username: str) -> None:
    """Clear a user's failed logins (ends a lock-out)."""
    AttemptStore(attempts_path(settings), login_policy(settings)).update(username, lambda _: AttemptRecord())
    log.info("users: failed logins of %s cleared", normalize_username(username))


def remove_user(path: Path, username: str) -> None:
    """Remove a user; the last admin cannot be removed (nobody could reach 设置 any more)."""
    name = normalize_username(username)

    def change(users: UsersFile) -> UsersFile:
        user = _require(users, name)
        if user.role == "admin" and len(users.admins()) == 1:
            raise AccountError(f"{name} 是唯一的管理员，不能删除；请先添加另一位管理员。")
        return UsersFile(users=[u for u in users.users if u.username != name])

    update_users(path, change)
    log.info("users: removed %s from %s", name, path)


def _require(users: UsersFile, name: str) -> UserSpec:
    user = users.get(name)
    if user is None:
        raise AccountError(f"没有用户 {name}。")
    return user


def new_password() -> str:
    """A random password for a new account (about 96 bits, URL-safe characters)."""
    return secrets.token_urlsafe(12)


def ensure_demo_admin(settings: Settings) -> str | None:
    """For `yuqing up`: when ``users.yaml`` has no admin, create ``admin`` with a random password and return it
    (to be shown once, never logged); None when an admin exists already."""
    path = users_path(settings)
    if load_users(path).admins():
        return None
    password = new_password()
    add_user(path, DEMO_ADMIN, "管理员", "admin", password, rounds=settings.dashboard.password_hash_rounds)
    return password


class AttemptStore:
    """Failed logins per user name in a small JSON file, shared by every session and process of the dashboard."""

    def __init__(self, path: Path, policy: LoginPolicy, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self.policy = policy
        self._now = clock or (lambda: datetime.now(UTC))

    def get(self, username: str) -> AttemptRecord:
        return self._read().get(normalize_username(username), AttemptRecord())

    def update(self, username: str, change: Callable[[AttemptRecord], AttemptRecord]) -> AttemptRecord:
        """Apply ``change`` to the user's record; the file is written only when the record changed (clearing a
        user who has no failures, or a refused login of a locked one, writes nothing). A file that cannot be
        written raises :class:`LedgerWriteError` (logged here, one line; the file stays as it was)."""
        name = normalize_username(username)
        try:
            with locked(self.path):
                records = self._read()
                old = records.get(name, AttemptRecord())
                record = change(old)
                if record == old:
                    return record
                records[name] = record
                now = self._now()
                kept = {n: r for n, r in records.items() if not is_stale(r, now, self.policy)}
                data = json.dumps({n: _dump(r) for n, r in kept.items()}, ensure_ascii=False, sort_keys=True)
                atomic_write_bytes(self.path, data.encode("utf-8"), mode=0o600)
        except OSError as exc:
            error = LedgerWriteError(self.path, exc)
            log.error("%s", error)
            raise error from exc
        return record

    def _read(self) -> dict[str, AttemptRecord]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(name): _load(item) for name, item in raw.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError, AttributeError) as exc:
            broken = self.path.with_suffix(".corrupt")
            log.error("login failure ledger %s is unreadable (%s); kept as %s, starting afresh", self.path, exc,
                      broken)
            self.path.replace(broken)
            return {}


def _dump(record: AttemptRecord) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}


def _load(item: dict[str, Any]) -> AttemptRecord:
    def when(key: str) -> datetime | None:
        value = item.get(key)
        return datetime.fromisoformat(value) if value else None

    return AttemptRecord(failures=int(item.get("failures", 0)), last_failure=when("last_failure"),
                         locked_until=when("locked_until"))
