"""Dashboard entry point: builds the settings once, signs the user in, and navigates between the pages they may open.

Run with ``yuqing dashboard`` or ``streamlit run dashboard/app.py``. Configuration comes from
``config/yuqing.yaml`` (or ``$YUQING_CONFIG``) and ``YUQING_<SECTION>__<FIELD>`` environment variables; accounts
from ``<config_dir>/users.yaml`` (``yuqing users``). Every page runs through this script, so the login gate below
covers them all; the rules it applies are in :mod:`dashboard.auth`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import NoReturn
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import accounts, components
from dashboard.auth import (
    LoginStatus,
    SessionState,
    UsersFile,
    Viewer,
    attempt_login,
    check_session,
    normalize_username,
)
from dashboard.format import error_text, md_escape
from yuqing.errors import YuqingError
from yuqing.settings import Settings

SESSION_KEY = components.SESSION_KEY
NOTICE_KEY = "auth_notice"
RETURN_KEY = "auth_return_to"  # the page the browser asked for before the login

# (key for dashboard.auth.can_open, page file, title, icon); the first one a user may open is the default.
PAGES: list[tuple[str, str, str, str]] = [
    ("overview", "views/overview.py", "总览", "📊"),
    ("search", "views/search.py", "检索", "🔎"),
    ("events", "views/events.py", "热点事件", "🔥"),
    ("event", "views/event.py", "事件详情", "📌"),
    ("judge", "views/judge.py", "人工研判", "🏷️"),
    ("sources", "views/sources.py", "信源状态", "📡"),
    ("tickets", "views/tickets.py", "处置跟踪", "🗂️"),
    ("foia", "views/foia.py", "依申请公开", "📮"),
    ("delivery", "views/delivery.py", "预警投递", "📧"),
    ("settings", "views/settings.py", "设置", "⚙️"),
]

log = logging.getLogger("dashboard.app")  # logging is set up with the settings (dashboard.data, yuqing.logs)

st.set_page_config(page_title="文化舆情监测与回应平台", page_icon="📰", layout="wide")
st.set_option("client.showErrorDetails", "none")  # never a traceback in the browser; details go to the log


def _users(settings: Settings) -> UsersFile:
    """The accounts; a broken ``users.yaml`` stops the page with a message that names nothing in the file (it is
    shown before anyone signed in: user names are not for strangers), the detail going to the log."""
    try:
        return accounts.load_users(accounts.users_path(settings))
    except YuqingError as exc:
        log.error("login: the accounts file is unusable: %s", error_text(exc))
        components.fail("账号配置有误，仪表盘暂时无法登录。请管理员查看日志，或在服务器上运行 `yuqing users list` "
                        "查看原因。")


def _end_session(notice: str) -> None:
    st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(components.VIEWER_KEY, None)
    st.session_state[NOTICE_KEY] = notice


def _requested_page() -> str | None:
    """The page name in the address the browser asked for (``tickets`` of ``/tickets?id=…``), if any."""
    path = urlparse(st.context.url or "").path.rstrip("/")
    return path.rsplit("/", 1)[-1] or None


def _login_form(settings: Settings, users: UsersFile) -> NoReturn:
    """The sign-in page; ends the run (st.stop) unless the login succeeded (then the app runs again)."""
    st.session_state.setdefault(RETURN_KEY, _requested_page())
    st.title("文化舆情监测与回应平台")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice)
    if not users.users:
        st.warning("尚未设置任何账号。请管理员在服务器上运行 `yuqing users add 用户名 --name 姓名 --role admin` "
                   "添加账号后再登录。")
        st.stop()
    with st.form("login", clear_on_submit=True):
        username = st.text_input("用户名", key="login_username")
        password = st.text_input("密码", type="password", key="login_password")
        submitted = st.form_submit_button("登录", type="primary")
    if not submitted:
        components.browser_warmup()
        st.stop()
    store = accounts.AttemptStore(accounts.attempts_path(settings), accounts.login_policy(settings))
    outcome = attempt_login(users, store, accounts.login_policy(settings), username, password, datetime.now(UTC))
    # Only a configured name goes into the log: what was typed may be a password typed into the wrong field.
    name = normalize_username(username) if users.get(username) is not None else "<an unknown name>"
    if outcome.status is LoginStatus.OK and outcome.session is not None:
        st.session_state[SESSION_KEY] = outcome.session
        log.info("login: %s signed in", name)
        st.rerun()
    elif outcome.status is LoginStatus.LOCKED and outcome.locked_until is not None:
        until = outcome.locked_until.astimezone(ZoneInfo(settings.timezone)).strftime("%H:%M")
        log.warning("login: %s refused, locked until %s", name, outcome.locked_until.isoformat())
        st.error(f"登录失败次数过多，该账号已暂时锁定，请于 {until} 后再试，或联系管理员解锁。")
    else:
        log.info("login: failed for %s (%s tries left before lock-out)", name, outcome.failures_left)
        st.error("用户名或密码错误。")
    st.stop()


def signed_in_viewer(settings: Settings) -> Viewer:
    """The viewer of this browser session; shows the sign-in page and stops the run when there is none."""
    users = _users(settings)
    session = st.session_state.get(SESSION_KEY)
    if session is not None:
        state, viewer = check_session(session, users, datetime.now(UTC))
        if state is SessionState.VALID and viewer is not None:
            st.session_state[components.VIEWER_KEY] = viewer
            return viewer
        log.info("login: session of %s ended (%s)", session.username, state.value)
        _end_session("登录已过期，请重新登录。" if state is SessionState.EXPIRED else "账号信息已变更，请重新登录。")
    st.session_state.pop(components.VIEWER_KEY, None)
    _login_form(settings, users)


backend = components.backend_or_stop()
viewer = signed_in_viewer(backend.settings)

with st.sidebar:
    unit = f"·{viewer.unit}" if viewer.unit else ""
    st.caption(md_escape(f"{viewer.display_name}（{viewer.role_label}{unit}）"))
    if st.button("退出登录", key="logout"):
        log.info("login: %s signed out", viewer.username)
        _end_session("已退出登录。")
        st.rerun()

allowed = [(key, file, title, icon) for key, file, title, icon in PAGES if viewer.can_open(key)]
pages = [st.Page(file, title=title, icon=icon, default=(i == 0)) for i, (_, file, title, icon) in enumerate(allowed)]
navigation = st.navigation(pages)
# A link followed before signing in (an alert mail's /tickets?id=…) opens its page after the login, with its query.
requested = st.session_state.pop(RETURN_KEY, None)
target = next((p for p in pages if requested and p.url_path == requested), None)
if target is not None and target.url_path != navigation.url_path:
    st.switch_page(target, query_params=st.query_params.to_dict())
components.run_guarded(navigation.run)
