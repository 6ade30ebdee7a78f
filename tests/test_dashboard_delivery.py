"""预警投递 page: failed and retried alert mails are shown with their last error (AppTest, real Elasticsearch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from dashboard import data
from dashboard.auth import Viewer
from dashboard.components import SESSION_KEY
from index import outbox as store
from index.layout import setup
from index.outbox import OUTBOX, OutboxEntry, OutboxStatus
from tests.dashboard_users import session_for, write_users
from yuqing.settings import PROJECT_ROOT, Settings

APP = PROJECT_ROOT / "dashboard" / "app.py"
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def entry(n: int, status: OutboxStatus, **kw: Any) -> OutboxEntry:
    return OutboxEntry(id=f"e{n}", rule="重大舆情", subject_key=f"event:E{n}", occurrence="reached:II",
                       cooldown_key=f"重大舆情\x00event:E{n}", title=f"事件{n}", status=status,
                       recipients=("leader@culture.example.gov.cn",), decided_at=T0 + timedelta(minutes=n),
                       deliver_at=T0, subject=f"【舆情预警·Ⅱ级橙色】事件{n}", updated_at=T0 + timedelta(minutes=n),
                       **kw)


@pytest.fixture()
def outbox(settings: Settings, es_client: Elasticsearch, monkeypatch: pytest.MonkeyPatch, config_dir: Path) -> str:
    """The outbox alias of this test, with the app's settings pointed at it (and the test accounts)."""
    setup(es_client, settings.elasticsearch, [OUTBOX])
    monkeypatch.delenv("YUQING_CONFIG", raising=False)
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(settings.paths.data_dir))
    write_users(config_dir)
    return OUTBOX.alias(settings.elasticsearch.index_prefix)


def delivery_page(username: str) -> AppTest:
    """预警投递 for a browser session signed in as ``username``."""
    at = AppTest.from_file(str(APP))
    at.session_state[SESSION_KEY] = session_for(username)
    at.run(timeout=60)
    at.switch_page("views/delivery.py")
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_delivery_page_lists_failed_and_retried_mails(es_client: Elasticsearch, outbox: str) -> None:
    refused = "SMTP server 127.0.0.1:25 refused message '事件1': SMTPDataError: (550, b'mailbox unavailable')"
    for e in (entry(1, "failed", attempts=8, last_error=refused),
              entry(2, "pending", attempts=2, next_attempt_at=T0 + timedelta(minutes=5),
                    last_error="SMTP server 127.0.0.1:25 failed at connect: Connection refused"),
              entry(3, "sent", attempts=1, sent_at=T0),
              entry(4, "sent", attempts=1, sent_at=T0, refused=("old-address@culture.example.gov.cn",),
                    last_error="recipients refused: old-address@culture.example.gov.cn")):
        store.create(es_client, outbox, e)
    es_client.indices.refresh(index=outbox)

    at = delivery_page("leader")
    assert at.title[0].value == "预警投递"
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["发送失败"], metrics["待发送"], metrics["已发送"]) == ("1", "1", "2")
    assert at.error[0].value.startswith("有 1 封预警邮件发送失败")
    failed, retrying = at.dataframe[0].value, at.dataframe[1].value
    assert list(failed["邮件主题"]) == ["【舆情预警·Ⅱ级橙色】事件1"] and list(failed["技术信息"]) == [refused]
    assert list(failed["原因"]) == ["邮件服务器拒收了这封邮件"]
    assert list(retrying["尝试次数"]) == [2] and "Connection refused" in retrying["技术信息"][0]
    assert list(retrying["原因"]) == ["无法连接邮件服务器：请确认其地址、端口和网络"]
    assert list(retrying["下次重试"]) == ["2026-11-27 10:05"]
    # sent, but one recipient was refused: said, not covered by "all delivered"
    assert at.warning[1].value.startswith("有 1 封邮件已发出，但部分收件人被邮件服务器拒收") and not at.success
    partly = at.dataframe[2].value
    assert list(partly["被拒收的收件人"]) == ["old-address@culture.example.gov.cn"]


def test_press_officer_queues_failed_mails_again_and_a_leader_cannot(es_client: Elasticsearch,
                                                                      outbox: str) -> None:
    for e in (entry(1, "failed", attempts=8, last_error="SMTP server x failed at connect: refused"),
              entry(2, "sent", attempts=1, sent_at=T0)):
        store.create(es_client, outbox, e)
    es_client.indices.refresh(index=outbox)

    assert [b.key for b in delivery_page("leader").button if b.key == "requeue_failed"] == []  # leaders read
    leader = Viewer("leader", "李局长", "leader")  # and the function refuses them too, whoever calls it
    with pytest.raises(PermissionError):
        data.requeue_failed_mails(data.get_backend(), ["e1"], leader)
    assert store.get(es_client, outbox, "e1").status == "failed"  # type: ignore[union-attr]
    at = delivery_page("press")
    at.button(key="requeue_failed").click()
    at.run(timeout=60)
    assert at.success[0].value.startswith("已重新排队 1 封邮件")
    again = store.get(es_client, outbox, "e1")
    assert again is not None and (again.status, again.attempts) == ("pending", 0)  # the sender takes it from here
    assert store.get(es_client, outbox, "e2").status == "sent"  # type: ignore[union-attr]
