"""Who may use the dashboard and what they see: users and roles, bcrypt passwords, sessions, login lock-out,
page permissions and personal-data masking. Pure logic (no Streamlit, no files); storage is in
:mod:`dashboard.accounts`, the login form in ``dashboard/app.py``.

Users live in ``<config_dir>/users.yaml`` (managed with ``yuqing users``; never committed)::

    users:
      - username: zhangsan            # lower-case letters, digits, . _ -
        display_name: 张三
        role: press_officer           # press_officer | leader | analyst | admin
        password_hash: $2b$12$...     # bcrypt; set with `yuqing users add` / `yuqing users passwd`
        unit: 宣传科                   # optional
        email: zhangsan@culture.example.gov.cn   # optional

Roles: press officers (宣传人员) and admins (管理员) see personal data as stored; leaders (领导) and analysts
(分析人员) see it masked with the patterns of ``config/privacy.yaml``. Only admins open 设置.

Why bcrypt with Streamlit's session state rather than ``streamlit-authenticator``: that package keeps its own
credentials file layout (we validate ``users.yaml`` with the same pydantic model everywhere), re-authenticates with
a cookie signed by a key that would be one more secret to manage, and counts failed logins in the browser session
only, so a reload or a second tab resets them. Here the hashing is bcrypt's, the lock-out is persisted per user
(:class:`dashboard.accounts.AttemptStore`), and a session is checked against the file on every page run: a
removed user, a changed password or a changed role takes effect at the next click.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Literal, Protocol

import bcrypt
from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    from yuqing.models import Post

Role = Literal["press_officer", "leader", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("press_officer", "leader", "analyst", "admin")
ROLE_LABELS: dict[str, str] = {"press_officer": "宣传人员", "leader": "领导", "analyst": "分析人员", "admin": "管理员"}

# Pages of the dashboard by key; every role opens every page except those listed here.
PAGE_ROLES: dict[str, frozenset[str]] = {"settings": frozenset({"admin"})}
ROLES_SEEING_PERSONAL_DATA: frozenset[str] = frozenset({"press_officer", "admin"})
# who acts (处置单, 依申请公开, resending mails, 人工研判); leaders and analysts read
RESPONDER_ROLES: frozenset[str] = frozenset({"press_officer", "admin"})
# who records 领导批示 on a 处置单: leaders their own, press officers and admins one given on paper or in the OA
INSTRUCTING_ROLES: frozenset[str] = frozenset({"leader", "press_officer", "admin"})

USERNAME_PATTERN = r"^[a-z][a-z0-9_.\-]{1,31}$"
BCRYPT_PATTERN = r"^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72  # bcrypt uses (bcrypt >= 5: accepts) at most 72 bytes
DEFAULT_ROUNDS = 12


class UserSpec(BaseModel):
    """One user of ``users.yaml``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str = Field(min_length=1, max_length=40)
    role: Role
    password_hash: str = Field(pattern=BCRYPT_PATTERN, repr=False)
    unit: str | None = Field(None, max_length=60)
    email: str | None = Field(None, pattern=EMAIL_PATTERN)

    @field_validator("display_name")
    @classmethod
    def _stripped(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("display_name must not be blank")
        return value.strip()


class UsersFile(BaseModel):
    """The whole ``users.yaml``."""

    model_config = ConfigDict(extra="forbid")

    users: list[UserSpec] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[UserSpec]) -> list[UserSpec]:
        seen: set[str] = set()
        for i, user in enumerate(users):
            if user.username in seen:
                raise ValueError(f"duplicate username {user.username!r} (users[{i}])")
            seen.add(user.username)
        return users

    def get(self, username: str) -> UserSpec | None:
        name = normalize_username(username)
        return next((u for u in self.users if u.username == name), None)

    def admins(self) -> list[UserSpec]:
        return [u for u in self.users if u.role == "admin"]


def normalize_username(username: str) -> str:
    """How a typed user name is compared: surrounding spaces dropped, lower case (at most 64 characters)."""
    return username.strip().lower()[:64]


# ---- passwords --------------------------------------------------------------------------------------------

class PasswordPolicyError(ValueError):
    """A new password that is too weak or too long; the message is for the user (Chinese)."""


def check_password_policy(password: str) -> None:
    """Refuse a new password shorter than 8 characters, longer than bcrypt's 72 bytes, or all one character."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise PasswordPolicyError(f"密码至少 {MIN_PASSWORD_CHARS} 个字符。")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise PasswordPolicyError(f"密码过长（最多 {MAX_PASSWORD_BYTES} 字节，约 24 个汉字）。")
    if len(set(password)) < 3:
        raise PasswordPolicyError("密码过于简单，请混合使用不同的字符。")


def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> str:
    """A bcrypt hash of ``password`` (after :func:`check_password_policy`)."""
    check_password_policy(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches the bcrypt ``password_hash`` (False for anything malformed)."""
    data = password.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except ValueError:
        return False


@functools.cache
def _decoy_hash(rounds: int) -> str:
    # Checked against for unknown user names, so a wrong name costs the same time as a wrong password.
    return bcrypt.hashpw(b"decoy password", bcrypt.gensalt(rounds)).decode("ascii")


def _rounds_of(password_hash: str) -> int:
    match = re.match(r"^\$2[aby]\$(\d\d)\$", password_hash)
    return int(match.group(1)) if match else DEFAULT_ROUNDS


def credential_tag(password_hash: str) -> str:
    """A short digest of the stored hash: a session remembers it, so a password change ends old sessions."""
    return hashlib.sha256(password_hash.encode("ascii")).hexdigest()[:16]


# ---- sessions and roles -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Viewer:
    """The signed-in user as the pages see them (role as currently configured)."""

    username: str
    display_name: str
    role: Role
    unit: str | None = None

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def sees_personal_data(self) -> bool:
        return sees_personal_data(self.role)

    def can_open(self, page: str) -> bool:
        return can_open(self.role, page)

    @property
    def audit_name(self) -> str:
        """The name written into audit trails and logs of what this viewer did."""
        return f"{self.display_name}（{self.username}）"

    @property
    def acts(self) -> bool:
        """Press officers and admins act (处置单, 依申请公开, resending mails, 人工研判); leaders and analysts read."""
        return self.role in RESPONDER_ROLES

    @property
    def instructs(self) -> bool:
        """Leaders record their 领导批示 on a 处置单 (press officers and admins record one given elsewhere)."""
        return self.role in INSTRUCTING_ROLES


@dataclass(frozen=True)
class Session:
    """A login: kept in Streamlit's session state, valid until ``expires_at`` while the user stays as configured."""

    username: str
    issued_at: datetime
    expires_at: datetime
    credential: str


def start_session(user: UserSpec, now: datetime, ttl: timedelta) -> Session:
    return Session(username=user.username, issued_at=now, expires_at=now + ttl,
                   credential=credential_tag(user.password_hash))


class SessionState(Enum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"  # user removed or password changed since the login


def check_session(session: Session, users: UsersFile, now: datetime) -> tuple[SessionState, Viewer | None]:
    """Whether ``session`` still holds, and the viewer it stands for (with the role the file gives now)."""
    if now >= session.expires_at:
        return SessionState.EXPIRED, None
    user = users.get(session.username)
    if user is None or credential_tag(user.password_hash) != session.credential:
        return SessionState.REVOKED, None
    return SessionState.VALID, Viewer(user.username, user.display_name, user.role, user.unit)


def can_open(role: str, page: str) -> bool:
    """Whether ``role`` may open the page with key ``page`` (设置 is ``settings``: admins only)."""
    allowed = PAGE_ROLES.get(page)
    return allowed is None or role in allowed


def sees_personal_data(role: str) -> bool:
    """Press officers and admins see posts as stored; leaders and analysts see personal data masked."""
    return role in ROLES_SEEING_PERSONAL_DATA


# ---- failed logins ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    session_ttl: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class AttemptRecord:
    """Failed logins of one user name since the last success or lock-out."""

    failures: int = 0
    last_failure: datetime | None = None
    locked_until: datetime | None = None


def locked_until(record: AttemptRecord, now: datetime) -> datetime | None:
    """The end of the lock-out when ``record`` is locked at ``now``."""
    if record.locked_until is not None and now < record.locked_until:
        return record.locked_until
    return None


def register_failure(record: AttemptRecord, now: datetime, policy: LoginPolicy) -> AttemptRecord:
    """``record`` after one more failed login: the ``max_failures``-th failure in a row locks the name for
    ``lockout`` (and starts a new count); failures older than ``lockout`` are forgotten."""
    failures = record.failures
    if record.last_failure is None or now - record.last_failure >= policy.lockout:
        failures = 0
    failures += 1
    if failures >= policy.max_failures:
        return AttemptRecord(failures=0, last_failure=now, locked_until=now + policy.lockout)
    return replace(record, failures=failures, last_failure=now)


def is_stale(record: AttemptRecord, now: datetime, policy: LoginPolicy) -> bool:
    """Nothing left to remember: not locked and the last failure is older than the lock-out period."""
    return locked_until(record, now) is None and (
        record.last_failure is None or now - record.last_failure >= policy.lockout
    )


class LoginStatus(Enum):
    OK = "ok"
    WRONG = "wrong"            # unknown user or wrong password (not told apart)
    LOCKED = "locked"          # too many failures: refused without checking the password
    NO_USERS = "no_users"      # users.yaml has no users yet


@dataclass(frozen=True)
class LoginOutcome:
    status: LoginStatus
    session: Session | None = None
    locked_until: datetime | None = None
    failures_left: int | None = None


class AttemptLedger(Protocol):
    """What :func:`attempt_login` needs from the failed-login store (see :class:`dashboard.accounts.AttemptStore`)."""

    def get(self, username: str) -> AttemptRecord: ...

    def update(self, username: str, change: Callable[[AttemptRecord], AttemptRecord]) -> AttemptRecord: ...


def attempt_login(
    users: UsersFile, ledger: AttemptLedger, policy: LoginPolicy, username: str, password: str, now: datetime
) -> LoginOutcome:
    """Check one login. A locked name is refused before its password is looked at; an unknown name costs the
    same bcrypt work as the slowest known one and counts failures the same way, so neither tells which names
    exist.

    The attempt is counted as a failure *before* the password is checked (and forgiven when it is right):
    logins that overlap in time, one per browser session, each see the failures of the others, so no more than
    ``max_failures`` passwords are ever checked per lock-out period. When the ledger cannot be written (a full
    disk) the office can still sign in: a lock-out on file holds, a right password opens, a wrong one is refused
    without being counted (bcrypt alone slows guessing until the disk has room)."""
    if not users.users:
        return LoginOutcome(LoginStatus.NO_USERS)
    name = normalize_username(username)
    locked_before: list[datetime] = []

    def reserve(record: AttemptRecord) -> AttemptRecord:
        until = locked_until(record, now)
        if until is not None:
            locked_before.append(until)
            return record
        return register_failure(record, now, policy)

    try:
        record = ledger.update(name, reserve)
    except OSError:  # the ledger cannot be written (a full disk; it logged why): a lock-out on file still holds,
        record = reserve(ledger.get(name))  # and this attempt is checked without being counted
    if locked_before:
        return LoginOutcome(LoginStatus.LOCKED, locked_until=locked_before[0])
    user = users.get(name)
    stored = user.password_hash if user is not None else _decoy_hash(
        max(_rounds_of(u.password_hash) for u in users.users))
    if verify_password(password, stored) and user is not None:
        with contextlib.suppress(OSError):  # not written (logged by the ledger): the sign-in goes on
            ledger.update(name, lambda _: AttemptRecord())
        return LoginOutcome(LoginStatus.OK, session=start_session(user, now, policy.session_ttl))
    until = locked_until(record, now)
    if until is not None:
        return LoginOutcome(LoginStatus.LOCKED, locked_until=until)
    return LoginOutcome(LoginStatus.WRONG, failures_left=policy.max_failures - record.failures)


# ---- personal data ----------------------------------------------------------------------------------------

def mask_post(post: Post, mask: Callable[[str], str]) -> Post:
    """``post`` with ``mask`` applied to everything a citizen wrote or is named by: title, body, author, reply."""
    update: dict[str, object] = {"title": mask(post.title), "content": mask(post.content)}
    if post.author:
        update["author"] = mask(post.author)
    if post.reply is not None:
        update["reply"] = post.reply.model_copy(update={"text": mask(post.reply.text)})
    return post.model_copy(update=update)


def mask_for(viewer: Viewer | None, redact: Callable[[str], str]) -> Callable[[str], str] | None:
    """The text mask for ``viewer``: None (originals) for press officers and admins, ``redact`` otherwise
    (also when nobody is signed in)."""
    if viewer is not None and viewer.sees_personal_data:
        return None
    return redact
