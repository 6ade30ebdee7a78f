"""`yuqing users add|passwd|list|remove|unlock`: the dashboard's accounts in ``<config_dir>/users.yaml``.

Passwords are typed twice at a hidden prompt (getpass) or, for scripts, read as one line from standard input
with ``--password-stdin``; they are never echoed, logged or accepted as a command-line argument (which would
show in the shell history and the process list).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from yuqing.settings import Settings


def read_password(args: argparse.Namespace, stdin: TextIO | None = None) -> str:
    """The new password: one line of stdin with ``--password-stdin``, else typed twice at a hidden prompt."""
    from yuqing.errors import YuqingError

    stream = stdin or sys.stdin
    if args.password_stdin:
        line = stream.readline()
        if not line:
            raise YuqingError("--password-stdin: nothing on standard input")
        return line.rstrip("\r\n")
    if not stream.isatty():
        raise YuqingError("no terminal to type a password at: pipe it in with --password-stdin")
    first = getpass.getpass("新密码: ")
    if getpass.getpass("再次输入新密码: ") != first:
        raise YuqingError("两次输入的密码不一致")
    return first


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard import accounts
    from dashboard.auth import ROLE_LABELS, PasswordPolicyError
    from yuqing.errors import YuqingError

    path = accounts.users_path(settings)
    rounds = settings.dashboard.password_hash_rounds
    try:
        if args.users_command == "list":
            users = accounts.load_users(path).users
            if not users:
                print(f"no users in {path}: add one with `yuqing users add NAME --name 姓名 --role admin`")
            for u in users:
                print("\t".join([u.username, u.display_name, f"{u.role}（{ROLE_LABELS[u.role]}）", u.unit or "-",
                                 u.email or "-"]))
        elif args.users_command == "add":
            accounts.add_user(path, args.username, args.name, args.role, read_password(args),
                              unit=args.unit, email=args.email, rounds=rounds)
        elif args.users_command == "passwd":
            accounts.set_password(path, args.username, read_password(args), rounds=rounds)
        elif args.users_command == "remove":
            accounts.remove_user(path, args.username)
        elif args.users_command == "unlock":
            store = accounts.AttemptStore(accounts.attempts_path(settings), accounts.login_policy(settings))
            store.update(args.username, lambda _: accounts.AttemptRecord())
            print(f"{args.username}: failed logins cleared")
    except PasswordPolicyError as exc:
        raise YuqingError(str(exc)) from exc
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    from dashboard.auth import ROLES  # pure module: bcrypt and pydantic only

    parser = sub.add_parser("users", help="dashboard accounts (config/users.yaml): add, passwd, list, remove")
    users = parser.add_subparsers(dest="users_command", required=True)
    users.add_parser("list", help="list the accounts")
    add = users.add_parser("add", help="add an account (the password is prompted for)")
    add.add_argument("username", help="login name: lower-case letters, digits, . _ -")
    add.add_argument("--name", required=True, help="display name, e.g. 张三")
    add.add_argument("--role", required=True, choices=ROLES,
                     help="press_officer 宣传人员, leader 领导, analyst 分析人员, admin 管理员")
    add.add_argument("--unit", help="unit or office, e.g. 宣传科")
    add.add_argument("--email")
    passwd = users.add_parser("passwd", help="set a new password (the user's open sessions end)")
    passwd.add_argument("username")
    for p in (add, passwd):
        p.add_argument("--password-stdin", action="store_true", help="read the password as one line of stdin")
    remove = users.add_parser("remove", help="remove an account")
    remove.add_argument("username")
    unlock = users.add_parser("unlock", help="clear an account's failed logins (ends a lock-out)")
    unlock.add_argument("username")
    parser.set_defaults(func=_run)
