"""Pure helpers of the dashboard: formatting, cache keys, time windows and the `dashboard` command line."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from dashboard import cli, data
from dashboard import format as fmt
from yuqing.models import Analysis, Post
from yuqing.text import display_host

NOW = datetime(2026, 11, 27, 6, 5, 42, tzinfo=UTC)  # 14:05 in Shanghai


def _post(**changes: object) -> Post:
    base: dict[str, object] = {
        "url": "https://example.gov.cn/a.html",
        "title": "标题",
        "content": "正文",
        "source": "liuyan",
        "fetched_at": NOW,
    }
    base.update(changes)
    return Post.model_validate(base)


def _analysis(sentiment: str = "negative", topic: str | None = "版权", relevant: bool = True) -> Analysis:
    return Analysis.model_validate(
        {"sentiment": sentiment, "relevant": relevant, "relevance_prob": 0.7, "topic": topic,
         "model_version": "t"}
    )


# ---- time ----------------------------------------------------------------------------------------------
def test_format_time_converts_to_the_configured_zone() -> None:
    assert fmt.format_time(NOW, "Asia/Shanghai") == "2026-11-27 14:05"
    assert fmt.format_time(NOW, "UTC") == "2026-11-27 06:05"
    assert fmt.format_time(datetime(2026, 11, 27, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
                           "Asia/Shanghai") == "2026-11-28 12:30"
    assert fmt.format_time(None, "Asia/Shanghai") == "时间未知"


def test_meta_line_names_source_site_author_and_time() -> None:
    post = _post(site="领导留言板", author="网友_小李", published_at=NOW)
    assert fmt.meta_line(post, "Asia/Shanghai") == (
        "来源：liuyan · 领导留言板 · 作者：网友\\_小李 · 发布于 2026-11-27 14:05"
    )


def test_meta_line_without_publish_time_shows_fetch_time_and_skips_missing_parts() -> None:
    post = _post(site="liuyan", fetched_at=NOW + timedelta(hours=1))
    assert fmt.meta_line(post, "Asia/Shanghai") == "来源：liuyan · 发布时间未知（抓取于 2026-11-27 15:05）"


def test_card_markdown_is_one_block_whose_caption_post_text_cannot_close() -> None:
    post = _post(title="馆]](javascript:x)", author="网友]] :red[假]", published_at=NOW, analysis=_analysis(),
                 content="周末版权讲座 " * 3)
    title, meta, body = fmt.card_markdown(post, "Asia/Shanghai", ["版权"]).split("\n\n")
    assert title == ("**[馆\\]\\]\\(javascript\\:x\\)](https://example.gov.cn/a.html)** "
                     ":red-badge[负面] :blue-badge[版权]")
    assert meta == ":gray[:small[来源：liuyan · 作者：网友\\]\\] \\:red\\[假\\] · 发布于 2026-11-27 14:05]]"
    assert "**版权**" in body
    assert fmt.card_markdown(_post(content=" "), "UTC").count("\n\n") == 1  # no empty excerpt paragraph


# ---- sentiment and topic ------------------------------------------------------------------------------
def test_sentiment_labels_round_trip() -> None:
    assert [fmt.sentiment_label(s) for s in ("negative", "neutral", "positive")] == ["负面", "中性", "正面"]
    assert fmt.sentiment_label(None) == "未分析"
    assert [fmt.sentiment_value(x) for x in ("负面", "中性", "正面")] == ["negative", "neutral", "positive"]
    with pytest.raises(ValueError):
        fmt.sentiment_value("未分析")


def test_badges_line() -> None:
    assert fmt.badges_line(_post(analysis=_analysis())) == ":red-badge[负面] :blue-badge[版权]"
    assert fmt.badges_line(_post(analysis=_analysis("positive", None))) == ":green-badge[正面]"
    assert fmt.badges_line(_post(analysis=_analysis("neutral", None, relevant=False))) == (
        ":gray-badge[中性] :gray-badge[非相关]"
    )
    assert fmt.badges_line(_post()) == ""
    assert fmt.sentiment_badge(None) == ""


# ---- safe Markdown ------------------------------------------------------------------------------------
def test_md_escape_keeps_markdown_latex_and_directives_literal() -> None:
    assert fmt.md_escape("票价$5 *特价* [链接](x) :red[假] <b>") == (
        "票价\\$5 \\*特价\\* \\[链接\\]\\(x\\) \\:red\\[假\\] \\<b\\>"
    )
    assert fmt.md_escape("  第一行\n\n# 第二行 ") == "第一行 \\# 第二行"
    assert fmt.md_escape("中文，标点。") == "中文，标点。"


def test_display_host_hides_credentials() -> None:
    assert display_host("https://ops:s3cret@es1.example.gov.cn:9200") == "https://es1.example.gov.cn:9200"
    assert display_host("http://127.0.0.1:9200") == "http://127.0.0.1:9200"


def test_title_link() -> None:
    assert fmt.title_link("市图书馆[通知]", "https://a.cn/x (1).html") == (
        "[市图书馆\\[通知\\]](https://a.cn/x%20%281%29.html)"
    )
    assert fmt.title_link("", "http://a.cn/?q=1&r=2#f") == "[（无标题）](http://a.cn/?q=1&r=2#f)"
    # a Weibo post has no title: it is named by the start of its text
    weibo = _post(title="", content="咨询电话打了二十次没人接，这就是我们的公共服务？#青川市图书馆突然闭馆#")
    assert fmt.display_title(weibo) == "咨询电话打了二十次没人接，这就是我们的公共服务？#青川市图书…"
    assert fmt.card_markdown(weibo, "Asia/Shanghai").startswith("**[咨询电话打了二十次没人接")
    assert fmt.title_link("标题", "javascript:alert(1)") == "标题"


# ---- excerpts and highlighting ------------------------------------------------------------------------
def test_excerpt_short_text_is_whole_and_on_one_line() -> None:
    assert fmt.excerpt("第一段\n\n  第二段", ["图书馆"]) == "第一段 第二段"


def test_excerpt_centres_on_the_first_term() -> None:
    text = "甲" * 200 + "图书馆" + "乙" * 200
    out = fmt.excerpt(text, ["图书馆"], width=60)
    assert out.startswith("…") and out.endswith("…")
    assert "图书馆" in out and len(out) == 1 + 60 + 3 + 1  # the window and the term, with both ellipses
    assert out.index("图书馆") == 1 + 20  # a third of the window before the term


def test_excerpt_without_match_starts_at_the_beginning() -> None:
    text = "甲" * 100
    assert fmt.excerpt(text, ["图书馆"], width=10) == "甲" * 10 + "…"
    # Near the end the window keeps its length: more of the text before the term.
    assert fmt.excerpt(text + "图书馆", ["图书馆"], width=10) == "…" + "甲" * 10 + "图书馆"


def test_highlight_bolds_terms_and_escapes_the_rest() -> None:
    assert fmt.highlight("区图书馆*自习室* 图书馆", ["图书馆"]) == "区**图书馆**\\*自习室\\* **图书馆**"
    assert fmt.highlight("Library 与 LIBRARY", ["library"]) == "**Library** 与 **LIBRARY**"
    # Overlapping and adjacent matches merge into one emphasis.
    assert fmt.highlight("图书馆馆长", ["图书馆", "馆长"]) == "**图书馆馆长**"
    # Terms that start or end with punctuation are not emphasised (CommonMark would show stray **).
    assert fmt.highlight("票价$5", ["$5"]) == "票价\\$5"
    assert fmt.highlight("无匹配", []) == "无匹配"


def test_count_line() -> None:
    assert fmt.count_line(2, 2) == "共 2 条"
    assert fmt.count_line(0, 0) == "共 0 条"
    assert fmt.count_line(120, 50) == "共 120 条，显示最新 50 条"
    assert fmt.count_line(120, 50, newest_first=False) == "共 120 条，显示前 50 条"  # sorted by relevance


# ---- data helpers -------------------------------------------------------------------------------------
def test_environment_key_depends_only_on_yuqing_variables() -> None:
    base = {"HOME": "/root", "YUQING_ELASTICSEARCH__INDEX_PREFIX": "a"}
    key = data.environment_key(base)
    assert data.environment_key({**base, "HOME": "/tmp"}) == key
    assert data.environment_key({**base, "YUQING_ELASTICSEARCH__INDEX_PREFIX": "b"}) != key
    assert data.environment_key({**base, "YUQING_CONFIG": "/etc/y.yaml"}) != key


def test_window_start_rounds_down_to_the_minute() -> None:
    assert data.window_start(NOW, timedelta(days=7)) == datetime(2026, 11, 20, 6, 5, tzinfo=UTC)
    assert data.OVERVIEW_WINDOWS["全部"] is None


# ---- command line -------------------------------------------------------------------------------------
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_subcommand(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_subcommand_parses_and_dispatches_to_the_handler() -> None:
    args = _parse(["dashboard", "--port", "9001"])
    assert args.command == "dashboard" and args.port == 9001 and args.host is None
    assert args.func is cli._dashboard_command


def test_streamlit_command_serves_app_headless() -> None:
    cmd = cli.streamlit_command("0.0.0.0", 8502)
    assert cmd[:3] == [sys.executable, "-m", "dashboard.serve"]  # streamlit run dashboard/app.py, warmed
    assert cli.APP_PATH.is_file()
    opts = dict(zip(cmd[3::2], cmd[4::2], strict=True))
    assert opts == {
        "--server.address": "0.0.0.0",
        "--server.port": "8502",
        "--server.headless": "true",
        "--server.fileWatcherType": "none",
        "--browser.gatherUsageStats": "false",
        "--client.toolbarMode": "minimal",
    }


def test_streamlit_env_passes_the_config_file_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = cli.streamlit_env("my.yaml", {"PATH": "/bin", "YUQING_SMTP__HOST": "mail"})
    assert env == {"PATH": "/bin", "YUQING_SMTP__HOST": "mail", "YUQING_CONFIG": str(tmp_path / "my.yaml")}
    assert cli.streamlit_env(None, {"PATH": "/bin"}) == {"PATH": "/bin"}


def test_configuration_errors_are_said_in_chinese_with_file_and_field(tmp_path: Path) -> None:
    from yuqing.config_files import load_model
    from yuqing.errors import ConfigError
    from yuqing.sources import SourcesFile

    def refused(text: str) -> ConfigError:
        path = tmp_path / "sources.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_model(path, SourcesFile)
        return info.value

    feed = "sources:\n  - {name: 区文化馆, kind: feed, start_urls: ['https://a.example.cn/rss']%s}\n"
    assert fmt.config_error_text(refused(feed % ", weight: -1")) == "sources.yaml 中的 sources[0].weight：须不小于 0.0"
    assert fmt.config_error_text(refused(feed % ", intervl_s: 60")) == \
        "sources.yaml 中的 sources[0].intervl_s：不认识的设置项（拼写有误？）"
    kind = fmt.config_error_text(refused(feed.replace("kind: feed", "kind: rss") % ""))
    assert kind.startswith("sources.yaml 中的 sources[0].kind：须为以下之一：") and "'feed'" in kind
    # not from validation: the message as it is, the place still named
    assert fmt.error_text(ConfigError("名称“甲”已被使用", file="/etc/yuqing/alerts.yaml", field="people[0].name")) == \
        "alerts.yaml 中的 people[0].name：名称“甲”已被使用"
    assert fmt.error_text(ValueError("其他错误")) == "其他错误"


def test_mail_errors_said_for_a_press_officer() -> None:
    assert fmt.mail_error_text(None) == ""
    assert fmt.mail_error_text("SMTP server mail.example:587 (STARTTLS) failed at login as 'yq': "
                               "SMTPAuthenticationError: (535, b'bad')").startswith("邮件服务器登录失败")
    assert fmt.mail_error_text("recipients refused: a@b.cn") == "部分收件人被邮件服务器拒收"
    assert fmt.mail_error_text("something new") == "发送失败（见技术信息）"


def test_every_multiselect_says_its_placeholder_in_chinese() -> None:
    """Streamlit's own placeholder is English ("Choose options"): every multiselect of the dashboard names its own."""
    import ast

    from yuqing.settings import PROJECT_ROOT

    missing = []
    for path in sorted((PROJECT_ROOT / "dashboard").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "multiselect"
                    and "placeholder" not in {k.arg for k in node.keywords}):
                missing.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert missing == []
