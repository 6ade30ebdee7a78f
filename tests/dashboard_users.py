"""Accounts for dashboard tests: one user per role with known passwords (bcrypt at the lowest cost, for speed)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt

from dashboard.auth import Session, UsersFile, UserSpec, start_session
from yuqing.config_write import render_yaml
from yuqing.settings import PROJECT_ROOT

PASSWORDS = {"press": "press-pass-1", "leader": "leader-pass-1", "analyst": "analyst-pass-1", "admin": "admin-pass-1"}
ROLES = {"press": "press_officer", "leader": "leader", "analyst": "analyst", "admin": "admin"}
NAMES = {"press": "宣传小王", "leader": "李局长", "analyst": "分析员小赵", "admin": "系统管理员"}


def _hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


TEST_USERS = UsersFile(users=[
    UserSpec(username=name, display_name=NAMES[name], role=ROLES[name],
             password_hash=_hash(PASSWORDS[name]), unit="宣传科" if name == "press" else None)
    for name in PASSWORDS
])


def write_users(config_dir: Path, users: UsersFile = TEST_USERS) -> Path:
    path = config_dir / "users.yaml"
    path.write_text(render_yaml(users.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    return path


def config_with_users(tmp_path: Path) -> Path:
    """A private copy of config/ with the test accounts in users.yaml."""
    target = tmp_path / "config-with-users"
    shutil.copytree(PROJECT_ROOT / "config", target, ignore=shutil.ignore_patterns("users.yaml", ".*"))
    write_users(target)
    return target


def session_for(username: str, ttl: timedelta = timedelta(hours=1), now: datetime | None = None) -> Session:
    user = TEST_USERS.get(username)
    assert user is not None
    return start_session(user, now or datetime.now(UTC), ttl)
