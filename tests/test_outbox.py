"""The outbox against the real Elasticsearch and a real SMTP server: decide → outbox → send → mark sent, retries
with backoff, STARTTLS and login, two senders, digests and quiet hours, and SIGKILLed senders."""

from __future__ import annotations

import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from alerts.compose import message_id_for
from alerts.content import PostLink
from alerts.event_rules import EventRulesFile, check_rules
from alerts.outbox import DeliverySettings, Outbox, Sender, backoff
from alerts.signals import (
    EventSignal,
    FoiaDueSignal,
    KeywordGroupSignal,
    Signal,
    SourceSilentSignal,
    SurgeSignal,
    TicketDueSignal,
)
from index import outbox as store
from index.client import make_client
from index.layout import setup
from index.outbox import OUTBOX, OutboxEntry
from tests.alert_fixtures import DASHBOARD, LEADER, PRESS, SENDER, TITLE, leader_rules, library_signal
from tests.smtp_server import (
    LOGIN,
    Collector,
    StallingCollector,
    StartSMTP,
    authenticator,
    free_port,
)
from yuqing.settings import PROJECT_ROOT, Settings, SMTPSettings

pytest_plugins = ("tests.smtp_fixtures",)

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 5, 6, 4, 0, tzinfo=UTC)  # 12:00 in Beijing


@dataclass
class Env:
    client: Elasticsearch
    alias: str
    settings: Settings

    def outbox(self) -> Outbox:
        return Outbox(self.client, self.alias, sender=SENDER, dashboard_url=DASHBOARD, tz=TZ)

    def sender(self, port: int, clock: Callable[[], datetime] = lambda: T0, *, client: Elasticsearch | None = None,
               smtp: dict[str, Any] | None = None, ssl_context: ssl.SSLContext | None = None,
               sender_id: str | None = None, **delivery: Any) -> Sender:
        s = SMTPSettings.model_validate({"host": "127.0.0.1", "port": port, "sender": SENDER, "timeout_s": 10,
                                         **(smtp or {})})
        return Sender(client or self.client, self.alias, s, DeliverySettings(**delivery), ssl_context=ssl_context,
                      clock=clock, sender_id=sender_id)

    def get(self, entry_id: str) -> OutboxEntry:
        entry = store.get(self.client, self.alias, entry_id)
        assert entry is not None
        return entry


@pytest.fixture()
def env(base_settings: Settings, es_client: Elasticsearch) -> Iterator[Env]:
    """A private outbox index (only that one: the tests need no other)."""
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    s = base_settings.model_copy(
        update={"elasticsearch": base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})})
    setup(es_client, s.elasticsearch, [OUTBOX])
    yield Env(es_client, OUTBOX.alias(prefix), s)
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None, f"no text/{kind} part"
    return str(part.get_content())


def decide(env: Env, *event_ids: str, now: datetime = T0, **rule: Any) -> list[str]:
    signals = [library_signal(now, eid) for eid in event_ids]
    evaluation, _ = env.outbox().decide(leader_rules(**rule), signals, now)
    return [d.id for d in evaluation.decisions]


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 30, 300).total_seconds() for n in (1, 2, 3, 4, 5, 9)] == [30, 60, 120, 240, 300, 300]


def test_decided_twice_created_once_sent_once_with_a_stable_message_id(env: Env, start_smtp: StartSMTP) -> None:
    server = start_smtp()
    (entry_id,) = decide(env, "E1")
    assert decide(env, "E1", now=T0 + timedelta(minutes=5)) == [entry_id]  # same decision again: same entry
    pending = env.get(entry_id)
    assert pending.status == "pending" and pending.attempts == 0 and pending.recipients == (LEADER, PRESS)
    assert store.counts_by_status(env.client, env.alias)["pending"] == 1  # one entry, not two

    report = env.sender(server.port).deliver_due()
    assert (report.sent, report.retried, report.failed) == (1, 0, 0)
    (got,) = server.collector.wait_for(1)
    assert got.rcpt_tos == [LEADER, PRESS] and got.mail_from == SENDER
    assert got.message["Message-ID"] == message_id_for(entry_id, SENDER) == pending.message_id
    assert got.message["Subject"] == f"【舆情预警·Ⅱ级橙色】{TITLE}"
    sent = env.get(entry_id)
    assert sent.status == "sent" and sent.attempts == 1 and sent.sent_at == T0

    again = env.sender(server.port).deliver_due(T0 + timedelta(hours=1))
    assert again.sent == 0 and len(server.collector.received) == 1


def test_smtp_down_backs_off_then_delivers_each_once(env: Env, start_smtp: StartSMTP) -> None:
    port = free_port()  # nothing listens yet
    ids = decide(env, "E1", "E2")
    sender = env.sender(port, backoff_base_s=60, backoff_max_s=600)
    first = sender.deliver_due(T0)
    assert (first.sent, first.retried) == (0, 2)
    for entry_id in ids:
        e = env.get(entry_id)
        assert e.status == "pending" and e.attempts == 1 and e.next_attempt_at == T0 + timedelta(seconds=60)
        assert e.last_error is not None and f"127.0.0.1:{port}" in e.last_error
    assert sender.deliver_due(T0 + timedelta(seconds=59)).retried == 0  # not due yet: no attempt
    second = sender.deliver_due(T0 + timedelta(seconds=60))  # still down: the wait doubles
    assert second.retried == 2 and env.get(ids[0]).next_attempt_at == T0 + timedelta(seconds=180)

    server = start_smtp(port=port)
    third = sender.deliver_due(T0 + timedelta(seconds=180))
    assert third.sent == 2
    received = server.collector.wait_for(2)
    assert sorted(r.message["Message-ID"] for r in received) == sorted(message_id_for(i, SENDER) for i in ids)
    assert sender.deliver_due(T0 + timedelta(hours=2)).sent == 0
    assert len(server.collector.received) == 2
    assert all(env.get(i).status == "sent" and env.get(i).attempts == 3 for i in ids)


def test_rejected_and_unreachable_give_up_after_max_attempts_and_stay_visible(
    env: Env, start_smtp: StartSMTP
) -> None:
    server = start_smtp()
    server.collector.refuse = {LEADER, PRESS}
    (entry_id,) = decide(env, "E1")
    sender = env.sender(server.port, max_attempts=2, backoff_base_s=10)
    assert sender.deliver_due(T0).retried == 1
    refused = env.get(entry_id)
    assert refused.status == "pending" and refused.last_error is not None and "550" in refused.last_error
    assert sender.deliver_due(T0 + timedelta(seconds=10)).failed == 1
    failed = env.get(entry_id)
    assert failed.status == "failed" and failed.attempts == 2 and failed.next_attempt_at is None
    assert [e.id for e in store.failed_entries(env.client, env.alias)] == [entry_id]
    assert store.counts_by_status(env.client, env.alias)["failed"] == 1
    server.collector.refuse = set()
    assert sender.deliver_due(T0 + timedelta(days=1)).sent == 0  # given up: not tried again
    assert server.collector.received == []


@dataclass
class ClosingCollector(Collector):
    """Answers ``421`` (the server is closing the session) at ``step``: MAIL, RCPT or DATA."""

    step: str = "MAIL"
    mail_commands: int = 0

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        self.mail_commands += 1
        if self.step == "MAIL":
            return "421 4.7.0 try later"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if self.step == "RCPT":
            return "421 4.7.0 try later"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.step == "DATA":
            return "421 4.7.0 try later"
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("step", ["MAIL", "RCPT", "DATA"])
def test_a_server_closing_the_session_leaves_every_due_mail_pending_with_its_answer(
    step: str, env: Env, start_smtp: StartSMTP
) -> None:
    """421 at MAIL, RCPT or DATA: the server is unavailable (smtplib closed the session), not refusing the
    message; the next entry is not sent on the dead session."""
    server = start_smtp(collector=ClosingCollector(step=step))
    ids = decide(env, "E1", "E2")
    report = env.sender(server.port, backoff_base_s=60).deliver_due(T0)
    assert (report.sent, report.retried, report.failed) == (0, 2, 0)
    assert isinstance(server.collector, ClosingCollector) and server.collector.mail_commands == 1  # no second try now
    for entry_id in ids:
        e = env.get(entry_id)
        assert e.status == "pending" and e.attempts == 1 and e.next_attempt_at == T0 + timedelta(seconds=60)
        assert e.last_error is not None and "421" in e.last_error and "try later" in e.last_error
        assert "connect() first" not in e.last_error and "closed the session" in e.last_error
    assert server.collector.received == []


def test_a_stale_version_cannot_claim_and_two_senders_send_each_entry_once(env: Env, start_smtp: StartSMTP) -> None:
    server = start_smtp()
    (first,) = decide(env, "E0")
    stale = env.get(first)  # sender A read it ...
    a = env.sender(server.port, sender_id="A")
    b = env.sender(server.port, sender_id="B")
    assert b.deliver_due().sent == 1  # ... B claimed and sent it meanwhile
    assert a._claim(stale, T0) is None  # A's compare-and-set fails: it does not send
    assert env.get(first).claimed_by == "B"

    ids = decide(env, *(f"E{i}" for i in range(1, 7)))
    clients = [make_client(env.settings.elasticsearch) for _ in range(2)]
    barrier = threading.Barrier(2)
    reports = []

    def run(sender: Sender) -> None:
        barrier.wait()
        reports.append(sender.deliver_due())

    try:
        threads = [threading.Thread(target=run, args=(env.sender(server.port, client=c, sender_id=f"S{n}"),))
                   for n, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        for c in clients:
            c.close()
    assert sum(r.sent for r in reports) == len(ids)
    received = server.collector.wait_for(len(ids) + 1)
    ids_received = [r.message["X-Yuqing-Entry"] for r in received]
    assert sorted(ids_received) == sorted([first, *ids])  # each exactly once


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_starttls_and_login(env: Env, start_smtp: StartSMTP, tls_files: Any) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server = start_smtp(authenticator=authenticator, auth_required=True, tls_context=server_ctx,
                        require_starttls=True, auth_require_tls=True)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    (entry_id,) = decide(env, "E1")
    user, password = (v.decode() for v in LOGIN)

    wrong = env.sender(server.port, smtp={"starttls": True, "username": user, "password": "wrong"},
                       ssl_context=client_ctx)
    assert wrong.deliver_due().retried == 1
    error = env.get(entry_id).last_error
    assert error is not None and "login" in error and f"127.0.0.1:{server.port}" in error
    plain = env.sender(server.port, smtp={"username": user, "password": password})  # no STARTTLS: refused
    assert plain.deliver_due(T0 + timedelta(hours=1)).retried == 1

    right = env.sender(server.port, smtp={"starttls": True, "username": user, "password": password},
                       ssl_context=client_ctx)
    assert right.deliver_due(T0 + timedelta(hours=2)).sent == 1
    (got,) = server.collector.wait_for(1)
    assert got.login == user and got.message["X-Yuqing-Entry"] == entry_id


def test_digest_and_quiet_hours_release_one_mail_per_window(env: Env, start_smtp: StartSMTP) -> None:
    server = start_smtp()
    outbox = env.outbox()
    rules = leader_rules(digest_minutes=30, quiet_hours={"start": "22:00", "end": "07:00"})
    at = [T0 + timedelta(minutes=m) for m in (1, 20)]  # 12:01 and 12:20 in Beijing: one window
    held = []
    for n, now in enumerate(at):
        _, report = outbox.decide(rules, [library_signal(now, f"E{n}")], now)
        held += report.created
    assert [env.get(i).status for i in held] == ["held", "held"]
    sender = env.sender(server.port)
    assert outbox.release_held(T0 + timedelta(minutes=29)) == 0  # the window is not over
    assert sender.deliver_due(T0 + timedelta(minutes=29)).sent == 0

    end = T0 + timedelta(minutes=30)
    assert outbox.release_held(end) == 1
    assert sender.deliver_due(end).sent == 1
    (digest,) = server.collector.wait_for(1)
    assert digest.message["Subject"] == "【预警汇总】重大舆情：2 条提醒（05-06 12:01–12:20）"
    plain = body(digest.message, "plain")
    assert plain.count(TITLE) == 2 and f"{DASHBOARD}/event?id=E0" in plain
    assert {env.get(i).status for i in held} == {"digested"}
    assert outbox.release_held(end + timedelta(minutes=1)) == 0  # nothing twice

    # 23:10 and 02:00 Beijing: one summary at 07:00; a level-I event goes out at once.
    night = [datetime(2026, 5, 6, 15, 10, tzinfo=UTC), datetime(2026, 5, 6, 18, 0, tzinfo=UTC)]
    for n, now in enumerate(night):
        outbox.decide(rules, [library_signal(now, f"N{n}")], now)
    _, report = outbox.decide(rules, [library_signal(night[1], "URGENT", level="I")], night[1])
    assert env.get(report.created[0]).status == "pending"
    assert sender.deliver_due(night[1]).sent == 1
    assert outbox.release_held(datetime(2026, 5, 6, 22, 59, tzinfo=UTC)) == 0
    assert outbox.release_held(datetime(2026, 5, 6, 23, 0, tzinfo=UTC)) == 1  # 07:00 Beijing
    assert sender.deliver_due(datetime(2026, 5, 6, 23, 0, tzinfo=UTC)).sent == 1
    received = server.collector.wait_for(3)
    assert "Ⅰ级红色" in received[1].message["Subject"]
    assert received[2].message["Subject"].startswith("【夜间汇总】重大舆情：2 条提醒")


# ---- crashes ----------------------------------------------------------------------------------------------
def _spawn(settings: Settings, port: int, *args: str, lease_s: float = 60) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
           "YUQING_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
           "YUQING_PATHS__DATA_DIR": str(settings.paths.data_dir),
           "YUQING_SMTP__HOST": "127.0.0.1", "YUQING_SMTP__PORT": str(port), "YUQING_SMTP__SENDER": SENDER}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.outbox_child", "--lease-s", str(lease_s), "--backoff-s", "0.3", *args],
        cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def _decided_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the child has decided (or died)
    assert line.startswith("DECIDED "), f"child said {line!r}, exit {proc.poll()}"
    return line.split()[1]


def _poll(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture()
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def test_sigkill_between_deciding_and_sending_then_restart_sends_exactly_one(
    env: Env, start_smtp: StartSMTP, children: list[subprocess.Popen[str]]
) -> None:
    port = free_port()  # SMTP down
    first = _spawn(env.settings, port, "--decide")
    children.append(first)
    entry_id = _decided_id(first)
    _poll("a failed attempt", lambda: env.get(entry_id).attempts >= 1 and env.get(entry_id).status == "pending")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)

    server = start_smtp(port=port)  # SMTP up, the service restarts and decides the same event again
    second = _spawn(env.settings, port, "--decide")
    children.append(second)
    assert _decided_id(second) == entry_id
    _poll("the entry to be sent", lambda: env.get(entry_id).status == "sent")
    second.terminate()
    assert second.wait(timeout=30) == 0
    (got,) = server.collector.wait_for(1)
    assert got.message["Message-ID"] == message_id_for(entry_id, SENDER)
    assert len(server.collector.received) == 1


def test_sigkill_while_sending_is_taken_over_after_the_lease(
    env: Env, start_smtp: StartSMTP, children: list[subprocess.Popen[str]]
) -> None:
    stalling = start_smtp(collector=StallingCollector())
    first = _spawn(env.settings, stalling.port, "--decide")
    children.append(first)
    entry_id = _decided_id(first)
    assert isinstance(stalling.collector, StallingCollector)
    _poll("the message to reach DATA", stalling.collector.in_data.is_set)
    assert env.get(entry_id).status == "sending"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    stalling.collector.release.set()  # the server never accepted it

    server = start_smtp()
    second = _spawn(env.settings, server.port, lease_s=1.0)
    children.append(second)
    _poll("the entry to be taken over and sent", lambda: env.get(entry_id).status == "sent")
    second.terminate()
    assert second.wait(timeout=30) == 0
    (got,) = server.collector.wait_for(1)
    assert got.message["Message-ID"] == message_id_for(entry_id, SENDER)
    assert len(server.collector.received) == 1 and stalling.collector.received == []
    assert env.get(entry_id).attempts == 2



def test_every_rule_kind_reaches_its_recipients_by_mail(env: Env, start_smtp: StartSMTP) -> None:
    people = [{"name": "局领导", "email": LEADER, "unit": "局领导"},
              {"name": "图书馆", "email": "lib@x.gov.cn", "unit": "市图书馆"},
              {"name": "宣传科", "email": PRESS, "unit": "宣传科", "topics": ["公益性文化服务活动"]},
              {"name": "办公室", "email": "office@x.gov.cn", "unit": "办公室"},
              {"name": "公开办", "email": "foia@x.gov.cn", "unit": "政务公开办"},
              {"name": "信息中心", "email": "it@x.gov.cn", "unit": "信息中心"}]
    specs = [("new_event", {"names": ["局领导"]}), ("level_raised", {"signal_unit": True}),
             ("negative_surge", {"signal_topic": True}), ("keyword_group", {"emails": ["duty@x.gov.cn"]}),
             ("ticket_due", {"units": ["办公室"]}), ("foia_due", {"units": ["政务公开办"]}),
             ("source_silent", {"names": ["信息中心"]})]
    rules = check_rules(EventRulesFile.model_validate({
        "people": people,
        "event_rules": [{"name": kind, "kind": kind, "recipients": r, **({"within_hours": 5} if kind == "ticket_due"
                                                                          else {})} for kind, r in specs],
    }), "test")
    post = PostLink(title="图书馆闭馆专题帖", url="https://example.com/g/1", source="微博", post_id="g1")
    signals: list[Signal] = [
        EventSignal(library_signal(T0).event, previous_level="III"),
        SurgeSignal(topic="公益性文化服务活动", window_end=T0, window_minutes=60, negative=9, total=12,
                    prev_negative=2, prev_total=10, posts=(post,)),
        KeywordGroupSignal(group="图书馆服务", post=post),
        TicketDueSignal(ticket_id="CZ-1", title="图书馆闭馆回应", unit="市图书馆", deadline_kind="权威信息发布",
                        deadline_basis="国办发〔2016〕80号", due_at=T0 + timedelta(hours=2), level="II"),
        FoiaDueSignal(request_id="YSQ-7", summary="申请公开图书馆闭馆决定", received_on=date(2026, 4, 8),
                      due=date(2026, 5, 8), remaining_working_days=2),
        SourceSilentSignal(source="市民留言板", kind="message", status="silent", last_success=T0 - timedelta(hours=9),
                           consecutive_empty=5),
    ]
    server = start_smtp()
    evaluation, report = env.outbox().decide(rules, signals, T0)
    assert len(report.created) == 7 and not evaluation.skipped
    assert env.sender(server.port).deliver_due().sent == 7
    got = {r.message["X-Yuqing-Rule"]: r for r in server.collector.wait_for(7)}
    expected = {
        "new_event": ([LEADER], f"【舆情预警·Ⅱ级橙色】{TITLE}"),
        "level_raised": (["lib@x.gov.cn"], f"【舆情预警·Ⅱ级橙色】{TITLE}"),
        "negative_surge": ([PRESS], "【负面激增】“公益性文化服务活动”负面信息激增"),
        "keyword_group": (["duty@x.gov.cn"], "【专题·图书馆服务】图书馆闭馆专题帖"),
        "ticket_due": (["office@x.gov.cn"], "【处置时限·Ⅱ级橙色】权威信息发布即将到期：图书馆闭馆回应"),
        "foia_due": (["foia@x.gov.cn"], "【依申请公开】答复期限剩余 2 个工作日：申请公开图书馆闭馆决定"),
        "source_silent": (["it@x.gov.cn"], "【信源异常】信源“市民留言板”静默"),
    }
    assert {k: (r.rcpt_tos, r.message["Subject"]) for k, r in got.items()} == expected
    assert "风险等级由Ⅲ级黄色升至Ⅱ级橙色" in body(got["level_raised"].message, "plain")


def test_the_sender_loop_logs_elasticsearch_down_once_and_its_recovery(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    from alerts.outbox import serve
    from index.client import make_client
    from tests.faultproxy import FaultProxy

    port = int(env.settings.elasticsearch.hosts[0].rsplit(":", 1)[1].strip("/"))
    proxy = FaultProxy(port)
    client = make_client(env.settings.elasticsearch.model_copy(update={"hosts": [proxy.url]}))
    outbox = Outbox(client, env.alias, sender=SENDER, dashboard_url=DASHBOARD, tz=TZ)
    sender = env.sender(free_port(), client=client, poll_interval_s=0.05)  # nothing is due: no mail server needed
    stop = threading.Event()
    caplog.set_level(logging.DEBUG, logger="alerts.outbox")

    def said(text: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.name == "alerts.outbox" and text in r.getMessage()]

    proxy.down()
    loop = threading.Thread(target=serve, args=(outbox, sender, stop))
    loop.start()
    try:
        _poll("three failed passes", lambda: len(said("outbox: sender pass failed again")) >= 2)
        proxy.up()
        _poll("the sender to recover", lambda: bool(said("recovered")))
    finally:
        stop.set()
        loop.join(timeout=30)
        client.close()
        proxy.close()
    failed = said("outbox: sender pass failed")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == failed[:1] and errors[0].exc_info is None and "no node answered" in errors[0].getMessage()
    assert all(r.levelno == logging.DEBUG for r in failed[1:])  # the repeats: in the log file only
    assert [r.levelno for r in said("recovered")] == [logging.INFO]
