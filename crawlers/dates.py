"""Normalising the date and time notations found on Chinese web pages and feeds.

Every result is timezone-aware in the configured zone (default Asia/Shanghai). Naive notations
("2020年1月6日 12:09", "01-06 12:09", "昨天 10:20") are read as local time in that zone; notations that
carry an offset (ISO 8601, RFC 2822) or none at all (unix timestamps) are converted into it.

The notation grammar lives here (it is a parser, not a heuristic); which page elements and which text
near a title are searched for dates is data in ``config/extraction.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"

# Years accepted for absolute dates: older than this is almost surely a false match (an ID, a price).
MIN_YEAR = 1990

_TIME = (
    r"(?:(?P<ampm>上午|下午|晚上|中午|凌晨|早上)?\s*(?P<H>\d{1,2})\s*[:：时点]\s*(?P<M>\d{1,2})"
    r"(?:\s*[:：分]\s*(?P<S>\d{1,2}))?(?:\.\d+)?)"
)

# Full dates: 2020年1月6日 12:09 / 2020-01-06 12:09:30 / 2020/01/06 / 2020.01.06 / 2020-01-06T12:09
_FULL = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})\s*(?:年|-|/|\.)\s*(?P<m>\d{1,2})\s*(?:月|-|/|\.)\s*(?P<d>\d{1,2})(?!\d)\s*日?"
    r"(?:\s*(?:T|\s)?\s*(?:星期.|周.)?\s*" + _TIME + r")?"
)
# Month and day without year: 01-06 12:09 / 1月6日 12:09 / 1月6日 / 10-0812:00 (spans glued together)
_MONTH_DAY = re.compile(
    r"(?<![\d/\-.年])(?P<m>\d{1,2})\s*(?:月|-|/)\s*(?P<d>\d{2}(?=\d{1,2}[:：]\d)|\d{1,2}(?!\d))\s*日?"
    r"(?:\s*" + _TIME + r")?"
)
_RELATIVE = re.compile(r"(?P<n>\d+)\s*(?P<unit>秒|分钟|分|小时|个小时|天|日|周|星期|个月)\s*(?:之)?前")
_DAY_WORD = re.compile(r"(?P<word>今天|今日|昨天|昨日|前天)(?:\s*" + _TIME + r")?")
_JUST_NOW = re.compile(r"刚刚|刚才")
_TIMESTAMP = re.compile(r"^\s*(?P<ts>\d{10}|\d{13})\s*$")
_ISO = re.compile(
    r"(?<!\d)\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})(?![\d])"
)
_RFC2822 = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s*)?\d{1,2}\s+(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*"
    r"\s+\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:[+-]\d{4}|GMT|UTC?|[ECMP][SD]T|Z)\b)?",
    re.IGNORECASE,
)

_UNIT_SECONDS = {
    "秒": 1,
    "分钟": 60,
    "分": 60,
    "小时": 3600,
    "个小时": 3600,
    "天": 86400,
    "日": 86400,
    "周": 7 * 86400,
    "星期": 7 * 86400,
    "个月": 30 * 86400,
}
_DAY_OFFSET = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2}


def _zone(tz: ZoneInfo | str) -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)


def _local_now(now: datetime, zone: ZoneInfo) -> datetime:
    """`now` in the target zone; a naive `now` is taken to be local time already."""
    return now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)


def _clock(match: re.Match[str]) -> tuple[int, int, int] | None:
    """(hour, minute, second) from the optional time part of a match; (0, 0, 0) when absent."""
    if match.group("H") is None:
        return 0, 0, 0
    hour, minute = int(match.group("H")), int(match.group("M"))
    second = int(match.group("S")) if match.group("S") else 0
    ampm = match.group("ampm")
    if (ampm in ("下午", "晚上") and hour < 12) or (ampm == "中午" and hour < 11):
        hour += 12
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _build(zone: ZoneInfo, y: int, m: int, d: int, clock: tuple[int, int, int] | None) -> datetime | None:
    if clock is None:
        return None
    try:
        return datetime(y, m, d, *clock, tzinfo=zone)
    except ValueError:
        return None


def _from_full(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    year = int(match.group("y"))
    if year < MIN_YEAR or year > now.year + 1:
        return None
    return _build(zone, year, int(match.group("m")), int(match.group("d")), _clock(match))


def _from_month_day(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    month, day = int(match.group("m")), int(match.group("d"))
    clock = _clock(match)
    value = _build(zone, now.year, month, day, clock)
    if value is None:
        # 02-29 in a non-leap current year: the previous leap year is the only reading.
        value = _build(zone, now.year - 1, month, day, clock)
        return value if value is not None and value <= now else None
    if value > now + timedelta(minutes=5):
        value = _build(zone, now.year - 1, month, day, clock)
    return value


def _from_relative(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    seconds = int(match.group("n")) * _UNIT_SECONDS[match.group("unit")]
    return now - timedelta(seconds=seconds)


def _from_day_word(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    day = (now - timedelta(days=_DAY_OFFSET[match.group("word")])).date()
    clock = _clock(match)
    if match.group("H") is None:
        # "昨天" alone: the day is known, the time is not; midnight is the conventional reading.
        clock = (0, 0, 0)
    return _build(zone, day.year, day.month, day.day, clock)


def _from_just_now(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    return now.replace(microsecond=0)


def _from_iso(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    text = match.group(0).replace(" ", "T", 1).replace(" ", "")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.astimezone(zone) if value.tzinfo else value.replace(tzinfo=zone)


def _from_rfc2822(match: re.Match[str], now: datetime, zone: ZoneInfo) -> datetime | None:
    try:
        value = parsedate_to_datetime(match.group(0))
    except (TypeError, ValueError, IndexError):
        return None
    # No zone (or RFC 2822's "-0000", "zone unknown"): like every naive notation, local time.
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


_Parser = Callable[[re.Match[str], datetime, ZoneInfo], "datetime | None"]

# Inside prose these are too ambiguous without a clock time ("9月30日消息", "今天，来自...").
_CLOCK_REQUIRED = (_MONTH_DAY, _DAY_WORD)

# Order matters for find_datetime when two notations start at the same place: the more specific first.
_NOTATIONS: tuple[tuple[re.Pattern[str], _Parser], ...] = (
    (_ISO, _from_iso),
    (_RFC2822, _from_rfc2822),
    (_FULL, _from_full),
    (_DAY_WORD, _from_day_word),
    (_RELATIVE, _from_relative),
    (_JUST_NOW, _from_just_now),
    (_MONTH_DAY, _from_month_day),
)


def _from_timestamp(text: str, zone: ZoneInfo) -> datetime | None:
    match = _TIMESTAMP.match(text)
    if match is None:
        return None
    digits = match.group("ts")
    seconds = int(digits) / 1000 if len(digits) == 13 else int(digits)
    try:
        return datetime.fromtimestamp(seconds, tz=zone)
    except (OverflowError, OSError, ValueError):
        return None


def parse_datetime(text: str, *, now: datetime, tz: ZoneInfo | str = DEFAULT_TZ) -> datetime | None:
    """Parse one date/time notation (the whole of `text`, give or take surrounding words).

    Understands 2020年1月6日 12:09, 2020-01-06, 2020/01/06 12:09:30, 01-06 12:09 (current year, or the
    previous one when that would be in the future), 3小时前, 5分钟前, 2天前, 昨天 10:20, 前天 08:00,
    今天 09:15, 刚刚, ISO 8601 with offsets, RFC 2822 and unix timestamps (10 or 13 digits). Relative
    notations are resolved against `now`. Returns an aware datetime in `tz`, or None if nothing parses.
    """
    zone = _zone(tz)
    local_now = _local_now(now, zone)
    text = (text or "").strip()
    if not text:
        return None
    stamp = _from_timestamp(text, zone)
    if stamp is not None:
        return stamp
    for pattern, parser in _NOTATIONS:
        match = pattern.search(text)
        if match is not None:
            value = parser(match, local_now, zone)
            if value is not None:
                return value
    return None


def find_datetime(text: str, *, now: datetime, tz: ZoneInfo | str = DEFAULT_TZ) -> datetime | None:
    """The first date/time notation inside a longer text (leftmost wins; at a tie the most specific).

    Bare numbers are never read as unix timestamps here: inside prose they are far more often IDs; and
    month-day dates and 今天/昨天/前天 count only with a clock time ("9月30日消息" is not a timestamp).
    """
    zone = _zone(tz)
    local_now = _local_now(now, zone)
    if not text:
        return None
    found: list[tuple[int, int, datetime]] = []
    for rank, (pattern, parser) in enumerate(_NOTATIONS):
        for match in pattern.finditer(text):
            if pattern in _CLOCK_REQUIRED and match.group("H") is None:
                continue
            value = parser(match, local_now, zone)
            if value is not None:
                found.append((match.start(), rank, value))
                break
    if not found:
        return None
    found.sort(key=lambda item: (item[0], item[1]))
    return found[0][2]


def has_year(text: str) -> bool:
    """Whether ``text`` writes a year (a full date or ISO 8601), as opposed to a month-day like ``10-08 12:00``."""
    return _FULL.search(text) is not None or _ISO.search(text) is not None


def year_from(value: datetime, text: str, *, now: datetime) -> datetime:
    """``value`` (read from a month-day without year, so given the latest year not in the future) with the year
    of the full dates in ``text`` that have its month and day, when they all agree on one year that is not in
    the future; else ``value`` unchanged. A portal's byline shows ``10-08 12:00`` while the page declares
    ``2019-10-08 12:00:57`` elsewhere (e.g. ``itemprop="dateUpdate"``): the year is the page's, not this one."""
    years = {int(m.group("y")) for m in _FULL.finditer(text)
             if int(m.group("m")) == value.month and int(m.group("d")) == value.day}
    if len(years) != 1:
        return value
    try:
        dated = value.replace(year=years.pop())
    except ValueError:  # 02-29 in a year without it
        return value
    return dated if dated <= now + timedelta(minutes=5) else value
