"""Pure tests of the alert rules file, rule queries and alert emails (no servers needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.compose import Envelope, compose
from alerts.message import keyword_excerpt
from alerts.producers import post_link
from alerts.query import build_rule_query, build_rule_search, keyword_clause, own_sources_clause, window_clauses
from alerts.rules import AlertRule, load_alert_config, load_rules, rules_path
from alerts.signals import PostSignal
from nlp.taxonomy import load_taxonomy
from yuqing.errors import ConfigError
from yuqing.models import Analysis, Post
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.text import excerpt

NOW = datetime(2026, 11, 27, 10, 30, tzinfo=UTC)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
recipients:
  leaders: [leader@culture.example.gov.cn, deputy@culture.example.gov.cn]
  press: [press@culture.example.gov.cn]
rules:
  - name: 图书馆舆情
    any: [图书馆, 阅览室]
    all: [投诉]
    exclude: [招聘]
    sources: [市民留言板]
    kinds: [message]
    recipients: [leaders, press, someone@example.org, press]
  - name: 停用的规则
    enabled: false
    any: [测试]
    recipients: [press]
"""


# ---- rules file ------------------------------------------------------------------------------------------
def test_project_rules_file_loads() -> None:
    rules = load_rules(PROJECT_ROOT / "config" / "alerts.yaml")
    by_name = {r.name: r for r in rules}
    assert "图书馆舆情" in by_name
    assert by_name["图书馆舆情"].recipients == (
        "leader@culture.example.gov.cn",
        "press@culture.example.gov.cn",
    )
    assert "非遗" in by_name["文物与非遗"].any_of


def test_rules_path_defaults_to_config_dir(tmp_path: Path) -> None:
    s = Settings()
    assert rules_path(s) == s.paths.config_dir / "alerts.yaml"
    absolute = tmp_path / "x.yaml"
    s2 = s.model_copy(update={"alerts": s.alerts.model_copy(update={"rules_file": absolute})})
    assert rules_path(s2) == absolute


def test_rules_resolved_and_disabled_dropped(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD))
    assert [r.name for r in rules] == ["图书馆舆情"]
    rule = rules[0]
    # groups expanded in order, plain addresses kept, duplicates dropped
    assert rule.recipients == (
        "leader@culture.example.gov.cn",
        "deputy@culture.example.gov.cn",
        "press@culture.example.gov.cn",
        "someone@example.org",
    )
    assert rule.any_of == ("图书馆", "阅览室")
    assert rule.all_of == ("投诉",)
    assert rule.exclude == ("招聘",)
    assert rule.sources == ("市民留言板",)
    assert rule.kinds == ("message",)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "recipients: {leaders: [a@b.cn]}\n"
            "rules:\n  - name: 甲\n    any: [x]\n    recipients: [leaders, bosses]\n",
            "rules[0].recipients[1]",
            "bosses",
        ),
        ("rules:\n  - name: 甲\n    recipients: [a@b.cn]\n", "rules[0]", "needs a keyword under"),
        ("rules:\n  - name: 甲\n    any: [图书 馆]\n    recipients: [a@b.cn]\n", "rules[0].any", "space"),
        (
            "rules:\n  - name: 甲\n    any: [x]\n    kinds: [blog]\n    recipients: [a@b.cn]\n",
            "rules[0].kinds[0]",
            "",
        ),
        ("rules:\n  - name: 甲\n    any: [x]\n    recipients: []\n", "rules[0].recipients", ""),
        ("rules:\n  - name: 甲\n    any: [x]\n    recipent: [a@b.cn]\n", "rules[0]", ""),
        ("recipients: {leaders: [not-an-address]}\nrules: []\n", "recipients", "not-an-address"),
        (
            "rules:\n"
            "  - {name: 甲, any: [x], recipients: [a@b.cn]}\n"
            "  - {name: 甲, any: [y], recipients: [a@b.cn]}\n",
            "rules[1].name",
            "重复",
        ),
    ],
)
def test_bad_rules_name_file_and_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    err = info.value
    assert err.file == str(path)
    assert err.field is not None and err.field.startswith(field)
    assert str(path) in str(err) and field in str(err)
    assert words in str(err)


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "rules:\n  - name: 甲\n    any: [x\n")
    with pytest.raises(ConfigError, match="malformed YAML") as info:
        load_rules(path)
    assert str(path) in str(info.value)


def test_missing_file_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_rules(tmp_path / "absent.yaml")


def test_every_topic_the_rules_name_is_a_taxonomy_topic(tmp_path: Path) -> None:
    topics = load_taxonomy(PROJECT_ROOT / "config" / "taxonomy.yaml").names
    shipped = load_alert_config(PROJECT_ROOT / "config" / "alerts.yaml", topics)  # the example file passes
    assert any("文化遗产保护" in p.topics for p in shipped.signal_rules.directory.people)
    # a person following a misspelt topic would never hear of it: refused, naming the file, field and choices
    path = tmp_path / "alerts.yaml"
    path.write_text("people:\n  - {name: 宣传科, email: p@example.cn, topics: [文化遗产保护, 文物保护与非遗]}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_alert_config(path, topics)
    message = str(info.value)
    assert str(path) in message and "people[0].topics[1]" in message and "“文物保护与非遗”不是主题分类" in message
    assert "文化遗产保护" in message  # among the choices
    load_alert_config(path)  # without the taxonomy nothing is checked


# ---- queries ---------------------------------------------------------------------------------------------
def phrases(clause: dict[str, Any]) -> set[str]:
    """The match_phrase terms on title/content inside a keyword clause."""
    out = set()
    for c in clause["bool"]["should"]:
        ((fld, spec),) = c["match_phrase"].items()
        assert fld in ("title", "content")
        out.add(spec["query"])
    return out


def test_keyword_clause_is_exact_phrase_on_title_and_body() -> None:
    clause = keyword_clause("图书馆")
    assert clause["bool"]["minimum_should_match"] == 1
    fields = {next(iter(c["match_phrase"])) for c in clause["bool"]["should"]}
    assert fields == {"title", "content"}
    assert phrases(clause) == {"图书馆"}
    with pytest.raises(ValueError):
        keyword_clause("  ")


def test_rule_query_any_all_exclude_filters() -> None:
    rule = AlertRule(
        name="r", any_of=("图书馆", "阅览室"), all_of=("投诉",), exclude=("招聘",),
        sources=("市民留言板",), kinds=("message",), recipients=("a@b.cn",),
    )
    since = NOW - timedelta(days=2)
    q = build_rule_query(rule, since, NOW)["bool"]
    filters = q["filter"]
    assert filters[:1] == window_clauses(since, NOW)  # the time window, on indexed_at (alerts test the search)
    assert {"terms": {"source": ["市民留言板"]}} in filters
    assert {"terms": {"kind": ["message"]}} in filters
    # the 'all' keyword is a filter of its own
    assert keyword_clause("投诉") in filters
    # the 'any' keywords: one clause with minimum_should_match 1
    (any_clause,) = [f for f in filters if "bool" in f and f["bool"].get("minimum_should_match") == 1
                     and len(f["bool"]["should"]) == 2 and "bool" in f["bool"]["should"][0]]
    assert [phrases(c) for c in any_clause["bool"]["should"]] == [{"图书馆"}, {"阅览室"}]
    assert keyword_clause("招聘") in q["must_not"]
    assert {"exists": {"field": "duplicate_of"}} in q["must_not"]
    # no scoring clauses: rules filter only
    assert "must" not in q and "should" not in q


def test_rule_query_without_optional_parts() -> None:
    rule = AlertRule(name="r", any_of=("非遗",), include_duplicates=True, recipients=("a@b.cn",))
    q = build_rule_query(rule, NOW - timedelta(hours=1), NOW)["bool"]
    assert q["must_not"] == []
    assert not any("terms" in f for f in q["filter"])
    assert len(q["filter"]) == 2  # time window + the 'any' clause


def test_rule_query_leaves_out_the_bureaus_own_channels_unless_the_rule_names_them() -> None:
    own = ("官网", "公众号")
    rule = AlertRule(name="r", any_of=("图书馆",), recipients=("a@b.cn",))
    q = build_rule_query(rule, NOW - timedelta(hours=1), NOW, own_sources=own)["bool"]
    assert {"terms": {"source": ["公众号", "官网"]}} in q["must_not"]
    assert build_rule_search(rule, NOW - timedelta(hours=1), NOW, own_sources=own)["query"]["bool"] == q
    watching = AlertRule(name="官网监看", any_of=("图书馆",), sources=("官网", "市民留言板"), recipients=("a@b.cn",))
    q = build_rule_query(watching, NOW - timedelta(hours=1), NOW, own_sources=own)["bool"]
    assert {"terms": {"source": ["公众号"]}} in q["must_not"]  # the source it names is watched
    assert own_sources_clause(("官网", "公众号"), own) is None and own_sources_clause((), ()) is None


def test_rule_search_pages_oldest_first() -> None:
    rule = AlertRule(name="r", any_of=("非遗",), recipients=("a@b.cn",))
    body = build_rule_search(rule, NOW - timedelta(days=1), NOW, size=10)
    assert body["sort"][0] == {"indexed_at": {"order": "asc", "missing": "_first"}}
    assert body["size"] == 10 and "search_after" not in body
    nxt = build_rule_search(rule, NOW - timedelta(days=1), NOW, size=10, search_after=[1, "u"])
    assert nxt["search_after"] == [1, "u"]
    json.dumps(body)  # the body is plain JSON


# ---- messages (a post rule's match as the outbox composes it) ----------------------------------------------
RULE = AlertRule(name="图书馆舆情", any_of=("图书馆",), recipients=("leader@x.cn", "press@x.cn"))


def make_post(**kw: Any) -> Post:
    data: dict[str, Any] = {
        "url": "https://www.example.gov.cn/liuyan/123.html",
        "title": "市图书馆周末闭馆引发市民不满",
        "content": "有市民反映，" + "很多读者" * 40 + "市图书馆周末突然闭馆，" + "无法借书" * 40,
        "source": "市民留言板",
        "site": "www.example.gov.cn",
        "kind": "message",
        "author": "张先生",
        "published_at": datetime(2026, 11, 27, 2, 5, tzinfo=UTC),
        "fetched_at": NOW,
    }
    data.update(kw)
    return Post(**data)


def build(post: Post, rule: AlertRule = RULE) -> EmailMessage:
    text = post.content or post.title
    signal = PostSignal(rule=rule.name, post=post_link(post.doc_id, post),
                        excerpt=keyword_excerpt(text, rule.keywords).text, keywords=rule.keywords, kind=post.kind,
                        author=post.author, topic=post.analysis.topic if post.analysis else None)
    env = Envelope(sender="yuqing@culture.example.gov.cn", recipients=rule.recipients, entry_id="e" * 40, date=NOW,
                   dashboard_url="http://dash.example:8501", tz=ZoneInfo("Asia/Shanghai"))
    msg = compose(signal.payload(NOW, ZoneInfo("Asia/Shanghai")), env, rule=rule.name, reason="新信息符合规则")
    # round-trip through bytes, as a mail client would see it
    parsed = message_from_bytes(msg.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def bodies(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_message_headers_and_fields() -> None:
    post = make_post(analysis=Analysis(sentiment="negative", relevant=True, relevance_prob=0.9,
                                       topic="公共图书馆", model_version="t"))
    msg = build(post)
    assert msg["Subject"] == "【舆情预警】图书馆舆情：市图书馆周末闭馆引发市民不满"
    assert msg["To"] == "leader@x.cn, press@x.cn"
    assert msg["From"] == "yuqing@culture.example.gov.cn"
    plain, html = bodies(msg)
    for text in (plain, html):
        assert "市图书馆周末闭馆引发市民不满" in text
        assert "https://www.example.gov.cn/liuyan/123.html" in text
        assert "市民留言板" in text and "张先生" in text
        assert "2026-11-27 10:05" in text  # 02:05 UTC in Asia/Shanghai
        assert "负面" in text and "公共图书馆" in text
        assert "http://dash.example:8501" in text
        assert "市图书馆周末突然闭馆" in text  # the excerpt around the keyword
    assert 'href="https://www.example.gov.cn/liuyan/123.html"' in html


def test_message_excerpt_is_around_the_keyword() -> None:
    text = make_post().content
    ex = keyword_excerpt(text, RULE.keywords).text
    assert "市图书馆周末突然闭馆" in ex
    assert ex.startswith("…") and ex.endswith("…")
    assert len(ex) < 200  # an excerpt, not the whole 400-character post


def test_message_without_optional_fields_and_hostile_title() -> None:
    post = make_post(title="<script>alert(1)</script>\n图书馆", author=None, published_at=None, site=None,
                     url="javascript:alert(1)")
    msg = build(post)
    assert "\n" not in msg["Subject"]
    assert msg["Subject"].endswith("<script>alert(1)</script> 图书馆")
    plain, html = bodies(msg)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html
    assert "作者" not in plain and "发布时间：未知" in plain
    assert "情感倾向" not in plain


def test_message_title_missing_uses_excerpt() -> None:
    msg = build(make_post(title="", content="图书馆开放时间调整"))
    assert msg["Subject"] == "【舆情预警】图书馆舆情：图书馆开放时间调整"


def test_excerpt() -> None:
    ex = excerpt("前文" * 100 + "Library" + "后文" * 100, ("library",), before=10, after=10)
    assert ex.match == "Library"
    assert ex.before == "…" + "前文" * 5 and ex.after == "后文" * 5 + "…"
    none = excerpt("没有关键词的正文", ("图书馆",), before=80, after=80)
    assert none.match == "" and none.text == "没有关键词的正文"


def test_a_post_without_a_title_is_named_by_its_text_in_mails() -> None:
    from alerts.producers import post_link

    text = "咨询电话打了二十次没人接，这就是我们的公共服务？#青川市图书馆#"
    weibo = Post(url="https://weibo.example.cn/1", title="", content=text, source="demo-weibo", fetched_at=NOW)
    link = post_link("p1", weibo)
    assert link.title == "咨询电话打了二十次没人接，这就是我们的公共服务？#青川市图书…"  # not the URL, not empty
