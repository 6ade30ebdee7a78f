"""设置 (admins only): the accounts of users.yaml; adding one goes through the validated, atomic writer.

Sources, keyword groups and alert recipients get their forms in the next phase (same writer:
:func:`yuqing.config_write.write_config` with the start-up models).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import accounts, components
from dashboard.auth import ROLE_LABELS, ROLES, PasswordPolicyError
from yuqing.errors import YuqingError

components.require_page("settings")
backend = components.backend_or_stop()
path = accounts.users_path(backend.settings)

st.title("设置")
st.subheader("账号")
try:
    users = accounts.load_users(path).users
except YuqingError as exc:
    components.fail(f"账号配置有误：{exc}")
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
    try:
        user = accounts.add_user(path, username, display_name, role, password, unit=unit.strip(),
                                 email=email.strip(), rounds=backend.settings.dashboard.password_hash_rounds)
    except PasswordPolicyError as exc:
        st.error(str(exc))
    except YuqingError as exc:  # includes a field that does not fit users.yaml, named
        st.error(f"未能添加账号：{exc}")
    else:
        st.success(f"已添加账号 {user.username}（{ROLE_LABELS[user.role]}）。")
st.caption("修改密码、删除账号、解除锁定：在服务器上运行 `yuqing users passwd|remove|unlock 用户名`。")
