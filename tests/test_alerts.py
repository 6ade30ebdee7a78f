"""Alert runs against the real Elasticsearch and a real SMTP server (aiosmtpd) on a free local port."""

from __future__ import annotations

import argparse
import ssl
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from alerts import cli
from alerts.service import AlertRunError, run_alerts
from index.alert_state import AlertStateStore
from index.client import es_client as client_for
from index.layout import ALERT_STATE, POSTS
from tests.conftest import seed_posts
from tests.smtp_server import SMTPServer, StartSMTP, authenticator, free_port
from yuqing.errors import ConfigError
from yuqing.models import Analysis, Post, Sentiment
from yuqing.settings import Settings, SMTPSettings

LEADER = "leader@culture.example.gov.cn"
PRESS = "press@culture.example.gov.cn"
pytest_plugins = ("tests.smtp_fixtures",)  # smtp, start_smtp, tls_files
RULES = f"""
recipients:
  leaders: [{LEADER}]
  press_office: [{PRESS}]
rules:
  - name: 图书馆舆情
    any: [图书馆]
    exclude: [招聘]
    recipients: [leaders, press_office]
"""


# ---- helpers ---------------------------------------------------------------------------------------------
def configure(
    settings: Settings,
    tmp_path: Path,
    port: int,
    rules: str = RULES,
    *,
    smtp: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
) -> Settings:
    """Settings that send to the local SMTP server on ``port`` with ``rules`` as the rules file."""
    path = tmp_path / "alerts.yaml"
    path.write_text(rules, encoding="utf-8")
    return settings.model_copy(
        update={
            # validated, so a password becomes a SecretStr as when read from the config file
            "smtp": SMTPSettings.model_validate(
                {**settings.smtp.model_dump(), "host": "127.0.0.1", "port": port, **(smtp or {})}
            ),
            "alerts": settings.alerts.model_copy(
                update={"rules_file": path, "dashboard_url": "http://dashboard.test:8501", **(alerts or {})}
            ),
        }
    )


def post(n: int, title: str, content: str = "", *, age: timedelta = timedelta(hours=1), **kw: Any) -> Post:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "url": f"https://www.example.gov.cn/liuyan/{n}.html",
        "title": title,
        "content": content or title,
        "source": "市民留言板",
        "site": "www.example.gov.cn",
        "kind": "message",
        "author": "张先生",
        "published_at": now - age - timedelta(hours=2),
        "fetched_at": now - age,
    }
    data.update(kw)
    return Post(**data)


def add_posts(client: Elasticsearch, settings: Settings, *posts: Post) -> None:
    seed_posts(client, settings, list(posts))


def store(client: Elasticsearch, settings: Settings) -> AlertStateStore:
    return AlertStateStore(client, ALERT_STATE.alias(settings.elasticsearch.index_prefix))


def text_of(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


# ---- tests -----------------------------------------------------------------------------------------------
def test_matching_post_alerts_once_also_after_restart(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, tmp_path, smtp.port)
    analysis = Analysis(sentiment="negative", relevant=True, relevance_prob=0.9, model_version="t")
    body = "有市民反映市图书馆周末突然闭馆，无法借书。"
    match = post(1, "市图书馆周末闭馆引发市民不满", body, analysis=analysis)
    add_posts(
        es_client, s,
        match,
        post(2, "博物馆新展开幕", "市博物馆今日开放新展。"),
        post(3, "市图书馆招聘公告", "市图书馆招聘馆员两名。"),  # excluded keyword
        post(4, "新书上架", "图书上新，馆内座位充足。"),  # 图书 and 馆 apart: not the keyword
        post(5, "图书馆老帖", "三天前的图书馆帖子", age=timedelta(days=3)),  # outside the look-back window
    )

    report = run_alerts(s, es_client)
    assert (report.rules, report.matched, report.sent, report.failed, report.skipped) == (1, 1, 1, 0, 0)
    (got,) = smtp.collector.wait_for(1)
    assert got.rcpt_tos == [LEADER, PRESS]
    assert got.mail_from == s.smtp.sender
    assert got.message["Subject"] == "【舆情预警】图书馆舆情：市图书馆周末闭馆引发市民不满"
    assert got.message["To"] == f"{LEADER}, {PRESS}"
    plain, html = text_of(got.message)
    for body in (plain, html):
        assert "市图书馆周末闭馆引发市民不满" in body
        assert match.url in body
        assert "市民留言板" in body and "张先生" in body and "负面" in body
        assert "http://dashboard.test:8501" in body
        assert "突然闭馆" in body  # the excerpt
    state = store(es_client, s).get_one("图书馆舆情", match.doc_id)
    assert state is not None and state.status == "sent" and state.attempts == 1
    assert state.recipients == (LEADER, PRESS)

    # the same process again: nothing new
    again = run_alerts(s, es_client)
    assert (again.sent, again.skipped) == (0, 1)
    # "after a restart": a new client and fresh settings/rules objects
    with client_for(s.elasticsearch) as fresh_client:
        restarted = run_alerts(s.model_copy(deep=True), fresh_client)
    assert (restarted.sent, restarted.skipped) == (0, 1)
    assert len(smtp.collector.received) == 1

    # a new matching post is alerted; the old one still not again
    newer = post(6, "区图书馆空调故障", "区图书馆阅览室空调坏了一周。")
    add_posts(es_client, s, newer)
    third = run_alerts(s, es_client)
    assert (third.sent, third.skipped) == (1, 1)
    received = smtp.collector.wait_for(2)
    assert received[1].message["X-Yuqing-Post"] == newer.doc_id


def test_all_sources_kinds_and_two_rules(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
recipients:
  leaders: [{LEADER}]
rules:
  - name: 图书馆投诉
    any: [图书馆, 文化馆]
    all: [投诉]
    sources: [市民留言板]
    kinds: [message]
    recipients: [leaders]
  - name: 全部文化馆
    any: [文化馆]
    recipients: [{PRESS}]
"""
    s = configure(settings, tmp_path, smtp.port, rules)
    both = post(1, "投诉文化馆活动取消", "文化馆活动临时取消，我要投诉。")
    add_posts(
        es_client, s,
        both,
        post(2, "图书馆很好", "图书馆服务很好。"),  # no 投诉
        post(3, "投诉图书馆", "投诉图书馆噪音。", source="微博"),  # other source
        post(4, "投诉图书馆噪音", "投诉图书馆噪音。", kind="article"),  # other kind
        post(5, "文化馆转载", "文化馆活动取消（转载）", duplicate_of="x"),  # a duplicate
    )
    report = run_alerts(s, es_client)
    assert (report.sent, report.matched) == (2, 2)
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["图书馆投诉"].rcpt_tos == [LEADER]
    assert got["全部文化馆"].rcpt_tos == [PRESS]
    assert {r.message["X-Yuqing-Post"] for r in got.values()} == {both.doc_id}


def test_classifier_conditions_negative_relevant_posts_reach_the_leaders(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
recipients:
  leaders: [{LEADER}]
rules:
  - name: 负面舆情
    sentiments: [negative]
    relevant_only: true
    recipients: [leaders]
  - name: 执法类负面
    sentiments: [negative]
    topics: [文化市场执法]
    recipients: [{PRESS}]
"""
    s = configure(settings, tmp_path, smtp.port, rules)

    def analysis(sentiment: Sentiment, relevant: bool, topic: str | None) -> Analysis:
        return Analysis(sentiment=sentiment, sentiment_probs={sentiment: 0.9}, relevant=relevant,
                        relevance_prob=0.9 if relevant else 0.1, topic=topic, model_version="test")

    complaint = post(1, "网吧违规接纳未成年人无人管", analysis=analysis("negative", True, "文化市场执法"))
    add_posts(
        es_client, s,
        complaint,
        post(2, "博物馆新展很好看", analysis=analysis("positive", True, "公益性文化服务活动")),
        post(3, "外卖太慢了", analysis=analysis("negative", False, None)),  # negative but not about the bureau
        post(4, "未分析的帖子"),  # no classifier output: never matches a classifier condition
    )
    report = run_alerts(s, es_client)
    assert (report.sent, report.matched) == (2, 2)
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["负面舆情"].rcpt_tos == [LEADER] and got["执法类负面"].rcpt_tos == [PRESS]
    assert {r.message["X-Yuqing-Post"] for r in got.values()} == {complaint.doc_id}


def test_smtp_down_then_delivered_on_next_run(
    settings: Settings, es_client: Elasticsearch, start_smtp: StartSMTP, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet
    s = configure(settings, tmp_path, port)
    p = post(1, "图书馆闭馆", "图书馆闭馆通知")
    add_posts(es_client, s, p)

    with pytest.raises(AlertRunError) as info:
        run_alerts(s, es_client)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "1 alerts left for the next run" in str(info.value)
    assert info.value.report.sent == 0
    assert store(es_client, s).get_one("图书馆舆情", p.doc_id) is None  # nothing marked

    server = start_smtp(port=port)
    report = run_alerts(s, es_client)
    assert report.sent == 1
    (got,) = server.collector.wait_for(1)
    assert got.message["X-Yuqing-Post"] == p.doc_id
    state = store(es_client, s).get_one("图书馆舆情", p.doc_id)
    assert state is not None and state.sent


def test_rejected_message_recorded_retried_and_given_up(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
rules:
  - name: 重试
    any: [图书馆]
    recipients: [{LEADER}]
  - name: 放弃
    any: [博物馆]
    recipients: [{PRESS}]
  - name: 部分
    any: [文化馆]
    recipients: [{PRESS}, {LEADER}]
"""
    s = configure(settings, tmp_path, smtp.port, rules, alerts={"max_attempts": 2})
    lib, museum, hall = post(1, "图书馆", "图书馆"), post(2, "博物馆", "博物馆"), post(3, "文化馆", "文化馆")
    add_posts(es_client, s, lib, museum, hall)
    st = store(es_client, s)

    smtp.collector.refuse = {LEADER, PRESS}
    first = run_alerts(s, es_client)
    assert (first.sent, first.failed) == (0, 3)
    failed = st.get_one("重试", lib.doc_id)
    assert failed is not None and failed.status == "failed" and failed.attempts == 1
    assert failed.error is not None and "550" in failed.error and f"127.0.0.1:{smtp.port}" in failed.error

    smtp.collector.refuse = {PRESS}
    second = run_alerts(s, es_client)  # 重试 and 部分 go out; 放弃 fails a second time
    assert (second.sent, second.failed) == (2, 1)
    sent = st.get_one("重试", lib.doc_id)
    assert sent is not None and sent.sent and sent.attempts == 2
    partial = st.get_one("部分", hall.doc_id)
    assert partial is not None and partial.sent and partial.error is not None and PRESS in partial.error
    gave_up = st.get_one("放弃", museum.doc_id)
    assert gave_up is not None and gave_up.status == "failed" and gave_up.attempts == 2

    smtp.collector.refuse = set()
    third = run_alerts(s, es_client)  # max_attempts reached: not tried again
    assert (third.sent, third.failed, third.skipped) == (0, 0, 3)
    assert [r.rcpt_tos for r in smtp.collector.received] == [[LEADER], [LEADER]]


def test_max_per_run_defers_the_rest_oldest_first(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, tmp_path, smtp.port, alerts={"max_per_run": 2})
    posts = [post(i, f"图书馆第{i}帖", age=timedelta(hours=10 - i)) for i in range(3)]
    add_posts(es_client, s, *posts)
    first = run_alerts(s, es_client)
    assert (first.sent, first.deferred) == (2, 1)
    assert [r.message["X-Yuqing-Post"] for r in smtp.collector.wait_for(2)] == [p.doc_id for p in posts[:2]]
    second = run_alerts(s, es_client)
    assert (second.sent, second.skipped, second.deferred) == (1, 2, 0)
    assert smtp.collector.wait_for(3)[2].message["X-Yuqing-Post"] == posts[2].doc_id


def test_no_smtp_host_refuses_to_run(settings: Settings, es_client: Elasticsearch, tmp_path: Path) -> None:
    s = configure(settings, tmp_path, 25)
    s = s.model_copy(update={"smtp": s.smtp.model_copy(update={"host": None})})
    with pytest.raises(ConfigError) as info:
        run_alerts(s, es_client)
    assert info.value.field == "smtp.host"


def test_elasticsearch_down_is_reported_with_context(
    settings: Settings, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, tmp_path, smtp.port)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    es = s.elasticsearch.model_copy(update={"hosts": [nowhere], "request_timeout_s": 2})
    with client_for(es) as client, pytest.raises(AlertRunError) as info:
        run_alerts(s, client)
    assert "图书馆舆情" in str(info.value) and POSTS.alias(s.elasticsearch.index_prefix) in str(info.value)
    assert smtp.collector.received == []


def test_bad_rules_file_is_config_error_naming_file_and_field(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    bad = "rules:\n  - name: 甲\n    any: [图书馆]\n    recipients: [leaders]\n"
    s = configure(settings, tmp_path, smtp.port, bad)
    add_posts(es_client, s, post(1, "图书馆"))
    with pytest.raises(ConfigError) as info:
        run_alerts(s, es_client)
    assert str(tmp_path / "alerts.yaml") in str(info.value)
    assert "rules[0].recipients[0]" in str(info.value)
    assert smtp.collector.received == []


def test_cli_alert_prints_report(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = configure(settings, tmp_path, smtp.port)
    add_posts(es_client, s, post(1, "图书馆闭馆"))
    parser = argparse.ArgumentParser()
    cli.add_subcommand(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["alert", "--check"])
    assert args.func(args, s) == 0
    assert "图书馆舆情" in capsys.readouterr().out
    assert smtp.collector.received == []

    args = parser.parse_args(["alert"])
    assert args.func(args, s) == 0
    assert "1 sent" in capsys.readouterr().out
    smtp.collector.wait_for(1)

    no_host = s.model_copy(update={"smtp": s.smtp.model_copy(update={"host": None})})
    with pytest.raises(ConfigError, match=r"smtp\.host"):
        args.func(args, no_host)
    args = parser.parse_args(["alert", "--check"])
    assert args.func(args, no_host) == 0  # checking the rules needs no mail server


# ---- TLS -------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_and_login(
    mode: str, settings: Settings, es_client: Elasticsearch, start_smtp: StartSMTP, tmp_path: Path,
    tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; with implicit TLS the whole session is TLS.
    tls_kwargs: dict[str, Any] = (
        {"tls_context": server_ctx, "require_starttls": True, "auth_require_tls": True}
        if mode == "starttls"
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    server = start_smtp(authenticator=authenticator, auth_required=True, **tls_kwargs)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the self-signed certificate
    p = post(1, "图书馆闭馆")
    login = {"username": "yuqing", "password": "s3cret", mode: True}

    wrong = configure(settings, tmp_path, server.port, smtp={**login, "password": "wrong"})
    add_posts(es_client, wrong, p)
    with pytest.raises(AlertRunError) as info:
        run_alerts(wrong, es_client)
    assert f"127.0.0.1:{server.port}" in str(info.value) and "login" in str(info.value)
    assert store(es_client, wrong).get_one("图书馆舆情", p.doc_id) is None

    s = configure(settings, tmp_path, server.port, smtp=login)
    assert run_alerts(s, es_client).sent == 1
    (got,) = server.collector.wait_for(1)
    assert got.login == "yuqing"
    assert got.message["X-Yuqing-Post"] == p.doc_id
