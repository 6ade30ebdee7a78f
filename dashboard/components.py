"""Streamlit building blocks shared by the pages: the post card, the signed-in viewer, and error handling that
shows a short Chinese message instead of a traceback."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NoReturn, ParamSpec, TypeVar

import streamlit as st

from dashboard import accounts, data
from dashboard import format as fmt
from dashboard.auth import Session, SessionState, Viewer, check_session, mask_for, mask_post
from yuqing.errors import ConfigError, YuqingError
from yuqing.models import Post

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger(__name__)

SESSION_KEY = "auth_session"  # the login (dashboard.auth.Session), kept by the gate in app.py
VIEWER_KEY = "auth_viewer"  # the signed-in viewer, set by the gate on every run


def current_viewer() -> Viewer | None:
    """The signed-in user of this browser session (None when a page runs without the gate, e.g. in a test)."""
    viewer = st.session_state.get(VIEWER_KEY)
    return viewer if isinstance(viewer, Viewer) else None


def require_page(page: str) -> Viewer | None:
    """Stop the page unless the viewer's role may open it (the gate hides it already; this guards a direct run)."""
    viewer = current_viewer()
    if viewer is None or not viewer.can_open(page):
        fail("您没有权限访问此页面。")
    return viewer


def viewer_post(post: Post) -> Post:
    """``post`` as the viewer may see it: personal data masked for leaders, analysts and unknown viewers."""
    mask = mask_for(current_viewer(), data.get_backend().redactor.redact)
    return mask_post(post, mask) if mask is not None else post


def viewer_mask() -> Callable[[str], str]:
    """The text mask for the signed-in viewer: identity for press officers and admins, the privacy patterns
    otherwise (for text shown outside a post card: event, 处置单 and alert titles)."""
    mask = mask_for(current_viewer(), data.get_backend().redactor.redact)
    return mask if mask is not None else (lambda text: text)


def unexpected_error(exc: BaseException) -> None:
    """A short Chinese message with a reference; the traceback goes to the log under the same reference."""
    ref = uuid.uuid4().hex[:8]
    log.error("dashboard error %s on page run", ref, exc_info=exc)
    st.error(f"页面出现意外错误，请稍后刷新重试；如反复出现，请联系管理员（错误编号 {ref}）。", icon="⚠️")


def run_guarded(run: Callable[[], object]) -> None:
    """``run()``; any unexpected exception becomes :func:`unexpected_error` (st.stop/st.rerun pass through:
    Streamlit's control exceptions are not ``Exception``)."""
    try:
        run()
    except Exception as exc:
        unexpected_error(exc)


def session_ended() -> bool:
    """Whether this browser session holds a login that no longer holds (expired, password changed, account
    removed); a valid one refreshes the viewer from ``users.yaml`` (a changed role applies at once). The gate in
    app.py checks the login on every page run; a panel's own reruns (:func:`live_panel`) skip the gate, so they
    ask here. No login at all is a page run without the gate (a test): nothing to check."""
    session = st.session_state.get(SESSION_KEY)
    if not isinstance(session, Session):
        return False
    try:
        users = accounts.load_users(accounts.users_path(data.get_backend().settings))
    except YuqingError:  # the full run that follows says what is wrong
        return True
    state, viewer = check_session(session, users, datetime.now(UTC))
    if state is not SessionState.VALID or viewer is None:
        return True
    st.session_state[VIEWER_KEY] = viewer
    return False


def live_panel(run_every_s: int) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """A page panel that refreshes itself every ``run_every_s`` seconds (``st.fragment``) without rerunning the
    page; an unexpected error in it becomes :func:`unexpected_error` for that panel only. Each refresh checks
    the login first: an expired, revoked or removed one reruns the whole app (the gate then asks to sign in)
    instead of refreshing the data."""

    def wrap(body: Callable[[], None]) -> Callable[[], None]:
        def panel() -> None:
            if session_ended():
                st.session_state.pop(VIEWER_KEY, None)
                st.rerun(scope="app")
            run_guarded(body)

        panel.__name__ = panel.__qualname__ = f"live_{body.__name__}"
        return st.fragment(run_every=run_every_s)(panel)

    return wrap


def unreadable_notice(count: int) -> None:
    """Say that ``count`` documents of the result could not be read (their ids are in the log)."""
    if count:
        st.warning(f"有 {count} 条记录格式无法识别，已跳过未显示（记录编号已写入日志）。", icon="⚠️")


def fail(message: str) -> NoReturn:
    """Show ``message`` as an error and end this run of the page."""
    st.error(message, icon="🚫")
    st.stop()


def backend_or_stop() -> data.Backend:
    """The settings and client, or a configuration error on the page."""
    try:
        return data.get_backend()
    except ConfigError as exc:
        fail(f"配置有误，仪表盘无法启动：{fmt.config_error_text(exc)}")


def call_or_stop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)``; an Elasticsearch failure is shown as a clear message, not a traceback."""
    try:
        result = func(*args, **kwargs)
    except data.DashboardError as exc:
        fail(str(exc))
    if isinstance(result, data.PageResult):
        unreadable_notice(result.unreadable)
    return result


def es_or_stop(backend: data.Backend, func: Callable[[], R]) -> R:
    """``func()`` (a read or write of the page's own Elasticsearch work); a failure is shown as a clear message
    naming the cluster and stops the page (:func:`dashboard.data.es_errors`)."""
    try:
        with data.es_errors(backend):
            return func()
    except data.DashboardError as exc:
        fail(str(exc))


JUDGE_PAGE = "views/judge.py"


def post_card(post: Post, tz: str, terms: Sequence[str] = (), *, judge_link: bool = False) -> None:
    """One post: linked title with badges, source/author/time line and an excerpt around the search terms.

    One Markdown element (:func:`dashboard.format.card_markdown`). Personal data is masked as the viewer's role
    requires; every piece of post text is escaped (inert Markdown). ``judge_link``: a link to judge the post on
    the 人工研判 page (for those who may judge).
    """
    with st.container(border=True):
        st.markdown(fmt.card_markdown(viewer_post(post), tz, terms))
        if judge_link:
            st.page_link(JUDGE_PAGE, label="人工研判" if post.judgement is None else "修改人工研判", icon="🏷️",
                         query_params={"post": post.doc_id})


WARMUP_KEY = "browser-warmup"
WARMUP_LABEL = "预加载"


def browser_warmup() -> None:
    """The kinds of element the first page after signing in shows (bar chart, table, metric, select box, button),
    empty, disabled and out of sight, on the sign-in page: the browser fetches and starts their code while the
    user types the password, so the first page does not wait for it (about 1.5 s of a fresh Chromium's CPU).
    Nothing is read: no data, no query."""
    import pandas as pd

    st.html(f"<style>.st-key-{WARMUP_KEY} {{display: none;}}</style>")
    with st.container(key=WARMUP_KEY):
        st.vega_lite_chart(pd.DataFrame({"x": pd.Series([], dtype="int64")}), {
            "mark": "bar", "encoding": {"x": {"field": "x", "type": "quantitative"}}, "height": 10})
        st.dataframe(pd.DataFrame({"x": pd.Series([], dtype="int64")}), hide_index=True)
        st.metric(WARMUP_LABEL, "", label_visibility="collapsed")
        st.selectbox(WARMUP_LABEL, [""], key=f"{WARMUP_KEY}-select", disabled=True, label_visibility="collapsed")
        st.button(WARMUP_LABEL, key=f"{WARMUP_KEY}-button", disabled=True)
