"""Chinese date/time notations normalised to aware Asia/Shanghai datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crawlers.dates import find_datetime, has_year, parse_datetime, year_from

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 15, 30, 0, tzinfo=SH)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=SH)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020年1月6日 12:09", at(2020, 1, 6, 12, 9)),
        ("2020年01月06日12:09", at(2020, 1, 6, 12, 9)),
        ("2020年1月6日", at(2020, 1, 6)),
        ("2020-01-06", at(2020, 1, 6)),
        ("2020/01/06 12:09:30", at(2020, 1, 6, 12, 9, 30)),
        ("2020.1.6 8:05", at(2020, 1, 6, 8, 5)),
        ("2019-09-07 13:43:45", at(2019, 9, 7, 13, 43, 45)),
        ("2019年09月07日 下午3:20", at(2019, 9, 7, 15, 20)),
        ("发布时间：2019-09-26 10:09:11", at(2019, 9, 26, 10, 9, 11)),
        # Month-day: current year ...
        ("01-06 12:09", at(2026, 1, 6, 12, 9)),
        ("11月27日 09:00", at(2026, 11, 27, 9, 0)),
        # ... unless that lies in the future: then the previous year.
        ("12-25 08:00", at(2025, 12, 25, 8, 0)),
        ("发布时间：10-0812:00", at(2026, 10, 8, 12, 0)),
        ("11-27 18:00", at(2025, 11, 27, 18, 0)),
        ("3小时前", NOW - timedelta(hours=3)),
        ("5分钟前", NOW - timedelta(minutes=5)),
        ("30秒前", NOW - timedelta(seconds=30)),
        ("2天前", NOW - timedelta(days=2)),
        ("1周前", NOW - timedelta(days=7)),
        ("昨天 10:20", at(2026, 11, 26, 10, 20)),
        ("前天 08:00", at(2026, 11, 25, 8, 0)),
        ("今天 09:15", at(2026, 11, 27, 9, 15)),
        ("昨天", at(2026, 11, 26)),
        ("刚刚", NOW),
        ("2020-02-29T18:34:31+08:00", at(2020, 2, 29, 18, 34, 31)),
        ("2020-02-29T18:34:31", at(2020, 2, 29, 18, 34, 31)),
        ("2020-02-29T18:34+08:00", at(2020, 2, 29, 18, 34)),
        ("2020-02-29T10:34:31Z", at(2020, 2, 29, 18, 34, 31)),
        ("2020-02-29T05:34:31-05:00", at(2020, 2, 29, 18, 34, 31)),
        ("2020-02-29T18:34:31.123+0800", at(2020, 2, 29, 18, 34, 31, 123000)),
        ("Sat, 29 Feb 2020 10:34:31 GMT", at(2020, 2, 29, 18, 34, 31)),
        ("Sat, 29 Feb 2020 18:34:31 +0800", at(2020, 2, 29, 18, 34, 31)),
        ("29 Feb 2020 05:34:31 -0500", at(2020, 2, 29, 18, 34, 31)),
        ("Fri, 28 Feb 2020 21:34:31 EST", at(2020, 2, 29, 10, 34, 31)),
        ("29 Feb 2020 18:34", at(2020, 2, 29, 18, 34)),
        ("1581517074", at(2020, 2, 12, 22, 17, 54)),
        ("1581517074123", at(2020, 2, 12, 22, 17, 54, 123000)),
    ],
)
def test_parse_datetime(text: str, expected: datetime) -> None:
    got = parse_datetime(text, now=NOW)
    assert got == expected
    assert got is not None and got.utcoffset() == timedelta(hours=8)
    assert got.tzinfo is not None and str(got.tzinfo) == "Asia/Shanghai"


@pytest.mark.parametrize(
    "text",
    ["", "   ", "hello", "2020-13-01", "2020-02-30", "1850-01-01", "25:00", "123456", "第3条", "abc前"],
)
def test_unparseable_gives_none(text: str) -> None:
    assert parse_datetime(text, now=NOW) is None


def test_naive_now_is_local_and_other_zones_convert() -> None:
    naive_now = datetime(2026, 11, 27, 15, 30)
    assert parse_datetime("3小时前", now=naive_now) == at(2026, 11, 27, 12, 30)
    utc_now = datetime(2026, 11, 27, 7, 30, tzinfo=UTC)  # 15:30 in Shanghai
    assert parse_datetime("今天 09:15", now=utc_now) == at(2026, 11, 27, 9, 15)
    tokyo = parse_datetime("2020-01-06 12:00", now=NOW, tz="Asia/Tokyo")
    assert tokyo == datetime(2020, 1, 6, 12, 0, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_relative_day_words_cross_month_and_year() -> None:
    new_year = datetime(2026, 1, 1, 0, 30, tzinfo=SH)
    assert parse_datetime("昨天 23:50", now=new_year) == at(2025, 12, 31, 23, 50)
    assert parse_datetime("01-01 00:10", now=new_year) == at(2026, 1, 1, 0, 10)
    assert parse_datetime("12-31 23:00", now=new_year) == at(2025, 12, 31, 23, 0)


def test_feb_29_without_year() -> None:
    assert parse_datetime("02-29 10:00", now=datetime(2024, 3, 1, tzinfo=SH)) == at(2024, 2, 29, 10, 0)
    # Current year common, previous year leap: the previous year.
    assert parse_datetime("02-29 10:00", now=datetime(2025, 1, 10, tzinfo=SH)) == at(2024, 2, 29, 10, 0)
    # Neither this year nor last year has a 29 February.
    assert parse_datetime("02-29 10:00", now=NOW) is None


def test_find_datetime_in_text() -> None:
    text = "来源：新华社  2019-09-07 13:43:45  责任编辑：张三 阅读 326"
    assert find_datetime(text, now=NOW) == at(2019, 9, 7, 13, 43, 45)
    assert find_datetime("澎湃新闻记者 贺梨萍\n2020-06-06 10:08 来源：澎湃新闻", now=NOW) == at(
        2020, 6, 6, 10, 8
    )
    assert find_datetime("发布于 3小时前 · 北京", now=NOW) == NOW - timedelta(hours=3)
    assert find_datetime("原创 南方都市报 昨天 16:01", now=NOW) == at(2026, 11, 26, 16, 1)
    # The leftmost notation wins.
    assert find_datetime("2019年1月2日报道，2020-03-04 05:06更新", now=NOW) == at(2019, 1, 2)


def test_find_datetime_ignores_ambiguous_prose() -> None:
    # A month-day without a clock time, a bare day word, and long numbers are not timestamps in prose.
    assert find_datetime("IT之家9月30日消息 据外媒报道", now=NOW) is None
    assert find_datetime("今天，来自8个国家的政客组成了联盟", now=NOW) is None
    assert find_datetime("订单号 1581517074，金额 35 元", now=NOW) is None
    assert find_datetime("", now=NOW) is None
    assert find_datetime("第1-10月累计增长15.3%", now=NOW) is None


def test_a_year_less_date_takes_the_year_of_the_page_s_full_date_on_the_same_day() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=SH)
    byline = datetime(2026, 10, 8, 12, 0, tzinfo=SH)  # "10-08 12:00" read in 2026
    assert not has_year("10-08 12:00") and has_year("2019-10-08") and has_year("2019年10月8日")
    page = '<meta itemprop="dateUpdate" content="2019-10-08 12:00:57">'
    assert year_from(byline, page, now=now) == byline.replace(year=2019)
    assert year_from(byline, "2019-10-09 与 2020-10-08", now=now) == byline.replace(year=2020)  # same day only
    assert year_from(byline, "2019-10-08 与 2021-10-08", now=now) == byline  # two years: undecided, kept
    assert year_from(byline, "没有完整日期", now=now) == byline
    assert year_from(byline.replace(year=2025, month=12), "2026-12-08", now=now).year == 2025  # never in the future
