"""Security of the local cluster: TLS certificates, file-realm users and least-privilege roles.

* A CA made by ``elasticsearch-certutil ca`` and one certificate per node made by ``elasticsearch-certutil cert``
  with that CA, each with the SANs 127.0.0.1 and localhost, used for HTTP and transport TLS.
* Users of the file realm made by ``elasticsearch-users``: the application user, a read-only analyst and an
  operator (superuser: snapshots, cluster settings). Their passwords are generated here, never hard-coded, and
  kept in ``<cluster_home>/secrets`` (a folder only its owner can open; files mode 600).
* The roles (``roles.yml``): :func:`roles` is the single definition, also shown in the README.

The CA key and the passwords stay in the secrets folder; only certificates, node keys and the realm files are
copied into the nodes' config folders.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from index.es_server import Distribution, LocalESError

log = logging.getLogger(__name__)

APP_USER = "yuqing_app"
ANALYST_USER = "yuqing_analyst"
ADMIN_USER = "yuqing_admin"
APP_ROLE = "yuqing_app"
ANALYST_ROLE = "yuqing_analyst"
#: user -> role; the operator account uses the built-in superuser role.
USER_ROLES: dict[str, str] = {APP_USER: APP_ROLE, ANALYST_USER: ANALYST_ROLE, ADMIN_USER: "superuser"}

# The tools are short-lived JVMs: the C1 compiler and the serial collector start them noticeably faster.
_CLI_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def roles(prefix: str) -> dict[str, Any]:
    """The roles of ``roles.yml`` for indices named ``<prefix>-*``.

    The application needs, on its own indices only: create them (``create_index``), put aliases and refresh
    (``manage``), read and write documents; on the cluster: put its index templates
    (``manage_index_templates``) and read cluster health (``monitor``). The analyst may only read.
    """
    pattern = f"{prefix}-*"  # a new list per role: a shared one would be written as a YAML alias
    return {
        APP_ROLE: {
            "cluster": ["monitor", "manage_index_templates"],
            "indices": [
                {"names": [pattern], "privileges": ["create_index", "manage", "read", "write", "view_index_metadata"]}
            ],
        },
        ANALYST_ROLE: {
            "cluster": ["monitor"],
            "indices": [{"names": [pattern], "privileges": ["read", "view_index_metadata"]}],
        },
    }


def roles_yaml(prefix: str) -> str:
    return yaml.safe_dump(roles(prefix), sort_keys=False, allow_unicode=True)


def generate_password() -> str:
    """A random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created with mode 600, never wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Credentials:
    """The generated passwords of the local cluster's users."""

    passwords: dict[str, str]

    def password(self, user: str) -> str:
        return self.passwords[user]

    def __repr__(self) -> str:  # never show a password in a traceback or a log
        return f"Credentials(users={sorted(self.passwords)})"


class ClusterSecurity:
    """Certificates, users and roles of the local cluster under ``home`` (idempotent steps)."""

    def __init__(self, dist: Distribution, home: Path) -> None:
        self.dist = dist
        self.home = home

    # -- layout ---------------------------------------------------------------------------------------
    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def certs_dir(self) -> Path:
        """Certificates and node keys, copied into each node's config (``config/certs``)."""
        return self.home / "certs"

    @property
    def realm_dir(self) -> Path:
        """The file realm (``users``, ``users_roles``, ``roles.yml``), copied into each node's config."""
        return self.home / "realm"

    @property
    def ca_cert(self) -> Path:
        """The CA certificate clients trust: ``elasticsearch.ca_certs``."""
        return self.certs_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.secrets_dir / "ca" / "ca.key"

    @property
    def credentials_file(self) -> Path:
        return self.secrets_dir / "credentials.json"

    def password_file(self, user: str) -> Path:
        """A file holding only ``user``'s password: ``elasticsearch.password_file``."""
        return self.secrets_dir / f"{user}.password"

    # -- tools ----------------------------------------------------------------------------------------
    def _tool(self, name: str, args: list[str], *, stdin: str | None = None) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": self.dist.java_home(),
            "ES_PATH_CONF": str(self.realm_dir),
            "CLI_JAVA_OPTS": _CLI_JAVA_OPTS,
            "HOME": str(self.home),
        }
        proc = subprocess.run(
            [str(self.dist.bin(name)), *args], input=stdin, capture_output=True, text=True, env=env, check=False
        )
        if proc.returncode != 0:
            # The output of these tools never holds a password (it is given on stdin, never echoed).
            output = (proc.stdout + proc.stderr)[-1500:]
            raise LocalESError(f"{name} {args[0]} failed (exit {proc.returncode}): {output}")

    def _prepare_dirs(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.secrets_dir.mkdir(mode=0o700, exist_ok=True)
        self.secrets_dir.chmod(0o700)
        self.certs_dir.mkdir(exist_ok=True)
        self.realm_dir.mkdir(exist_ok=True)

    # -- certificates ---------------------------------------------------------------------------------
    def ensure_certificates(self, node_names: list[str]) -> None:
        """A CA (made once) and a certificate for each node that has none yet."""
        self._prepare_dirs()
        if not (self.ca_key.exists() and self.ca_cert.exists()):
            log.info("creating the local cluster's CA with elasticsearch-certutil")
            out = self.secrets_dir / "ca.zip"
            out.unlink(missing_ok=True)
            self._tool("elasticsearch-certutil", ["ca", "--silent", "--pem", "--days", "3650", "--out", str(out)])
            self._unzip(out, self.secrets_dir)
            shutil.copyfile(self.secrets_dir / "ca" / "ca.crt", self.ca_cert)
            self.ca_cert.chmod(0o644)
            for name in node_names:  # certificates of an earlier CA are of no use any more
                for suffix in (".crt", ".key"):
                    (self.certs_dir / f"{name}{suffix}").unlink(missing_ok=True)
        missing = [n for n in node_names if not (self.certs_dir / f"{n}.crt").exists()]
        if not missing:
            return
        log.info("creating TLS certificates for %s with elasticsearch-certutil", ", ".join(missing))
        instances = self.secrets_dir / "instances.yml"
        instances.write_text(yaml.safe_dump(
            {"instances": [{"name": n, "ip": ["127.0.0.1"], "dns": ["localhost"]} for n in missing]}
        ))
        out = self.secrets_dir / "certs.zip"
        out.unlink(missing_ok=True)
        self._tool("elasticsearch-certutil", [
            "cert", "--silent", "--pem", "--days", "3650", "--ca-cert", str(self.secrets_dir / "ca" / "ca.crt"),
            "--ca-key", str(self.ca_key), "--in", str(instances), "--out", str(out),
        ])
        staging = self.secrets_dir / "certs"
        shutil.rmtree(staging, ignore_errors=True)
        self._unzip(out, staging)
        for name in missing:
            for suffix in (".key", ".crt"):
                target = self.certs_dir / f"{name}{suffix}"
                shutil.copyfile(staging / name / f"{name}{suffix}", target)
                target.chmod(0o600 if suffix == ".key" else 0o644)
        shutil.rmtree(staging)

    @staticmethod
    def _unzip(path: Path, target: Path) -> None:
        with zipfile.ZipFile(path) as zf:
            zf.extractall(target)
        for p in target.rglob("*"):
            if p.is_file():
                p.chmod(0o600)
        path.unlink()

    def node_certificates(self, node_name: str) -> dict[str, Path]:
        """Files a node's ``config/certs`` folder gets: the CA certificate, its certificate and key."""
        return {
            "ca.crt": self.ca_cert,
            f"{node_name}.crt": self.certs_dir / f"{node_name}.crt",
            f"{node_name}.key": self.certs_dir / f"{node_name}.key",
        }

    # -- users and roles ------------------------------------------------------------------------------
    def write_roles(self, prefix: str) -> None:
        self._prepare_dirs()
        (self.realm_dir / "roles.yml").write_text(roles_yaml(prefix), encoding="utf-8")

    def load_credentials(self) -> Credentials | None:
        try:
            data = json.loads(self.credentials_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise LocalESError(f"cannot read {self.credentials_file}: {exc}") from exc
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, dict) or set(users) != set(USER_ROLES):
            raise LocalESError(f"{self.credentials_file} does not hold the users {sorted(USER_ROLES)}")
        return Credentials({str(k): str(v) for k, v in users.items()})

    def ensure_users(self, prefix: str) -> Credentials | None:
        """Create the file-realm users with generated passwords unless they exist.

        Returns the new credentials when they were made now (to be shown once), else None.
        """
        self.write_roles(prefix)
        users_file = self.realm_dir / "users"
        existing = self.load_credentials()
        if existing is not None and users_file.exists():
            return None
        log.info("creating the local cluster's users %s with elasticsearch-users", ", ".join(USER_ROLES))
        for name in ("users", "users_roles"):
            (self.realm_dir / name).write_text("")
        creds = Credentials({user: generate_password() for user in USER_ROLES})
        for user, role in USER_ROLES.items():
            pw = creds.password(user)
            # The password goes to the tool on stdin (its prompt and confirmation), never on a command line.
            self._tool("elasticsearch-users", ["useradd", user, "-r", role], stdin=f"{pw}\n{pw}\n")
        for user in USER_ROLES:
            write_private(self.password_file(user), creds.password(user) + "\n")
        write_private(self.credentials_file, json.dumps({"users": creds.passwords}, indent=2) + "\n")
        return creds

    def realm_files(self) -> dict[str, Path]:
        """Files each node's config folder gets for the file realm."""
        return {name: self.realm_dir / name for name in ("users", "users_roles", "roles.yml")}
