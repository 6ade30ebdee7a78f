"""设置 (admins only): accounts, sources, 专题 keyword groups, alert recipients (and people). Every change goes
through the validated, atomic writer (:mod:`dashboard.config_forms`, :mod:`dashboard.accounts`): a bad value is
refused with the field named, and an edit someone else saved meanwhile is never overwritten."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from alerts.rules import rules_path
from dashboard import accounts, components
from dashboard import config_forms as forms
from dashboard import format as fmt
from dashboard.auth import ROLE_LABELS, ROLES, PasswordPolicyError
from nlp.taxonomy import load_taxonomy
from yuqing.config_write import ConfigConflictError
from yuqing.errors import YuqingError

components.require_page("settings")
backend = components.backend_or_stop()
settings = backend.settings
log = logging.getLogger("dashboard.settings")
NEW = "＋ 新增"
NOTICE = "settings_notice"
SELECT = "settings_select"  # (selectbox key, value) to show after a save: the entry just added or renamed

st.title("设置")
notice = st.session_state.pop(NOTICE, None)
if notice:
    st.success(notice)
selected = st.session_state.pop(SELECT, None)
if selected is not None:  # before the selectbox exists, so its value may be set
    st.session_state[selected[0]] = selected[1]


def attempt(action: Callable[[], object], done: str, select: tuple[str, str] | None = None) -> None:
    """Run a change; on success rerun with ``done`` shown, otherwise show why (in Chinese, the field named)."""
    try:
        action()
    except PasswordPolicyError as exc:
        st.error(str(exc))
    except ConfigConflictError:
        st.error("该配置文件刚被他人修改，本次修改未保存。请刷新页面后重新编辑。")
    except OSError as exc:  # a full disk, a read-only folder: the file is as it was (the writers are atomic)
        if not isinstance(exc, accounts.LedgerWriteError):  # that one is logged by the ledger
            log.error("settings: a change could not be saved: %s", exc)
        st.error(f"未保存：磁盘已满或无法写入（{exc.strerror or exc}）")
    except YuqingError as exc:  # ConfigError: the file and the field named, what is wrong said in Chinese
        st.error(f"未保存：{fmt.error_text(exc)}")
    else:
        st.session_state[NOTICE] = done
        if select is not None:
            st.session_state[SELECT] = select
        st.rerun()


def snapshot(path: Path) -> forms.Snapshot:
    try:
        return forms.read_snapshot(path)
    except YuqingError as exc:
        components.fail(f"配置文件无法读取：{fmt.error_text(exc)}")


tab_users, tab_sources, tab_groups, tab_recipients = st.tabs(["账号", "信源", "专题", "预警收件人"])

# ---- accounts ----------------------------------------------------------------------------------------------
with tab_users:
    path = accounts.users_path(settings)
    try:
        users = accounts.load_users(path).users
    except YuqingError as exc:
        components.fail(f"账号配置有误：{fmt.error_text(exc)}")
    st.dataframe(
        pd.DataFrame({
            "用户名": [u.username for u in users],
            "姓名": [u.display_name for u in users],
            "角色": [ROLE_LABELS[u.role] for u in users],
            "单位": [u.unit or "" for u in users],
            "邮箱": [u.email or "" for u in users],
        }),
        hide_index=True,
    )
    with st.form("add_user", clear_on_submit=True):
        st.markdown("**添加账号**")
        left, right = st.columns(2)
        username = left.text_input("用户名", key="new_username", help="小写字母开头，可含数字和 . _ -")
        display_name = right.text_input("姓名", key="new_display_name")
        role = left.selectbox("角色", ROLES, format_func=lambda r: ROLE_LABELS[r], key="new_role")
        unit = right.text_input("单位（可选）", key="new_unit")
        email = left.text_input("邮箱（可选）", key="new_email")
        password = right.text_input("初始密码", type="password", key="new_password", help="至少 8 个字符")
        submitted = st.form_submit_button("添加")
    if submitted:
        attempt(lambda: accounts.add_user(path, username, display_name, role, password, unit=unit.strip(),
                                          email=email.strip(), rounds=settings.dashboard.password_hash_rounds),
                f"已添加账号 {username.strip().lower()}（{ROLE_LABELS[role]}）。")

    if users:
        st.markdown("**修改账号**")
        names = [u.username for u in users]
        chosen = st.selectbox("账号", names, key="edit_user")
        current = next(u for u in users if u.username == chosen)
        with st.form("user_password", clear_on_submit=True):
            new_password = st.text_input("新密码", type="password", key="reset_password")
            if st.form_submit_button("重设密码"):
                attempt(lambda: accounts.set_password(path, chosen, new_password,
                                                      rounds=settings.dashboard.password_hash_rounds),
                        f"已重设 {chosen} 的密码（其已登录的会话随即失效）。")
        with st.form("user_role"):
            new_role = st.selectbox("角色", ROLES, index=ROLES.index(current.role),
                                    format_func=lambda r: ROLE_LABELS[r], key="change_role")
            if st.form_submit_button("修改角色"):
                attempt(lambda: accounts.set_role(path, chosen, new_role),
                        f"{chosen} 的角色已改为{ROLE_LABELS[new_role]}。")
        left, right = st.columns(2)
        if left.button("解除登录锁定", key="unlock_user"):
            attempt(lambda: accounts.unlock_user(settings, chosen), f"已清除 {chosen} 的登录失败记录。")
        confirm = right.checkbox(f"确认删除 {chosen}", key="confirm_remove_user")
        if right.button("删除账号", key="remove_user", disabled=not confirm):
            others = [n for n in names if n != chosen]
            attempt(lambda: accounts.remove_user(path, chosen), f"已删除账号 {chosen}。",
                    select=("edit_user", others[0]) if others else None)

# ---- sources -----------------------------------------------------------------------------------------------
with tab_sources:
    st.caption("保存后数秒内，运行中的采集服务即按新配置采集：新增信源立即采集一次，删除或停用的信源不再采集，间隔修改即时生效。")
    sources = snapshot(settings.config_file("sources.yaml"))
    items = sources.data.get("sources") or []
    st.dataframe(pd.DataFrame({
        "名称": [s.get("name", "") for s in items],
        "类型": [s.get("kind", "") for s in items],
        "站点": [s.get("site") or "" for s in items],
        "启用": [s.get("enabled", True) for s in items],
        "间隔(秒)": [s.get("interval_s") or settings.schedule.crawl_interval_s for s in items],
        "权重": [s.get("weight", 1.0) for s in items],
    }), hide_index=True)
    choice = st.selectbox("信源", [NEW, *forms.source_names(sources)], key="edit_source")
    if choice == NEW:
        with st.form("add_source"):
            st.caption("按 config/sources.yaml 的写法填写一个信源（至少 name、kind、start_urls），"
                       "保存前按启动时的规则校验。")
            text = st.text_area("信源（YAML）", height=220, key="new_source_yaml",
                                value="name: \nkind: feed\nsite: \nstart_urls: [\"https://\"]\nenabled: true\n")
            if st.form_submit_button("添加信源"):
                attempt(lambda: forms.put_source_yaml(sources, text, None), "已添加信源。",
                        select=("edit_source", forms.source_name_of(text)))
    else:
        item = forms.source_item(sources, choice)
        with st.form("source_basics"):
            left, right = st.columns(2)
            enabled = left.checkbox("启用", value=bool(item.get("enabled", True)), key="source_enabled")
            site = right.text_input("站点名称", value=item.get("site") or "", key="source_site")
            interval = left.number_input("采集间隔（秒，0 为默认）", min_value=0,
                                         value=int(item.get("interval_s") or 0), key="source_interval")
            weight = right.number_input("权重", min_value=0.0, value=float(item.get("weight", 1.0)), step=0.1,
                                        key="source_weight")
            max_items = left.number_input("每次最多采集条数", min_value=1, value=int(item.get("max_items", 200)),
                                          key="source_max_items")
            if st.form_submit_button("保存"):
                attempt(lambda: forms.save_source_basics(sources, choice, {
                    "enabled": enabled, "site": site, "interval_s": int(interval) or None, "weight": float(weight),
                    "max_items": int(max_items)}), f"已保存信源 {choice}。")
        with st.expander("全部设置（YAML：选择器、起始地址等）"), st.form("source_yaml"):
            text = st.text_area("信源（YAML）", value=forms.source_yaml(sources, choice), height=300,
                                key=f"source_yaml_{choice}")
            if st.form_submit_button("保存全部设置"):
                attempt(lambda: forms.put_source_yaml(sources, text, choice), f"已保存信源 {choice}。")
        confirm = st.checkbox(f"确认删除信源 {choice}", key="confirm_remove_source")
        if st.button("删除信源", key="remove_source", disabled=not confirm):
            attempt(lambda: forms.remove_source(sources, choice), f"已删除信源 {choice}。", select=("edit_source", NEW))

# ---- 专题 ---------------------------------------------------------------------------------------------------
with tab_groups:
    groups = snapshot(settings.config_file("keyword_groups.yaml"))
    rows = groups.data.get("groups") or []
    st.dataframe(pd.DataFrame({"名称": [g.get("name", "") for g in rows],
                               "表达式": [g.get("expression", "") for g in rows],
                               "说明": [g.get("description", "") for g in rows]}), hide_index=True)
    st.caption("表达式写法：空格分隔的词任一出现即可；+词 必须出现；!词 必须不出现；\"…\" 为精确短语。")
    choice = st.selectbox("专题", [NEW, *forms.group_names(groups)], key="edit_group")
    current_group = forms.group_item(groups, choice) if choice != NEW else {}
    with st.form("group_form"):
        name = st.text_input("名称", value=current_group.get("name", ""), key=f"group_name_{choice}")
        expression = st.text_input("表达式", value=current_group.get("expression", ""),
                                   key=f"group_expression_{choice}")
        description = st.text_input("说明（可选）", value=current_group.get("description", ""),
                                    key=f"group_description_{choice}")
        if st.form_submit_button("保存专题"):
            replacing = None if choice == NEW else choice
            attempt(lambda: forms.put_group(groups, replacing, name, expression, description),
                    f"已保存专题 {name.strip()}。", select=("edit_group", name.strip()))
    if choice != NEW:
        confirm = st.checkbox(f"确认删除专题 {choice}", key="confirm_remove_group")
        if st.button("删除专题", key="remove_group", disabled=not confirm):
            attempt(lambda: forms.remove_group(groups, choice), f"已删除专题 {choice}。", select=("edit_group", NEW))

# ---- alert recipients (and people) -------------------------------------------------------------------------
with tab_recipients:
    rules = snapshot(rules_path(settings))
    recipient_groups = forms.recipient_groups(rules)
    st.dataframe(pd.DataFrame({"组名": list(recipient_groups),
                               "邮箱": ["、".join(v) for v in recipient_groups.values()]}), hide_index=True)
    choice = st.selectbox("收件组", [NEW, *recipient_groups], key="edit_recipients")
    with st.form("recipients_form"):
        name = st.text_input("组名", value="" if choice == NEW else choice, key=f"recipients_name_{choice}")
        addresses = st.text_area("邮箱（每行一个，或用逗号、顿号分隔）",
                                 value="" if choice == NEW else "\n".join(recipient_groups[choice]),
                                 key=f"recipients_addresses_{choice}")
        if st.form_submit_button("保存收件组"):
            replacing = None if choice == NEW else choice
            attempt(lambda: forms.put_recipient_group(rules, replacing, name, addresses),
                    f"已保存收件组 {name.strip()}。", select=("edit_recipients", name.strip()))
    if choice != NEW:
        confirm = st.checkbox(f"确认删除收件组 {choice}", key="confirm_remove_recipients")
        if st.button("删除收件组", key="remove_recipients", disabled=not confirm):
            attempt(lambda: forms.remove_recipient_group(rules, choice), f"已删除收件组 {choice}。",
                    select=("edit_recipients", NEW))

    if forms.has_people():
        st.markdown("**人员（按姓名、单位或关注主题接收事件预警）**")
        known_topics = load_taxonomy(settings.config_file("taxonomy.yaml")).names
        people = rules.data.get("people") or []
        st.dataframe(pd.DataFrame({"姓名": [p.get("name", "") for p in people],
                                   "邮箱": [p.get("email", "") for p in people],
                                   "单位": [p.get("unit", "") for p in people],
                                   "关注主题": ["、".join(p.get("topics") or []) for p in people]}), hide_index=True)
        choice = st.selectbox("人员", [NEW, *forms.people_names(rules)], key="edit_person")
        person = forms.person_item(rules, choice) if choice != NEW else {}
        with st.form("person_form"):
            name = st.text_input("姓名", value=person.get("name", ""), key=f"person_name_{choice}")
            email = st.text_input("邮箱", value=person.get("email", ""), key=f"person_email_{choice}")
            unit = st.text_input("单位", value=person.get("unit", ""), key=f"person_unit_{choice}")
            followed = list(person.get("topics") or [])
            topics = st.multiselect("关注主题", [*known_topics, *(t for t in followed if t not in known_topics)],
                                    default=followed, key=f"person_topics_{choice}", placeholder="不按主题接收")
            if st.form_submit_button("保存人员"):
                replacing = None if choice == NEW else choice
                attempt(lambda: forms.put_person(rules, replacing, name, email, unit, topics, known_topics),
                        f"已保存人员 {name.strip()}。", select=("edit_person", name.strip()))
        if choice != NEW:
            confirm = st.checkbox(f"确认删除 {choice}", key="confirm_remove_person")
            if st.button("删除人员", key="remove_person", disabled=not confirm):
                attempt(lambda: forms.remove_person(rules, choice), f"已删除人员 {choice}。",
                        select=("edit_person", NEW))
