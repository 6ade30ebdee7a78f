"""Alert mails through a real SMTP server, parsed as received: subject, alternatives, the inline chart by cid,
escaping; the CJK font check."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.chart import FontMissingError, cjk_font, hourly_bars
from alerts.compose import DigestItem, Envelope, compose, compose_digest, message_id_for
from alerts.content import EventAlert, PostLink, TimelinePoint
from alerts.mailer import Mailer
from alerts.signals import TicketDueSignal
from tests.alert_fixtures import DASHBOARD, LEADER, SENDER, TITLE, library_event
from tests.smtp_server import SMTPServer
from yuqing.settings import SMTPSettings

pytest_plugins = ("tests.smtp_fixtures",)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 5, 6, 4, 0, tzinfo=UTC)


def envelope(entry_id: str = "e1") -> Envelope:
    return Envelope(sender=SENDER, recipients=(LEADER,), entry_id=entry_id, date=NOW, dashboard_url=DASHBOARD, tz=TZ)


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None, f"no text/{kind} part"
    return str(part.get_content())


def through_smtp(server: SMTPServer, msg: EmailMessage) -> tuple[EmailMessage, bytes]:
    with Mailer(SMTPSettings(host="127.0.0.1", port=server.port)) as mailer:
        mailer.send(msg)
    (got,) = server.collector.wait_for(1)
    return got.message, got.message.as_bytes()


def test_event_alert_mime_structure_inline_chart_and_chinese_subject(smtp: SMTPServer) -> None:
    alert = library_event(NOW)
    got, raw = through_smtp(smtp, compose(alert, envelope(), rule="重大舆情", reason="风险等级为Ⅱ级橙色"))

    assert got["Subject"] == f"【舆情预警·Ⅱ级橙色】{TITLE}"
    subject_line = next(line for line in raw.split(b"\n") if line.startswith(b"Subject:"))
    assert subject_line.isascii() and b"=?utf-8?" in subject_line  # RFC 2047 encoded on the wire
    assert got["Message-ID"] == message_id_for("e1", SENDER) and got["X-Yuqing-Rule"] == "重大舆情"

    assert got.get_content_type() == "multipart/alternative"
    plain_part, related = got.iter_parts()
    assert plain_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.iter_parts()
    assert html_part.get_content_type() == "text/html" and image.get_content_type() == "image/png"
    cid = image["Content-ID"].strip("<>")
    html = html_part.get_content()
    assert f'src="cid:{cid}"' in html
    assert image.get_content_disposition() == "inline"

    from PIL import Image

    png = image.get_content()
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size[0] >= 500 and img.size[1] >= 200

    plain = plain_part.get_content()
    for body in (plain, html):
        assert TITLE in body and "78 / 100" in body and "6小时后 84" in body
        assert "负面情绪集中且热度高" in body and "媒体开始报道" in body
        assert "市图书馆" in body and "重大舆情" in body
        assert f"{DASHBOARD}/event?id=E-lib-1" in body
        for post in alert.top_posts:
            assert post.url in body and post.title in body
    assert f'<a href="{alert.top_posts[0].url}">' in html


def test_user_text_is_escaped_and_only_web_links_are_clickable(smtp: SMTPServer) -> None:
    evil = "<script>alert('x')</script>图书馆 & \"闭馆\""
    alert = library_event(NOW).model_copy(update={
        "title": evil, "summary": "<b>摘要</b>", "reasons": ("<img src=x onerror=alert(1)>",),
        "top_posts": (PostLink(title="<i>帖子</i>", url="javascript:alert(1)", source="<论坛>"),),
    })
    got, _ = through_smtp(smtp, compose(alert, envelope()))
    html = body(got, "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>摘要" not in html and "<img src=x" not in html and "<i>帖子" not in html
    assert 'href="javascript:' not in html and "&lt;论坛&gt;" in html
    assert got["Subject"].endswith("图书馆 & \"闭馆\"")


def test_notice_and_digest_mails(smtp: SMTPServer) -> None:
    signal = TicketDueSignal(ticket_id="CZ-9", title="图书馆闭馆回应", unit="市图书馆", deadline_kind="权威信息发布",
                             deadline_basis="国办发〔2016〕80号", due_at=NOW + timedelta(hours=2), level="II")
    notice = compose(signal.payload(NOW, TZ), envelope("n1"), rule="处置时限临近", reason="不足 5 小时")
    assert notice["Subject"] == "【处置时限·Ⅱ级橙色】权威信息发布即将到期：图书馆闭馆回应"
    assert [p.get_content_type() for p in notice.iter_parts()] == ["text/plain", "text/html"]
    text = body(notice, "plain")
    assert "剩余 2 小时" in text and f"{DASHBOARD}/tickets?id=CZ-9" in text
    assert "2026-05-06 14:00" in text  # the deadline (06:00 UTC) as the office reads it

    items = [DigestItem(library_event(NOW, "E1"), "风险等级由Ⅲ级黄色升至Ⅱ级橙色", NOW),
             DigestItem(signal.payload(NOW, TZ), "时限不足 5 小时", NOW + timedelta(minutes=7))]
    got, _ = through_smtp(smtp, compose_digest(items, envelope("d1"), rule="等级上升", quiet=False))
    assert got["Subject"] == "【预警汇总】等级上升：2 条提醒（05-06 12:00–12:07）"
    night = [DigestItem(library_event(NOW, "E2"), "夜间新事件", NOW - timedelta(hours=13)),  # 23:00 the day before
             DigestItem(library_event(NOW, "E3"), "夜间新事件", NOW - timedelta(hours=5))]  # 07:00
    quiet = compose_digest(night, envelope("d2"), rule="重大舆情", quiet=True)
    assert quiet["Subject"] == "【夜间汇总】重大舆情：2 条提醒（05-05 23:00–05-06 07:00）"  # past midnight: both days
    html = body(got, "html")
    assert html.count("<li>") == 2 and f"{DASHBOARD}/event?id=E1" in html and "CZ-9" in html


def test_hourly_bars_fill_empty_hours_in_local_time() -> None:
    start = datetime(2026, 5, 5, 15, 0, tzinfo=UTC)  # 23:00 Beijing
    points = [TimelinePoint(at=start, posts=2, negative=1), TimelinePoint(at=start + timedelta(hours=3), posts=5)]
    bars = hourly_bars(points, TZ)
    assert [(b.label, b.total, b.negative) for b in bars] == [
        ("05-05 23时", 2, 1), ("05-06 00时", 0, 0), ("01时", 0, 0), ("02时", 5, 0)]


def test_no_cjk_font_is_a_clear_error_not_tofu(tmp_path: Path) -> None:
    with pytest.raises(FontMissingError, match="fonts-noto-cjk"):
        cjk_font(tmp_path / "missing.ttc")
    import matplotlib

    latin = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    with pytest.raises(FontMissingError, match="cannot draw"):
        cjk_font(latin)
    assert "CJK" in cjk_font().name  # the installed one (fonts-noto-cjk from the bootstrap)


def test_an_event_without_timeline_has_no_image() -> None:
    alert: EventAlert = library_event(NOW).model_copy(update={"timeline": ()})
    msg = compose(alert, envelope())
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert "cid:" not in body(msg, "html")
