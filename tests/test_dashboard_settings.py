"""设置: the form logic on a copy of config/ (validated with the start-up models, atomic, other edits never
overwritten), and the page itself with AppTest as an admin."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.rules import load_rules
from dashboard import config_forms as forms
from dashboard.accounts import load_users, users_path
from events.keyword_groups import load_keyword_groups
from nlp.taxonomy import load_taxonomy
from tests.test_dashboard_app import _run, app_env, signed_in
from yuqing.config_write import ConfigConflictError
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT, Settings, load_settings
from yuqing.sources import load_sources

__all__ = ["app_env"]  # fixture


def test_source_basics_change_only_what_the_form_shows(config_dir: Path) -> None:
    path = config_dir / "sources.yaml"
    snap = forms.read_snapshot(path)
    name = forms.source_names(snap)[0]
    before = load_sources(path).sources[0]
    forms.save_source_basics(snap, name, {"weight": 2.5, "enabled": False, "site": "", "interval_s": 600})
    after = load_sources(path).sources[0]
    assert (after.weight, after.enabled, after.interval_s, after.site) == (2.5, False, 600, None)
    assert after.start_urls == before.start_urls and after.json_paths == before.json_paths  # kept

    text = path.read_bytes()
    with pytest.raises(ConfigError, match=r"field 'sources\[0\]\.weight'"):
        forms.save_source_basics(forms.read_snapshot(path), name, {"weight": -1})
    assert path.read_bytes() == text  # refused: the file exactly as it was


def test_sources_added_by_yaml_and_removed(config_dir: Path) -> None:
    path = config_dir / "sources.yaml"
    snap = forms.read_snapshot(path)
    taken = forms.source_names(snap)[0]
    with pytest.raises(ConfigError, match="已被使用"):
        forms.put_source_yaml(snap, f"name: {taken}\nkind: feed\nstart_urls: ['https://a.example.cn/rss']\n", None)
    with pytest.raises(ConfigError, match="item_links"):  # the model's own rule, as at start-up
        forms.put_source_yaml(snap, "name: 区文化馆\nkind: list\nstart_urls: ['https://a.example.cn/']\n", None)
    forms.put_source_yaml(snap, "name: 区文化馆\nkind: feed\nstart_urls: ['https://a.example.cn/rss']\n", None)
    assert load_sources(path).sources[-1].name == "区文化馆"
    forms.remove_source(forms.read_snapshot(path), "区文化馆")
    assert "区文化馆" not in [s.name for s in load_sources(path).sources]


def test_keyword_groups_validated_and_an_edit_made_meanwhile_is_kept(config_dir: Path) -> None:
    path = config_dir / "keyword_groups.yaml"
    snap = forms.read_snapshot(path)
    with pytest.raises(ConfigError, match=r"field 'groups\[\d+\]\.expression'"):
        forms.put_group(snap, None, "只排除", "!招聘")
    forms.put_group(snap, "图书馆闭馆", "图书馆闭馆", "图书馆 +闭馆 +暂停 !招聘", "改")
    groups = {g.name: g for g in load_keyword_groups(path).groups}
    assert groups["图书馆闭馆"].expression == "图书馆 +闭馆 +暂停 !招聘" and groups["图书馆闭馆"].description == "改"

    with pytest.raises(ConfigConflictError):  # ``snap`` was read before the save above
        forms.put_group(snap, None, "美术馆", "美术馆 +展览")
    assert "美术馆" not in [g.name for g in load_keyword_groups(path).groups]


def test_recipient_groups_checked_by_the_rules_loader(config_dir: Path) -> None:
    path = config_dir / "alerts.yaml"
    snap = forms.read_snapshot(path)
    with pytest.raises(ConfigError, match="不是有效的邮箱地址"):
        forms.put_recipient_group(snap, None, "值班", "duty@culture.example.gov.cn, 不是邮箱")
    used = next(iter(forms.recipient_groups(snap)))
    with pytest.raises(ConfigError):  # a rule still sends to it
        forms.remove_recipient_group(snap, used)
    forms.put_recipient_group(snap, used, used, "a@culture.example.gov.cn、b@culture.example.gov.cn")
    assert forms.recipient_groups(forms.read_snapshot(path))[used] == ["a@culture.example.gov.cn",
                                                                       "b@culture.example.gov.cn"]
    load_rules(path)


def test_admin_edits_groups_and_accounts_on_the_page(app_env: Settings) -> None:
    at = _run(signed_in(username="admin"))
    at.switch_page("views/settings.py")
    _run(at)
    assert [t.label for t in at.tabs] == ["账号", "信源", "专题", "预警收件人"]

    at.selectbox(key="edit_group").select("＋ 新增")
    _run(at)
    at.text_input(key="group_name_＋ 新增").input("美术馆展览")
    at.text_input(key="group_expression_＋ 新增").input("!招聘")
    next(b for b in at.button if b.label == "保存专题").click()
    _run(at)
    assert at.error and at.error[0].value.startswith("未保存：keyword_groups.yaml 中的 groups[")
    assert at.error[0].value.endswith("expression：专题“美术馆展览”：至少需要一个要匹配的词（不能只有 !排除词）")
    at.text_input(key="group_expression_＋ 新增").input("美术馆 +展览")
    next(b for b in at.button if b.label == "保存专题").click()
    _run(at)
    assert [s.value for s in at.success] == ["已保存专题 美术馆展览。"], [e.value for e in at.error]
    settings = load_settings()
    assert "美术馆展览" in [g.name for g in load_keyword_groups(settings.config_file("keyword_groups.yaml")).groups]

    at.selectbox(key="edit_user").select("analyst")
    _run(at)
    at.selectbox(key="change_role").select("leader")
    next(b for b in at.button if b.label == "修改角色").click()
    _run(at)
    assert [s.value for s in at.success] == ["analyst 的角色已改为领导。"]
    user = load_users(users_path(settings)).get("analyst")
    assert user is not None and user.role == "leader"

    at.selectbox(key="edit_user").select("admin")
    _run(at)
    at.selectbox(key="change_role").select("analyst")
    next(b for b in at.button if b.label == "修改角色").click()
    _run(at)
    assert "唯一的管理员" in at.error[0].value


def test_people_checked_against_the_rules_that_name_them(config_dir: Path) -> None:
    path = config_dir / "alerts.yaml"
    snap = forms.read_snapshot(path)
    with pytest.raises(ConfigError, match="不是有效的邮箱地址"):
        forms.put_person(snap, None, "值班员", "duty", "办公室", "")
    with pytest.raises(ConfigError, match="王局长"):  # an event rule sends to him by name
        forms.remove_person(snap, "王局长")
    topics = ["公益性文化服务活动", "文化市场执法"]
    known = load_taxonomy(PROJECT_ROOT / "config" / "taxonomy.yaml").names
    with pytest.raises(ConfigError, match=r"people\[1\]\.topics\[1\].*“文物执法”不是主题分类"):
        forms.put_person(snap, "李主任", "李主任", "li@culture.example.gov.cn", "办公室", [topics[0], "文物执法"],
                         known)
    forms.put_person(snap, "李主任", "李主任", "li@culture.example.gov.cn", "办公室", topics, known)
    person = forms.person_item(forms.read_snapshot(path), "李主任")
    assert person["email"] == "li@culture.example.gov.cn" and person["topics"] == topics
