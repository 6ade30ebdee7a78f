"""Streamlit building blocks shared by the pages: the post card and error handling that stops the page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn, ParamSpec, TypeVar

import streamlit as st

from dashboard import data
from dashboard import format as fmt
from yuqing.errors import ConfigError
from yuqing.models import Post

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str) -> NoReturn:
    """Show ``message`` as an error and end this run of the page."""
    st.error(message, icon="🚫")
    st.stop()


def backend_or_stop() -> data.Backend:
    """The settings and client, or a configuration error on the page."""
    try:
        return data.get_backend()
    except ConfigError as exc:
        fail(f"配置有误，仪表盘无法启动：{exc}")


def call_or_stop(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """``func(*args, **kwargs)``; an Elasticsearch failure is shown as a clear message, not a traceback."""
    try:
        return func(*args, **kwargs)
    except data.DashboardError as exc:
        fail(str(exc))


def post_card(post: Post, tz: str, terms: Sequence[str] = ()) -> None:
    """One post: linked title with badges, source/author/time line and an excerpt around the search terms."""
    with st.container(border=True):
        head = f"**{fmt.title_link(post.title, post.url)}**"
        badges = fmt.badges_line(post)
        st.markdown(f"{head} {badges}" if badges else head)
        st.caption(fmt.meta_line(post, tz))
        if post.content.strip():
            st.markdown(fmt.highlight(fmt.excerpt(post.content, terms), terms))
