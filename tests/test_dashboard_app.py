"""The dashboard pages run with Streamlit's AppTest against the real Elasticsearch (per-test index prefix)."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from dashboard.components import SESSION_KEY
from tests.conftest import seed_posts
from tests.dashboard_users import config_with_users, session_for
from yuqing.models import Analysis, Post
from yuqing.settings import Settings

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
RUN_TIMEOUT = 60.0

# Titles of the sample posts, newest first. Two mention 图书馆 (B only in its body); C has 图书 and 馆 apart.
B_SEATS = "市民留言：周末自习座位太难约"
A_HOURS = "市图书馆周末延长开放时间至晚上九点"
C_BOOK_SALE = "旧图书义卖活动在文化馆举行"
E_NOISE = "地铁站口夜间施工噪音扰民投诉多"
D_THEATRE = "大剧院新演出季开票 市民热情高涨"
ALL_NEWEST_FIRST = [B_SEATS, A_HOURS, C_BOOK_SALE, E_NOISE, D_THEATRE]
LIBRARY_TITLES = [B_SEATS, A_HOURS]


def _analysis(sentiment: str, topic: str | None, relevant: bool) -> Analysis:
    return Analysis.model_validate(
        {
            "sentiment": sentiment,
            "sentiment_probs": {sentiment: 0.9},
            "relevant": relevant,
            "relevance_prob": 0.9 if relevant else 0.1,
            "topic": topic,
            "topic_probs": {topic: 0.8} if topic else {},
            "model_version": "test",
        }
    )


def sample_posts(now: datetime | None = None) -> list[Post]:
    """Five real-looking posts published in the last 30 hours."""
    now = now or datetime.now(UTC)
    facility = "公共文化设施建设和使用"
    return [
        Post(
            url="https://liuyan.example.cn/thread/10086",
            title=B_SEATS,
            content="区图书馆自习室每到周末一座难求，预约系统经常卡顿，希望增加座位并优化预约方式。",
            source="liuyan",
            site="领导留言板",
            kind="message",
            author="网友小李",
            published_at=now - timedelta(hours=1),
            fetched_at=now,
            analysis=_analysis("negative", facility, True),
        ),
        Post(
            url="https://wlj.example.gov.cn/news/2026/1127/1.html",
            title=A_HOURS,
            content="为方便市民周末阅读，本市的图书馆自本周起周六、周日开放时间延长至21:00，少儿借阅区同步调整。",
            source="wenlv-site",
            site="市文化广电旅游局",
            author="公共服务科",
            published_at=now - timedelta(hours=2),
            fetched_at=now,
            analysis=_analysis("positive", facility, True),
        ),
        Post(
            url="https://wlj.example.gov.cn/news/2026/1127/2.html",
            title=C_BOOK_SALE,
            content="本周六上午，社区将在区文化馆门前举办旧图书义卖，所得款项用于资助乡村书屋建设。",
            source="wenlv-site",
            site="市文化广电旅游局",
            published_at=now - timedelta(hours=3),
            fetched_at=now,
            analysis=_analysis("neutral", "公益性文化服务活动", True),
        ),
        Post(
            url="https://news.example.com/city/noise.html",
            title=E_NOISE,
            content="地铁站口夜间施工噪音扰民，附近居民多次拨打热线投诉，施工方表示将调整作业时间。",
            source="news-portal",
            site="都市报",
            author="记者王芳",
            published_at=now - timedelta(hours=5),
            fetched_at=now,
            analysis=_analysis("negative", None, False),
        ),
        Post(  # an older post indexed before the classifier ran: no analysis
            url="https://news.example.com/culture/theatre.html",
            title=D_THEATRE,
            content="大剧院新演出季今日开票，多场演出门票在开票一小时内售罄。",
            source="news-portal",
            site="都市报",
            published_at=now - timedelta(hours=30),
            fetched_at=now,
        ),
    ]


@pytest.fixture()
def posts(settings: Settings, es_client: Elasticsearch) -> list[Post]:
    items = sample_posts()
    seed_posts(es_client, settings, items)
    return items


@pytest.fixture()
def app_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Point the app's own load_settings() at this test's index prefix (the project's config file, a copy of
    config/ with the test accounts, this test's data dir)."""
    monkeypatch.delenv("YUQING_CONFIG", raising=False)
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(config_with_users(tmp_path)))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(settings.paths.data_dir))
    monkeypatch.setenv("YUQING_DASHBOARD__PASSWORD_HASH_ROUNDS", "4")
    return settings


def signed_in(path: Path = APP, username: str = "press") -> AppTest:
    """The app (or a page) for a browser session already signed in as ``username`` (see tests/dashboard_users)."""
    at = AppTest.from_file(str(path))
    at.session_state[SESSION_KEY] = session_for(username)
    return at


def on_search(username: str = "press") -> AppTest:
    """The 检索 page for a browser session signed in as ``username`` (the app opens on 总览)."""
    at = _run(signed_in(username=username))
    at.switch_page("views/search.py")
    return _run(at)


def _run(at: AppTest) -> AppTest:
    at.run(timeout=RUN_TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_titles(at: AppTest) -> list[str]:
    """Titles of the post cards on the page, in page order (unescaped)."""
    titles = []
    for md in at.markdown:
        m = re.match(r"^\*\*\[(.+?)\]\(", md.value)
        if m:
            titles.append(re.sub(r"\\(.)", r"\1", m.group(1)))
    return titles


def frame_with(at: AppTest, column: str) -> Any:
    """The first table on the page that has ``column``."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _markdown_text(at: AppTest) -> list[str]:
    return [md.value for md in at.markdown]


def test_search_lists_newest_first_with_details(app_env: Settings, posts: list[Post]) -> None:
    at = on_search()

    assert at.title[0].value == "检索"
    assert shown_titles(at) == ALL_NEWEST_FIRST
    assert "共 5 条" in _markdown_text(at)
    seats = posts[0]
    card = next(md.value for md in at.markdown if md.value.startswith(f"**[{B_SEATS}]"))
    assert f"]({seats.url})**" in card
    assert ":red-badge[负面]" in card and ":blue-badge[公共文化设施建设和使用]" in card
    assert seats.published_at is not None
    shanghai = seats.published_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    # One Markdown element per card: title and badges, the source line as a caption (small, grey), the excerpt.
    assert f"\n\n:gray[:small[来源：liuyan · 领导留言板 · 作者：网友小李 · 发布于 {shanghai}]]\n\n" in card
    theatre = next(md.value for md in at.markdown if md.value.startswith(f"**[{D_THEATRE}]"))
    assert "badge" not in theatre  # no analysis: no sentiment or topic badge


def test_search_library_shows_exactly_the_posts_containing_it(app_env: Settings, posts: list[Post]) -> None:
    at = on_search()
    at.text_input(key="search_text").input("图书馆")
    _run(at)

    assert shown_titles(at) == LIBRARY_TITLES
    assert "共 2 条" in _markdown_text(at)
    assert not any(C_BOOK_SALE in t or D_THEATRE in t for t in _markdown_text(at))
    # The excerpt of B (图书馆 only in its body) shows the term in bold.
    assert any("**图书馆**自习室" in t for t in _markdown_text(at))


def test_search_without_match_says_so(app_env: Settings, posts: list[Post]) -> None:
    at = on_search()
    at.text_input(key="search_text").input("+图书 +馆长")
    _run(at)

    assert shown_titles(at) == []
    assert len(at.info) == 1 and at.info[0].value.startswith("未找到相关舆情")


def test_sidebar_filters(app_env: Settings, posts: list[Post]) -> None:
    at = on_search()
    assert at.sidebar.multiselect(key="filter_sources").options == [
        "news-portal（2）", "wenlv-site（2）", "liuyan（1）"
    ]

    at.sidebar.multiselect(key="filter_sentiments").set_value(["negative"])
    _run(at)
    assert shown_titles(at) == [B_SEATS, E_NOISE]

    at.sidebar.radio(key="filter_relevance").set_value("relevant")
    _run(at)
    assert shown_titles(at) == [B_SEATS]

    at.sidebar.multiselect(key="filter_sentiments").set_value([])
    at.sidebar.radio(key="filter_relevance").set_value("all")
    at.sidebar.multiselect(key="filter_sources").set_value(["news-portal"])
    _run(at)
    assert shown_titles(at) == [E_NOISE, D_THEATRE]


def test_overview_counts_hot_words_and_negatives(app_env: Settings, posts: list[Post]) -> None:
    at = _run(signed_in())

    assert at.title[0].value == "舆情总览"
    # The first window that holds posts: the last 24 hours (D was published 30 hours ago).
    assert at.sidebar.selectbox(key="overview_window").value == "近24小时"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["舆情总数"] == "4" and metrics["未分析"] == "0"

    at.sidebar.selectbox(key="overview_window").select("近7天")
    _run(at)
    metrics = {m.label: m.value for m in at.metric}
    assert {k: metrics[k] for k in ("舆情总数", "负面", "中性", "正面", "未分析")} == {
        "舆情总数": "5", "负面": "2", "中性": "1", "正面": "1", "未分析": "1"}
    assert [m.delta for m in at.metric if m.label == "负面"] == ["40%"]
    sources_df, words_df = frame_with(at, "来源"), frame_with(at, "热词")
    assert dict(zip(sources_df["来源"], sources_df["条数"], strict=True)) == {
        "news-portal": 2, "wenlv-site": 2, "liuyan": 1
    }
    words = dict(zip(words_df["热词"], words_df["篇数"], strict=True))
    assert words["图书馆"] == 2 and words["周六"] == 2
    assert list(words_df["篇数"]) == sorted(words_df["篇数"], reverse=True)
    assert shown_titles(at) == [B_SEATS, E_NOISE]


def test_overview_page_runs_on_its_own(app_env: Settings, posts: list[Post]) -> None:
    at = _run(AppTest.from_file(str(APP.parent / "views" / "overview.py")))
    assert {m.label: m.value for m in at.metric}["负面"] == "2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_elasticsearch_down_shows_clear_error(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    host = f"127.0.0.1:{_free_port()}"
    monkeypatch.setenv("YUQING_ELASTICSEARCH__HOSTS", f'["http://ops:s3cret@{host}"]')
    at = _run(signed_in())

    assert len(at.error) == 1
    message = at.error[0].value
    assert "无法连接舆情数据库" in message and f"http://{host}" in message and "s3cret" not in message
    assert shown_titles(at) == []


def test_bad_configuration_shows_clear_error(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_DASHBOARD__PAGE_SIZE", "0")
    at = _run(signed_in())

    assert len(at.error) == 1
    assert at.error[0].value.startswith("配置有误") and "YUQING_DASHBOARD__PAGE_SIZE" in at.error[0].value


def test_query_failures_name_the_missing_index_and_keep_technical_detail_in_the_log(
    settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    from dashboard import data

    backend = data.Backend(key="t", settings=settings, client=es_client)
    missing = f"{settings.elasticsearch.index_prefix}-no-such-index"
    with pytest.raises(data.DashboardError, match=f"没有索引 {missing}"), data.es_errors(backend):
        es_client.search(index=missing)
    with caplog.at_level(logging.ERROR), pytest.raises(data.DashboardError) as info, data.es_errors(backend):
        es_client.search(index="*", query={"no_such_query": {}})  # refused: 400
    shown = str(info.value)
    assert shown.startswith("查询舆情数据库") and "错误编号" in shown and "Error(" not in shown  # no raw exception
    ref = shown.split("错误编号 ")[1].rstrip("）。")
    assert any(ref in r.getMessage() and "400" in r.getMessage() for r in caplog.records)  # the detail, logged
