"""The login gate, roles and never-a-traceback, with AppTest against the real Elasticsearch."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from dashboard import components
from dashboard.accounts import load_users, users_path
from dashboard.auth import Viewer
from dashboard.components import SESSION_KEY, VIEWER_KEY
from index.layout import POSTS
from tests.conftest import seed_posts
from tests.dashboard_users import PASSWORDS, session_for
from tests.test_dashboard_app import APP, B_SEATS, _run, app_env, on_search, posts, shown_titles, signed_in
from yuqing.models import Post, doc_id_for
from yuqing.settings import Settings, load_settings

__all__ = ["app_env", "posts"]  # fixtures

PHONE = "13912345678"
PHONE_TITLE = "市民反映博物馆预约难"


def _login(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    at.button[0].click()
    return _run(at)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_every_page_needs_a_login(app_env: Settings, posts: list[Post]) -> None:
    at = _run(AppTest.from_file(str(APP)))
    assert at.title[0].value == "文化舆情监测与回应平台"
    assert [t.label for t in at.text_input] == ["用户名", "密码"]
    assert shown_titles(at) == []
    # The browser warm-up (hidden elements of the kinds the overview shows) holds no data before the login.
    assert [df.value.empty for df in at.dataframe] == [True] and [m.value for m in at.metric] == [""]

    at.switch_page("views/overview.py")
    _run(at)
    assert [m.value for m in at.metric] == [""] and [t.label for t in at.text_input] == ["用户名", "密码"]


def test_wrong_password_refused_right_one_opens_logout_ends(app_env: Settings, posts: list[Post]) -> None:
    at = _run(AppTest.from_file(str(APP)))
    _login(at, "press", "not-the-password")
    assert _errors(at) == ["用户名或密码错误。"] and shown_titles(at) == []

    _login(at, "press", PASSWORDS["press"])
    assert at.title[0].value == "舆情总览" and shown_titles(at)[0] == B_SEATS
    assert "宣传小王（宣传人员·宣传科）" in [c.value for c in at.sidebar.caption]

    at.sidebar.button(key="logout").click()
    _run(at)
    assert [i.value for i in at.info] == ["已退出登录。"] and shown_titles(at) == []


def test_what_was_typed_as_a_user_name_is_logged_only_when_it_is_an_account(
        app_env: Settings, caplog: pytest.LogCaptureFixture) -> None:
    at = _run(AppTest.from_file(str(APP)))
    with caplog.at_level(logging.INFO, logger="dashboard.app"):
        _login(at, "S3cret-Pass!2026", "S3cret-Pass!2026")  # a password typed into both fields
        _login(at, "Leader", "wrong-password")
    logged = [r.getMessage() for r in caplog.records if r.name == "dashboard.app"]
    assert logged == ["login: failed for <an unknown name> (4 tries left before lock-out)",
                      "login: failed for leader (4 tries left before lock-out)"]
    assert "S3cret" not in caplog.text


def test_a_broken_accounts_file_names_no_account_before_login(
        app_env: Settings, caplog: pytest.LogCaptureFixture) -> None:
    path = users_path(load_settings())
    users = yaml.safe_load(path.read_text(encoding="utf-8"))
    users["users"].append(dict(users["users"][0]))  # the first account twice
    path.write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="dashboard.app"):
        at = _run(AppTest.from_file(str(APP)))
    name = users["users"][0]["username"]
    assert [e.value for e in at.error] == [
        "账号配置有误，仪表盘暂时无法登录。请管理员查看日志，或在服务器上运行 `yuqing users list` 查看原因。"]
    assert [t.label for t in at.text_input] == [] and not at.exception
    assert f"'{name}'" in caplog.text and "users.yaml" in caplog.text  # the detail, for the administrator


def test_lockout_holds_in_another_tab(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_DASHBOARD__LOGIN_MAX_FAILURES", "2")
    first_tab = _run(AppTest.from_file(str(APP)))
    _login(first_tab, "analyst", "guess-1")
    _login(first_tab, "analyst", "guess-2")
    assert "登录失败次数过多" in _errors(first_tab)[0]

    second_tab = _run(AppTest.from_file(str(APP)))  # a new browser session, same server-side ledger
    _login(second_tab, "analyst", PASSWORDS["analyst"])
    assert "登录失败次数过多" in _errors(second_tab)[0] and shown_titles(second_tab) == []


def test_expired_session_asks_to_sign_in_again(app_env: Settings) -> None:
    at = AppTest.from_file(str(APP))
    at.session_state[SESSION_KEY] = session_for("press", ttl=timedelta(hours=1),
                                                now=datetime.now(UTC) - timedelta(hours=2))
    _run(at)
    assert [i.value for i in at.info] == ["登录已过期，请重新登录。"] and shown_titles(at) == []


@pytest.fixture()
def phone_post(app_env: Settings, es_client: Elasticsearch) -> Post:
    post = Post(url="https://liuyan.example.cn/thread/20001", title=PHONE_TITLE, source="liuyan", kind="message",
                content=f"周末博物馆预约总是满员，请回电{PHONE}。", author=f"市民{PHONE}",
                published_at=datetime.now(UTC), fetched_at=datetime.now(UTC))
    seed_posts(es_client, app_env, [post])
    return post


def test_a_live_panel_refresh_checks_the_login_first(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """总览's panels refresh themselves (st.fragment) without the gate of app.py: each refresh checks the login,
    takes a changed role at once, and reruns the app (which asks to sign in) for an ended one."""

    class Rerun(Exception):
        pass

    def rerun(scope: str = "app") -> None:
        raise Rerun(scope)

    state: dict[str, object] = {}
    monkeypatch.setattr(components.st, "fragment", lambda run_every=None: (lambda f: f))  # the panel, run directly
    monkeypatch.setattr(components.st, "rerun", rerun)
    monkeypatch.setattr(components.st, "session_state", state)
    seen: list[Viewer | None] = []
    panel = components.live_panel(60)(lambda: seen.append(components.current_viewer()))
    path = users_path(load_settings())

    def edit(change: Callable[[list[dict[str, object]]], None]) -> None:
        users = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(users["users"])
        path.write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")

    state[SESSION_KEY] = session_for("press")
    panel()
    assert seen == [Viewer("press", "宣传小王", "press_officer", "宣传科")]
    edit(lambda users: next(u for u in users if u["username"] == "press").update(role="analyst"))
    panel()
    assert seen[-1] == Viewer("press", "宣传小王", "analyst", "宣传科")  # the new role, at the next refresh

    state[SESSION_KEY] = session_for("press", ttl=timedelta(hours=1), now=datetime.now(UTC) - timedelta(hours=2))
    with pytest.raises(Rerun, match="app"):
        panel()
    assert len(seen) == 2 and VIEWER_KEY not in state  # expired: no data refreshed

    state[SESSION_KEY] = session_for("press")
    edit(lambda users: users.remove(next(u for u in users if u["username"] == "press")))
    with pytest.raises(Rerun, match="app"):
        panel()
    assert len(seen) == 2


def test_personal_data_is_masked_for_leaders_and_analysts(phone_post: Post) -> None:
    for username, masked in (("analyst", True), ("leader", True), ("press", False), ("admin", False)):
        at = on_search(username)
        assert any(PHONE_TITLE in md.value for md in at.markdown)
        page = " ".join(md.value for md in at.markdown) + " ".join(c.value for c in at.caption)
        assert (PHONE in page) is not masked, username
        assert ("139\\*\\*\\*\\*5678" in page) is masked, username


def test_only_admins_reach_settings(app_env: Settings) -> None:
    admin = _run(signed_in(username="admin"))
    admin.switch_page("views/settings.py")
    _run(admin)
    assert admin.title[0].value == "设置"
    assert list(admin.dataframe[0].value["用户名"]) == ["press", "leader", "analyst", "admin"]

    leader = _run(signed_in(username="leader"))
    with pytest.raises(ValueError, match="Known pages") as err:  # not in the leader's navigation
        leader.switch_page("views/settings.py")
    assert "views/overview.py" in str(err.value) and "views/settings.py']" not in str(err.value)

    direct = AppTest.from_file(str(APP.parent / "views" / "settings.py"))  # the page file run on its own
    direct.session_state[VIEWER_KEY] = Viewer("leader", "李局长", "leader")
    _run(direct)
    assert _errors(direct) == ["您没有权限访问此页面。"] and not direct.dataframe


def test_admin_adds_an_account_through_the_validated_writer(app_env: Settings) -> None:
    at = _run(signed_in(username="admin"))
    at.switch_page("views/settings.py")
    _run(at)

    def add(username: str, password: str) -> None:
        at.text_input(key="new_username").input(username)
        at.text_input(key="new_display_name").input("新同事")
        at.selectbox(key="new_role").select("analyst")
        at.text_input(key="new_password").input(password)
        next(b for b in at.button if b.label == "添加").click()
        _run(at)

    add("Bad Name", "Analyst-pass-2")
    assert "users.yaml 中的 username：格式不符合要求（须匹配 ^[a-z]" in _errors(at)[0]
    add("xin", "Analyst-pass-2")
    assert [s.value for s in at.success] == ["已添加账号 xin（分析人员）。"]
    user = load_users(users_path(load_settings())).get("xin")
    assert user is not None and user.role == "analyst"


def test_a_change_the_full_disk_cannot_take_is_refused_in_chinese(app_env: Settings,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    at = _run(signed_in(username="admin"))
    at.switch_page("views/settings.py")
    _run(at)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    at.text_input(key="new_username").input("xin")
    at.text_input(key="new_display_name").input("新同事")
    at.text_input(key="new_password").input("Analyst-pass-2")
    next(b for b in at.button if b.label == "添加").click()
    _run(at)  # no exception reached the page
    assert _errors(at) == ["未保存：磁盘已满或无法写入（No space left on device）"]
    assert load_users(users_path(load_settings())).get("xin") is None
    # Clearing the failed logins of a user who has none writes nothing: done, full disk or not.
    at.selectbox(key="edit_user").select("analyst")
    _run(at)
    next(b for b in at.button if b.label == "解除登录锁定").click()
    _run(at)
    assert not _errors(at) and [s.value for s in at.success] == ["已清除 analyst 的登录失败记录。"]


def test_unreadable_document_is_skipped_with_a_count(
    app_env: Settings, posts: list[Post], es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    url = "https://old-tool.example.cn/post/9"
    es_client.index(index=POSTS.alias(app_env.elasticsearch.index_prefix), id=doc_id_for(url), refresh=True,
                    document={"url": url, "canonical_url": url, "title": "旧版本写入", "source": "old",
                              "fetched_at": datetime.now(UTC).isoformat(),
                              "published_at": datetime.now(UTC).isoformat(),
                              "analysis": {"sentiment": "negative", "relevant": True, "model_version": "0"}})
    at = _run(signed_in())
    assert [w.value for w in at.warning] == ["有 1 条记录格式无法识别，已跳过未显示（记录编号已写入日志）。"]
    assert shown_titles(at)[0] == B_SEATS and "旧版本写入" not in shown_titles(at)
    assert doc_id_for(url) in caplog.text and "relevance_prob" in caplog.text


def test_unexpected_error_is_a_short_chinese_message(app_env: Settings, posts: list[Post],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    sources = Path(load_settings().config_file("sources.yaml"))
    sources.write_text("sources:\n  - name: broken\n    kind: [not, a, kind]\n", encoding="utf-8")
    at = _run(signed_in())  # 总览: only its source-health panel fails; the other panels are there
    assert [e.value[:8] for e in at.error] == ["页面出现意外错误"]
    assert {m.label: m.value for m in at.metric}["舆情总数"] == "4" and shown_titles(at)[0] == B_SEATS
    at.switch_page("views/sources.py")
    _run(at)  # asserts no exception reached the page
    assert len(at.error) == 1 and at.error[0].value.startswith("页面出现意外错误")
    ref = at.error[0].value.split("错误编号 ")[1].rstrip("）。")
    assert f"dashboard error {ref}" in caplog.text and "Traceback" in caplog.text
