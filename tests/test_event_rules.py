"""Leaders' alert rules: loading and checks, each rule kind, routing, quiet hours, cooldown, digest (pure)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.content import EventAlert, PostLink
from alerts.event_rules import (
    Directory,
    EventRules,
    EventRulesFile,
    Person,
    check_rules,
    digest_window,
    evaluate,
    load_event_rules,
)
from alerts.signals import (
    EventSignal,
    FoiaDueSignal,
    InstructionSignal,
    KeywordGroupSignal,
    Signal,
    SourceSilentSignal,
    SurgeSignal,
    TicketDueSignal,
)
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT

TZ = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 5, 6, 12, 10, tzinfo=TZ)
LAST_OK = NOON - timedelta(hours=10)
PEOPLE = [
    {"name": "王局长", "email": "director@x.gov.cn", "unit": "局领导"},
    {"name": "宣传科", "email": "press@x.gov.cn", "unit": "宣传科", "topics": ["公益性文化服务活动"]},
    {"name": "图书馆", "email": "library@x.gov.cn", "unit": "市图书馆"},
    {"name": "执法支队", "email": "law@x.gov.cn", "unit": "执法支队", "topics": ["文化市场执法"]},
]


def rules(*specs: dict, people: list[dict] | None = None) -> EventRules:
    return check_rules(EventRulesFile.model_validate({"people": PEOPLE if people is None else people,
                                                      "event_rules": list(specs)}), "test.yaml")


def rule(kind: str, name: str = "规则", **kw: object) -> dict:
    return {"name": name, "kind": kind, "recipients": {"names": ["王局长"]}, **kw}


def event(level: str = "II", previous: str | None = None, *, eid: str = "E1", unit: str | None = "市图书馆",
          topic: str | None = "公益性文化服务活动") -> EventSignal:
    alert = EventAlert.model_validate({"event_id": eid, "title": "市图书馆突然闭馆引发读者不满", "level": level,
                                       "heat": 70, "unit": unit, "topic": topic})
    return EventSignal(alert, previous_level=previous)  # type: ignore[arg-type]


def surge(negative: int = 12, total: int = 20, prev_negative: int = 3, prev_total: int = 18,
          topic: str = "公益性文化服务活动") -> SurgeSignal:
    return SurgeSignal(topic=topic, window_end=NOON, window_minutes=60, negative=negative, total=total,
                       prev_negative=prev_negative, prev_total=prev_total)


def ticket(hours_left: float, status: str = "处置中") -> TicketDueSignal:
    return TicketDueSignal(ticket_id="CZ-1", title="图书馆闭馆", unit="市图书馆", deadline_kind="权威信息发布",
                           deadline_basis="国办发〔2016〕80号", due_at=NOON + timedelta(hours=hours_left),
                           status=status, level="II")


def instruction(no: int = 1) -> InstructionSignal:
    return InstructionSignal(ticket_id="CZ-1", title="图书馆闭馆", unit="市图书馆", no=no, leader="王局长",
                             text="请尽快恢复开放，结果报我", at=NOON - timedelta(hours=1),
                             due_at=NOON + timedelta(hours=23), level="II")


def foia(left: int) -> FoiaDueSignal:
    return FoiaDueSignal(request_id="YSQ-1", summary="申请公开图书馆采购合同", received_on=date(2026, 4, 1),
                         due=date(2026, 5, 8), remaining_working_days=left)


def silent(status: str = "silent", hours: float = 10) -> SourceSilentSignal:
    return SourceSilentSignal(source="市民留言板", kind="message", status=status,  # type: ignore[arg-type]
                              last_success=NOON - timedelta(hours=hours), consecutive_empty=4)


def group_hit(group: str = "图书馆服务") -> KeywordGroupSignal:
    post = PostLink(title="图书馆闭馆", url="https://example.gov.cn/p/1", source="微博", post_id="p1")
    return KeywordGroupSignal(group=group, post=post)


def run(r: EventRules, *signals: Signal, now: datetime = NOON, history: dict | None = None):
    return evaluate(r.rules, r.directory, signals, now=now, tz=TZ, history=history)


# ---- loading ----------------------------------------------------------------------------------------------
def test_example_file_loads_and_every_rule_is_explained_in_chinese() -> None:
    loaded = load_event_rules(PROJECT_ROOT / "config" / "alerts.yaml")
    kinds = {r.kind for r in loaded.rules}
    assert kinds == {"new_event", "level_raised", "negative_surge", "keyword_group", "ticket_due", "instruction",
                     "foia_due", "source_silent"}
    lines = loaded.explain()
    assert len(lines) == len(loaded.rules)
    for r, line in zip(loaded.rules, lines, strict=True):
        assert line.startswith(f"【{r.name}】") and "发送给" in line
    by_name = dict(zip([r.name for r in loaded.rules], lines, strict=True))
    assert "Ⅱ级橙色" in by_name["重大舆情"] and "22:00–07:00" in by_name["重大舆情"]
    assert "Ⅰ级红色预警不受安静时段限制" in by_name["重大舆情"]
    assert "Ⅰ级红色预警不受汇总、冷却限制" in by_name["等级上升"]
    assert "每 30 分钟汇总" in by_name["等级上升"] and "60 分钟内只提醒一次" in by_name["等级上升"]
    assert "3 个工作日" in by_name["依申请公开到期提醒"]
    assert "事项的责任单位" in by_name["处置超期"]
    assert "领导批示待落实" in by_name["领导批示转办"] and "事项的责任单位" in by_name["领导批示转办"]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (rule("new_event", recipients={"names": ["张三"]}), "event_rules[0].recipients.names[0]", "张三"),
        (rule("new_event", recipients={"units": ["财务科"]}), "event_rules[0].recipients.units[0]", "财务科"),
        (rule("ticket_due"), "event_rules[0].ticket_due", "within_hours"),
        (rule("no_such_kind"), "event_rules[0]", "kind"),
        (rule("new_event", recipients={}), "event_rules[0].new_event.recipients", "至少指定一类收件人"),
        (rule("new_event", quiet_hours={"start": "25:00", "end": "07:00"}), "quiet_hours.start", ""),
    ],
)
def test_bad_rules_name_the_file_and_the_field(tmp_path: Path, spec: dict, field: str, words: str) -> None:
    import yaml

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"people": PEOPLE, "event_rules": [spec]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_event_rules(path)
    assert str(path) in str(info.value) and field in str(info.value) and words in str(info.value)


def test_duplicate_rule_names_refused() -> None:
    with pytest.raises(ConfigError, match=r"event_rules\[1\]\.name"):
        rules(rule("new_event", "甲"), rule("level_raised", "甲"))


# ---- each kind ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "signal", "occurrence"),
    [
        (rule("new_event", min_level="II"), event("II"), "reached:II"),
        (rule("new_event", min_level="II"), event("I"), "reached:II"),
        (rule("new_event", min_level="II"), event("III"), None),
        (rule("new_event", min_level="II", topics=["文化市场执法"]), event("I"), None),
        (rule("level_raised", min_level="III"), event("II", "III"), "raised-to:II"),
        (rule("level_raised", min_level="III"), event("III", "IV"), "raised-to:III"),
        (rule("level_raised", min_level="II"), event("III", "IV"), None),
        (rule("level_raised"), event("III", "II"), None),  # fell
        (rule("level_raised"), event("II", None), None),  # no previous level: not a raise
        (rule("negative_surge"), surge(), f"window:{NOON.replace(minute=0).isoformat()}"),  # the 60-min slot
        (rule("negative_surge"), surge(negative=4, total=5, prev_negative=0), None),  # under min_count
        (rule("negative_surge"), surge(negative=12, total=60), None),  # share 20 % < 30 %
        (rule("negative_surge"), surge(prev_negative=7, prev_total=20), None),  # 12 < 2 × 7
        (rule("negative_surge", min_share_rise=0.5), surge(), None),  # share 60 % vs 17 %: rise 43 %
        (rule("negative_surge", topics=["文化市场执法"]), surge(), None),
        (rule("negative_surge", window_minutes=30), surge(), None),  # computed for another window
        (rule("keyword_group", groups=["图书馆服务"]), group_hit(), "post:p1"),
        (rule("keyword_group"), group_hit("演出市场"), "post:p1"),
        (rule("keyword_group", groups=["图书馆服务"]), group_hit("演出市场"), None),
        (rule("ticket_due", within_hours=5), ticket(4.5), "权威信息发布:within5h"),
        (rule("ticket_due", within_hours=5), ticket(6), None),
        (rule("ticket_due", within_hours=5), ticket(-1), None),
        (rule("ticket_due", overdue=True), ticket(-1), "权威信息发布:overdue"),
        (rule("ticket_due", overdue=True, within_hours=24), ticket(-0.5, status="已办结"), None),
        (rule("ticket_due", within_hours=24, deadline_kinds=["新闻发布会"]), ticket(2), None),
        (rule("instruction"), instruction(), "instruction:1"),
        (rule("instruction"), instruction(2), "instruction:2"),  # each instruction its own occurrence
        (rule("instruction"), ticket(-1), None),
        (rule("ticket_due", overdue=True), instruction(), None),
        (rule("foia_due"), foia(3), "due:2026-05-08:within3"),
        (rule("foia_due"), foia(0), "due:2026-05-08:within3"),
        (rule("foia_due"), foia(4), None),
        (rule("foia_due"), foia(-1), "due:2026-05-08:overdue"),
        (rule("foia_due", overdue=False), foia(-1), None),
        (rule("source_silent"), silent(), f"silent:{LAST_OK.isoformat()}"),
        (rule("source_silent", min_hours=12), silent(), None),
        (rule("source_silent", statuses=["failing"]), silent(), None),
        (rule("source_silent", statuses=["failing"]), silent("failing"), f"failing:{LAST_OK.isoformat()}"),
        (rule("new_event"), ticket(1), None),  # a rule ignores other kinds of signal
    ],
)
def test_each_rule_kind_fires_exactly_when_it_should(spec: dict, signal: Signal, occurrence: str | None) -> None:
    out = run(rules(spec), signal)
    if occurrence is None:
        assert out.decisions == []
    else:
        (d,) = out.decisions
        assert d.occurrence == occurrence and d.reason and d.addresses == ("director@x.gov.cn",)
        assert d.hold == "now" and d.deliver_at == NOON


def test_decisions_are_deterministic() -> None:
    r = rules(rule("new_event"), rule("level_raised", "升级"))
    first = run(r, event("II", "III"))
    again = run(r, event("II", "III"), now=NOON + timedelta(hours=3))
    assert [d.id for d in first.decisions] == [d.id for d in again.decisions]
    assert len({d.id for d in first.decisions}) == 2
    other_event = run(r, event("II", "III", eid="E2"))
    assert not {d.id for d in other_event.decisions} & {d.id for d in first.decisions}


# ---- routing -----------------------------------------------------------------------------------------------
def test_routing_by_name_unit_topic_address_and_the_signals_unit() -> None:
    spec = rule("new_event", recipients={"names": ["王局长"], "units": ["执法支队"], "topics": ["公益性文化服务活动"],
                                         "emails": ["duty@x.gov.cn", "press@x.gov.cn"], "signal_unit": True})
    (d,) = run(rules(spec), event("II")).decisions
    assert d.addresses == ("director@x.gov.cn", "press@x.gov.cn", "library@x.gov.cn", "law@x.gov.cn",
                           "duty@x.gov.cn")


def test_routing_to_the_signals_unit_and_topic_follows_the_signal() -> None:
    r = rules(rule("new_event", recipients={"signal_unit": True, "signal_topic": True}))
    (lib,) = run(r, event("II", unit="市图书馆", topic=None)).decisions
    assert lib.addresses == ("library@x.gov.cn",)
    (law,) = run(r, event("II", eid="E2", unit=None, topic="文化市场执法")).decisions
    assert law.addresses == ("law@x.gov.cn",)
    nobody = run(r, event("II", eid="E3", unit="财务科", topic=None))
    assert nobody.decisions == []
    (skip,) = nobody.skipped
    assert "无收件人" in skip.reason and "财务科" in skip.reason


# ---- quiet hours -------------------------------------------------------------------------------------------
QUIET = {"start": "22:00", "end": "07:00"}


@pytest.mark.parametrize(
    ("at", "level", "expected", "hold"),
    [
        (datetime(2026, 5, 6, 23, 30, tzinfo=TZ), "II", datetime(2026, 5, 7, 7, 0, tzinfo=TZ), "quiet"),
        (datetime(2026, 5, 7, 6, 59, tzinfo=TZ), "II", datetime(2026, 5, 7, 7, 0, tzinfo=TZ), "quiet"),
        (datetime(2026, 5, 6, 22, 0, tzinfo=TZ), "II", datetime(2026, 5, 7, 7, 0, tzinfo=TZ), "quiet"),
        (datetime(2026, 5, 7, 7, 0, tzinfo=TZ), "II", datetime(2026, 5, 7, 7, 0, tzinfo=TZ), "now"),
        (datetime(2026, 5, 6, 21, 59, tzinfo=TZ), "II", datetime(2026, 5, 6, 21, 59, tzinfo=TZ), "now"),
        (datetime(2026, 5, 6, 23, 30, tzinfo=TZ), "I", datetime(2026, 5, 6, 23, 30, tzinfo=TZ), "now"),  # override
    ],
)
def test_quiet_hours_hold_until_their_end_except_level_one(at: datetime, level: str, expected: datetime,
                                                          hold: str) -> None:
    r = rules(rule("new_event", min_level="II", quiet_hours=QUIET))
    (d,) = run(r, event(level), now=at.astimezone(ZoneInfo("UTC"))).decisions
    assert (d.deliver_at, d.hold) == (expected, hold)
    assert (d.digest_key is None) == (hold == "now")


def test_quiet_matches_of_one_night_share_one_summary_and_a_daytime_quiet_period_works() -> None:
    r = rules(rule("level_raised", quiet_hours=QUIET))
    night = [run(r, event("II", "III", eid=f"E{i}"), now=datetime(2026, 5, 6, h, 0, tzinfo=TZ)).decisions[0]
             for i, h in enumerate((22, 23))]
    early = run(r, event("II", "III", eid="E9"), now=datetime(2026, 5, 7, 3, 0, tzinfo=TZ)).decisions[0]
    assert night[0].digest_key == night[1].digest_key == early.digest_key
    lunch = rules(rule("level_raised", quiet_hours={"start": "12:00", "end": "14:00"}))
    (d,) = run(lunch, event("II", "III")).decisions
    assert d.deliver_at == datetime(2026, 5, 6, 14, 0, tzinfo=TZ) and d.hold == "quiet"


# ---- cooldown ----------------------------------------------------------------------------------------------
def test_cooldown_per_rule_and_subject() -> None:
    r = rules(rule("level_raised", "升级", cooldown_minutes=60), rule("new_event", "新事件"))
    history = {("升级", "event:E1"): NOON - timedelta(minutes=30)}
    out = run(r, event("II", "III"), history=history)
    assert [d.rule for d in out.decisions] == ["新事件"]  # another rule: its own cooldown (none)
    (skip,) = out.skipped
    assert skip.rule == "升级" and "冷却中" in skip.reason and "11:40" in skip.reason
    later = run(r, event("II", "III"), history={("升级", "event:E1"): NOON - timedelta(minutes=61)})
    assert sorted(d.rule for d in later.decisions) == ["升级", "新事件"]
    other = run(r, event("II", "III", eid="E2"), history=history)
    assert sorted(d.rule for d in other.decisions) == ["升级", "新事件"]
    urgent = run(r, event("I", "II"), history=history)  # level I is never held back by a cooldown
    assert sorted(d.rule for d in urgent.decisions) == ["升级", "新事件"]


def test_cooldown_counts_matches_of_the_same_call() -> None:
    r = rules(rule("negative_surge", cooldown_minutes=120))
    a = surge()
    b = SurgeSignal(topic=a.topic, window_end=NOON + timedelta(minutes=5), window_minutes=60, negative=15,
                    total=20, prev_negative=3, prev_total=18)
    out = run(r, a, b)
    assert len(out.decisions) == 1 and len(out.skipped) == 1


# ---- digest ------------------------------------------------------------------------------------------------
def test_digest_window_aligned_to_local_midnight() -> None:
    assert digest_window(datetime(2026, 5, 6, 12, 10, tzinfo=TZ), 30) == (
        datetime(2026, 5, 6, 12, 0, tzinfo=TZ), datetime(2026, 5, 6, 12, 30, tzinfo=TZ))
    assert digest_window(datetime(2026, 5, 6, 23, 50, tzinfo=TZ), 420) == (  # the day's last window is shorter
        datetime(2026, 5, 6, 21, 0, tzinfo=TZ), datetime(2026, 5, 7, 0, 0, tzinfo=TZ))


def test_digest_collects_a_windows_matches_per_recipients_and_urgent_ones_go_now() -> None:
    r = rules(rule("level_raised", digest_minutes=30, recipients={"signal_unit": True}))
    a = run(r, event("II", "III", eid="E1"), now=datetime(2026, 5, 6, 12, 1, tzinfo=TZ)).decisions[0]
    b = run(r, event("III", "IV", eid="E2"), now=datetime(2026, 5, 6, 12, 29, tzinfo=TZ)).decisions[0]
    c = run(r, event("II", "III", eid="E3"), now=datetime(2026, 5, 6, 12, 30, tzinfo=TZ)).decisions[0]
    d = run(r, event("II", "III", eid="E4", unit="执法支队"), now=datetime(2026, 5, 6, 12, 2, tzinfo=TZ)).decisions[0]
    urgent = run(r, event("I", "II", eid="E5"), now=datetime(2026, 5, 6, 12, 3, tzinfo=TZ)).decisions[0]
    assert a.hold == b.hold == "digest" and a.digest_key == b.digest_key
    assert a.deliver_at == b.deliver_at == datetime(2026, 5, 6, 12, 30, tzinfo=TZ)
    assert c.digest_key != a.digest_key and c.deliver_at == datetime(2026, 5, 6, 13, 0, tzinfo=TZ)
    assert d.digest_key != a.digest_key  # other recipients: their own digest
    assert urgent.hold == "now" and urgent.digest_key is None


def test_a_digest_falling_due_in_quiet_hours_waits_for_their_end() -> None:
    r = rules(rule("level_raised", digest_minutes=60, quiet_hours=QUIET))
    (d,) = run(r, event("II", "III"), now=datetime(2026, 5, 6, 21, 30, tzinfo=TZ)).decisions
    assert d.hold == "quiet" and d.deliver_at == datetime(2026, 5, 7, 7, 0, tzinfo=TZ)


def test_directory_describe_and_resolve_keep_directory_order() -> None:
    directory = Directory(tuple(Person.model_validate(p) for p in PEOPLE))
    r = rules(rule("new_event", recipients={"topics": ["文化市场执法"], "names": ["王局长"]}))
    assert r.directory == directory
    (d,) = run(r, event("II")).decisions
    assert [p.name for p in d.recipients] == ["王局长", "执法支队"]
