"""Login rules (pure), the stored accounts and failed-login ledger, and `yuqing users`."""

from __future__ import annotations

import errno
import io
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dashboard import accounts, auth
from dashboard.auth import (
    AttemptRecord,
    LoginPolicy,
    LoginStatus,
    PasswordPolicyError,
    SessionState,
    UsersFile,
    Viewer,
    attempt_login,
    can_open,
    check_session,
    hash_password,
    mask_for,
    mask_post,
    register_failure,
    verify_password,
)
from tests.dashboard_users import PASSWORDS, TEST_USERS, session_for, write_users
from yuqing.cli import main
from yuqing.errors import ConfigError
from yuqing.models import Post, Reply
from yuqing.settings import Settings, load_settings

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
POLICY = LoginPolicy(max_failures=3, lockout=timedelta(minutes=15), session_ttl=timedelta(hours=8))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def ledger(tmp_path: Path) -> accounts.AttemptStore:
    return accounts.AttemptStore(tmp_path / "auth" / "login_failures.json", POLICY, Clock(T0))


def _login(store: accounts.AttemptStore, name: str, password: str, now: datetime = T0,
           users: UsersFile = TEST_USERS) -> LoginStatus:
    store._now = Clock(now)
    return attempt_login(users, store, POLICY, name, password, now).status


def test_passwords_are_bcrypt_hashed_and_checked() -> None:
    hashed = hash_password("文化馆开放时间2026", rounds=4)
    assert hashed.startswith("$2b$04$") and "文化馆" not in hashed
    assert verify_password("文化馆开放时间2026", hashed)
    assert not verify_password("文化馆开放时间2025", hashed)
    assert not verify_password("x" * 80, hashed) and not verify_password("whatever", "not-a-hash")
    for weak in ("short1", "aaaaaaaaaa", "长" * 25):
        with pytest.raises(PasswordPolicyError):
            hash_password(weak, rounds=4)


def test_login_succeeds_only_with_the_right_password(ledger: accounts.AttemptStore) -> None:
    outcome = attempt_login(TEST_USERS, ledger, POLICY, " Press ", PASSWORDS["press"], T0)
    assert outcome.status is LoginStatus.OK and outcome.session is not None
    assert outcome.session.username == "press" and outcome.session.expires_at == T0 + timedelta(hours=8)
    assert _login(ledger, "press", PASSWORDS["admin"]) is LoginStatus.WRONG
    assert _login(ledger, "nobody", PASSWORDS["press"]) is LoginStatus.WRONG  # unknown user: same answer
    assert attempt_login(UsersFile(), ledger, POLICY, "press", "x", T0).status is LoginStatus.NO_USERS


def test_failed_logins_lock_the_user_and_survive_a_restart(ledger: accounts.AttemptStore) -> None:
    assert [_login(ledger, "analyst", "wrong-password") for _ in range(3)] == [
        LoginStatus.WRONG, LoginStatus.WRONG, LoginStatus.LOCKED]
    # A restarted dashboard or another tab reads the same file: the right password is refused while locked.
    restarted = accounts.AttemptStore(ledger.path, POLICY)
    assert _login(restarted, "analyst", PASSWORDS["analyst"], T0 + timedelta(minutes=14)) is LoginStatus.LOCKED
    assert _login(restarted, "press", PASSWORDS["press"], T0 + timedelta(minutes=1)) is LoginStatus.OK  # per user
    assert _login(restarted, "analyst", PASSWORDS["analyst"], T0 + timedelta(minutes=15)) is LoginStatus.OK
    assert restarted.get("analyst") == AttemptRecord()
    assert stat.S_IMODE(ledger.path.stat().st_mode) == 0o600


def test_unknown_names_are_locked_too_and_old_entries_pruned(ledger: accounts.AttemptStore) -> None:
    for _ in range(3):
        _login(ledger, "guess", "wrong-password")
    assert _login(ledger, "guess", "wrong-password", T0 + timedelta(minutes=1)) is LoginStatus.LOCKED
    _login(ledger, "press", "wrong-password", T0 + timedelta(hours=2))  # a later write drops stale entries
    assert set(ledger._read()) == {"press"}


def test_overlapping_logins_check_no_more_passwords_than_the_lockout_allows(
        ledger: accounts.AttemptStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """One browser session per guess: each next guess arrives while the bcrypt check of the one before is
    running. Only ``max_failures`` of them get their password checked, the rest are refused as locked; so is
    the right password afterwards."""
    checked: list[str] = []
    outcomes: list[LoginStatus] = []
    real = auth.verify_password
    guesses = iter(f"guess-{n}" for n in range(1, 10))

    def overlapping(password: str, stored: str) -> bool:
        checked.append(password)
        nxt = next(guesses, None)
        if nxt is not None:
            outcomes.append(attempt_login(TEST_USERS, ledger, POLICY, "analyst", nxt, T0).status)
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", overlapping)
    outcomes.append(attempt_login(TEST_USERS, ledger, POLICY, "analyst", "guess-0", T0).status)
    assert checked == ["guess-0", "guess-1", "guess-2"]  # POLICY.max_failures
    assert outcomes == [LoginStatus.LOCKED, LoginStatus.LOCKED, LoginStatus.WRONG, LoginStatus.WRONG]
    assert _login(ledger, "analyst", PASSWORDS["analyst"]) is LoginStatus.LOCKED and len(checked) == 3


def test_unknown_names_cost_the_bcrypt_work_of_the_slowest_user(
        ledger: accounts.AttemptStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """After ``password_hash_rounds`` was raised, users hashed since cost more than the first one: an unknown
    name must cost as much as the slowest, or its quicker answer tells that the name does not exist."""
    slow = UsersFile.model_validate({"users": [
        *(u.model_dump() for u in TEST_USERS.users),
        {"username": "newcomer", "display_name": "新同事", "role": "press_officer",
         "password_hash": hash_password("新来的同事密码2026", rounds=6)},
    ]})
    costs: list[int] = []
    real = auth.verify_password

    def counting(password: str, stored: str) -> bool:
        costs.append(auth._rounds_of(stored))
        return real(password, stored)

    monkeypatch.setattr(auth, "verify_password", counting)
    attempt_login(slow, ledger, POLICY, "nobody", "wrong-password", T0)
    assert costs == [6] and {auth._rounds_of(u.password_hash) for u in TEST_USERS.users} == {4}


def test_failure_count_resets_after_a_quiet_period() -> None:
    record = AttemptRecord()
    record = register_failure(record, T0, POLICY)
    record = register_failure(record, T0 + timedelta(minutes=1), POLICY)
    assert record.failures == 2
    record = register_failure(record, T0 + timedelta(minutes=30), POLICY)
    assert record.failures == 1 and record.locked_until is None


def test_corrupt_ledger_is_kept_aside_not_fatal(ledger: accounts.AttemptStore,
                                                caplog: pytest.LogCaptureFixture) -> None:
    ledger.path.parent.mkdir(parents=True)
    ledger.path.write_text("{not json", encoding="utf-8")
    assert _login(ledger, "press", "wrong-password") is LoginStatus.WRONG
    assert ledger.path.with_suffix(".corrupt").exists() and "unreadable" in caplog.text


def test_a_ledger_that_cannot_be_written_writes_only_changes_and_says_why(
        ledger: accounts.AttemptStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        _login(ledger, "analyst", "wrong-password")  # locked, on disk
    before = ledger.path.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)  # the disk under data_dir is full
    # What changes nothing writes nothing: clearing a user without failures, refusing a locked one.
    assert ledger.update("press", lambda _: AttemptRecord()) == AttemptRecord()
    assert _login(ledger, "analyst", PASSWORDS["analyst"], T0 + timedelta(minutes=1)) is LoginStatus.LOCKED
    # A change: a clear error (an OSError, with the cause's reason), one line in the log, the file as it was.
    with caplog.at_level(logging.ERROR), pytest.raises(accounts.LedgerWriteError) as raised:
        ledger.update("press", lambda r: register_failure(r, T0, POLICY))
    assert isinstance(raised.value, OSError) and raised.value.strerror == "No space left on device"
    assert [r.getMessage() for r in caplog.records] == [
        f"the login failure ledger {ledger.path} cannot be written (No space left on device)"]
    assert ledger.path.read_bytes() == before
    assert sorted(p.name for p in ledger.path.parent.iterdir()) == [".login_failures.json.lock",
                                                                    "login_failures.json"]


def test_the_office_signs_in_while_the_ledger_cannot_be_written(
        ledger: accounts.AttemptStore, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(3):
        _login(ledger, "analyst", "wrong-password")  # locked, on disk
    _login(ledger, "press", "wrong-password")  # one failure on file

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    assert _login(ledger, "press", PASSWORDS["press"]) is LoginStatus.OK
    assert _login(ledger, "leader", "wrong-password") is LoginStatus.WRONG
    assert _login(ledger, "analyst", PASSWORDS["analyst"], T0 + timedelta(minutes=1)) is LoginStatus.LOCKED


def test_sessions_expire_and_end_when_the_account_changes() -> None:
    session = session_for("leader", ttl=timedelta(hours=8), now=T0)
    state, viewer = check_session(session, TEST_USERS, T0 + timedelta(hours=7))
    assert state is SessionState.VALID and viewer == Viewer("leader", "李局长", "leader")
    assert check_session(session, TEST_USERS, T0 + timedelta(hours=8))[0] is SessionState.EXPIRED

    promoted = UsersFile(users=[u.model_copy(update={"role": "admin"}) if u.username == "leader" else u
                                for u in TEST_USERS.users])
    viewer = check_session(session, promoted, T0)[1]
    assert viewer is not None and viewer.role == "admin"  # a role change applies at the next click
    new_password = UsersFile(users=[u.model_copy(update={"password_hash": hash_password("new-pass-99", 4)})
                                    if u.username == "leader" else u for u in TEST_USERS.users])
    assert check_session(session, new_password, T0)[0] is SessionState.REVOKED
    removed = UsersFile(users=[u for u in TEST_USERS.users if u.username != "leader"])
    assert check_session(session, removed, T0)[0] is SessionState.REVOKED


def test_role_rules() -> None:
    assert [r for r in ("press_officer", "leader", "analyst", "admin") if can_open(r, "settings")] == ["admin"]
    assert all(can_open(r, "overview") for r in ("press_officer", "leader", "analyst", "admin"))

    def redact(text: str) -> str:
        return text.replace("13812345678", "138****5678")

    post = Post(url="https://liuyan.example.cn/1", title="来电13812345678", content="请回电13812345678",
                source="liuyan", author="13812345678", fetched_at=T0,
                reply=Reply(text="已联系13812345678"))
    for role, masked in (("press_officer", False), ("admin", False), ("leader", True), ("analyst", True)):
        mask = mask_for(Viewer("u", "U", role), redact)  # type: ignore[arg-type]
        assert (mask is not None) is masked
    assert mask_for(None, redact) is redact  # nobody signed in: masked
    shown = mask_post(post, redact)
    assert "13812345678" not in shown.model_dump_json() and shown.reply is not None
    assert shown.title == "来电138****5678" and shown.author == "138****5678"


@pytest.fixture()
def cli_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    config = tmp_path / "config"
    config.mkdir()
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(config))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("YUQING_DASHBOARD__PASSWORD_HASH_ROUNDS", "4")
    return load_settings()


def _users_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return main(["users", *argv])


def test_users_command_manages_accounts(cli_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret, newer = "Wenlv-2026-admin", "Wenlv-2026-changed"
    assert _users_cli(["add", "wang", "--name", "王主任", "--role", "admin", "--unit", "办公室",
                       "--email", "wang@culture.example.gov.cn", "--password-stdin"], monkeypatch, secret + "\n") == 0
    assert _users_cli(["add", "zhao", "--name", "小赵", "--role", "analyst", "--password-stdin"],
                      monkeypatch, "Analyst-pass-1\n") == 0
    path = accounts.users_path(cli_settings)
    users = accounts.load_users(path)
    assert [(u.username, u.role) for u in users.users] == [("wang", "admin"), ("zhao", "analyst")]
    assert verify_password(secret, users.users[0].password_hash)
    assert users.users[0].password_hash.startswith("$2b$04$")  # dashboard.password_hash_rounds
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8").startswith("# Dashboard accounts.")

    assert _users_cli(["passwd", "wang", "--password-stdin"], monkeypatch, newer + "\n") == 0
    assert verify_password(newer, accounts.load_users(path).users[0].password_hash)

    capsys.readouterr()
    assert _users_cli(["list"], monkeypatch) == 0
    listing = capsys.readouterr().out
    assert "王主任" in listing and "analyst（分析人员）" in listing and "$2b$" not in listing

    assert _users_cli(["add", "zhao", "--name", "又一个", "--role", "leader", "--password-stdin"],
                      monkeypatch, "Another-pass-1\n") == 2  # exists
    assert _users_cli(["add", "li", "--name", "李", "--role", "leader", "--password-stdin"],
                      monkeypatch, "short\n") == 2  # weak password
    assert _users_cli(["add", "Bad Name!", "--name", "坏", "--role", "leader", "--password-stdin"],
                      monkeypatch, "Another-pass-1\n") == 2
    assert _users_cli(["remove", "wang"], monkeypatch) == 2  # the only admin
    assert _users_cli(["passwd", "zhao"], monkeypatch) == 2  # no terminal and no --password-stdin
    err = capsys.readouterr().err
    assert "已存在" in err and "至少 8 个字符" in err and "field 'username'" in err and "唯一的管理员" in err
    assert _users_cli(["remove", "zhao"], monkeypatch) == 0
    assert [u.username for u in accounts.load_users(path).users] == ["wang"]

    out = capsys.readouterr()
    for text in (out.out, out.err, caplog.text, *(str(p.read_bytes()) for p in path.parent.iterdir())):
        assert secret not in text and newer not in text


def test_users_file_errors_name_the_field(tmp_path: Path) -> None:
    path = write_users(tmp_path)
    path.write_text(path.read_text(encoding="utf-8").replace("role: leader", "role: boss"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        accounts.load_users(path)
    assert err.value.field == "users[1].role"


def test_demo_admin_is_created_once(cli_settings: Settings) -> None:
    password = accounts.ensure_demo_admin(cli_settings)
    assert password is not None and len(password) >= 12
    admin = accounts.load_users(accounts.users_path(cli_settings)).get("admin")
    assert admin is not None and admin.role == "admin" and verify_password(password, admin.password_hash)
    assert accounts.ensure_demo_admin(cli_settings) is None  # an admin exists: nothing new, nothing printed
