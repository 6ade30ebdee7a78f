"""Working days (工作日) from the official calendar, 调休 workdays included.

The data are the State Council's yearly holiday notices as shipped by the ``chinesecalendar`` package
(``chinese_calendar.holidays`` / ``chinese_calendar.workdays``; version 1.11 covers 2004–2026, e.g. 2026 from
国办发明电〔2025〕7号: 春节 2月15日–23日 with 2月14日 and 2月28日 (Saturdays) worked, 中秋 9月25日–27日, 国庆
10月1日–7日 with 9月20日 (Sunday) and 10月10日 (Saturday) worked).

A date outside the covered years is counted as a plain Monday–Friday calendar and the result is marked
``uncovered``: the notice for that year is not in the data yet and a person must check the date
("日历未覆盖"). Upgrading ``chinesecalendar`` after each November notice extends the coverage.

Counting convention (期间计算, as in 民法典 第二百零一条 and the 政府信息公开 practice): the day an act happens
is not counted; the first working day after it is day 1. ``add_working_days(d, 20)`` is therefore the 20th
working day after ``d`` — the last day on which a reply is on time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

UNCOVERED_NOTE = "日历未覆盖"


@dataclass(frozen=True)
class DateSpan:
    """Days ``first`` .. ``last`` inclusive (e.g. a third-party consultation that does not count)."""

    first: date
    last: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.first <= day <= self.last


@dataclass(frozen=True)
class WorkdayCount:
    """The day reached by counting working days, and whether any day counted lay outside the official data."""

    day: date
    uncovered: bool = False

    @property
    def note(self) -> str | None:
        if not self.uncovered:
            return None
        return f"{UNCOVERED_NOTE}：{self.day.year}年放假安排尚未收录，按周一至周五计算，请人工核对"


class WorkCalendar:
    """Working days: official holidays and 调休 workdays within the covered years, Monday–Friday outside."""

    def __init__(self, holidays: Mapping[date, str], workdays: Mapping[date, str]) -> None:
        self._holidays = frozenset(holidays)
        self._workdays = frozenset(workdays)
        years = [d.year for d in holidays] + [d.year for d in workdays]
        self.first_year = min(years) if years else 0
        self.last_year = max(years) if years else -1

    @classmethod
    def official(cls) -> WorkCalendar:
        """The calendar of the installed ``chinesecalendar`` package (built once per process)."""
        return _official()

    def covers(self, day: date) -> bool:
        return self.first_year <= day.year <= self.last_year

    def is_workday(self, day: date) -> bool:
        if day in self._workdays:
            return True
        if day in self._holidays:
            return False
        return day.weekday() < 5

    def is_adjusted_workday(self, day: date) -> bool:
        """A weekend day worked by 调休."""
        return day in self._workdays

    def add_working_days(self, start: date, n: int, *, skip: Iterable[DateSpan] = ()) -> WorkdayCount:
        """The ``n``-th working day after ``start`` (``start`` itself not counted), not counting working days
        that lie in any of ``skip``. ``n == 0`` gives ``start``."""
        if n < 0:
            raise ValueError(f"cannot count a negative number of working days: {n}")
        spans = tuple(skip)
        day = start
        uncovered = False
        counted = 0
        while counted < n:
            day += timedelta(days=1)
            if not self.covers(day):
                uncovered = True
            if self.is_workday(day) and not any(day in s for s in spans):
                counted += 1
        return WorkdayCount(day, uncovered)

    def working_days_between(self, start: date, end: date, *, skip: Iterable[DateSpan] = ()) -> int:
        """Working days after ``start`` up to and including ``end`` (negative when ``end`` is before
        ``start``), not counting those in ``skip``."""
        spans = tuple(skip)
        sign = 1
        if end < start:
            start, end, sign = end, start, -1
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_workday(day) and not any(day in s for s in spans):
                count += 1
        return sign * count

    def uncovered_between(self, start: date, end: date) -> bool:
        """Whether any day from ``start`` to ``end`` lies outside the official data."""
        lo, hi = min(start, end), max(start, end)
        return not (self.covers(lo) and self.covers(hi))


@lru_cache(maxsize=1)
def _official() -> WorkCalendar:
    import chinese_calendar

    return WorkCalendar(chinese_calendar.holidays, chinese_calendar.workdays)
