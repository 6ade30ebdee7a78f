"""The one typed settings object.

Built once at each entry point by :func:`load_settings` from ``config/yuqing.yaml`` (or the file named by
``YUQING_CONFIG``) plus environment variables ``YUQING_<SECTION>__<FIELD>`` (environment wins). Defaults live
here and nowhere else. Nothing is read at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from yuqing.config_files import read_yaml, validation_to_config_error
from yuqing.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "yuqing.yaml"


class _Section(BaseModel):
    """A settings section: unknown keys are errors (a typo must not silently fall back to a default)."""

    model_config = ConfigDict(extra="forbid")


class ElasticsearchSettings(_Section):
    """How to reach the cluster and how indices are laid out."""

    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(
        None, description="file holding the password (a keystore-like secret file, not readable by others)")
    api_key: SecretStr | None = None
    ca_certs: Path | None = None
    verify_certs: bool = True
    request_timeout_s: float = Field(30.0, gt=0)
    index_prefix: str = Field("yuqing", pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    shards: int = Field(1, ge=1)
    replicas: int = Field(0, ge=0)
    bulk_chunk_size: int = Field(500, ge=1)
    refresh_interval: str = "1s"

    @field_validator("password_file")
    @classmethod
    def _readable_secret(cls, value: Path | None) -> Path | None:
        if value is None:
            return value
        try:
            mode = value.stat().st_mode
            text = value.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read the password file {value}: {exc.strerror or exc}") from None
        if mode & 0o004:
            raise ValueError(f"the password file {value} is readable by every user; chmod 600 it")
        if not text:
            raise ValueError(f"the password file {value} is empty")
        return value

    @model_validator(mode="after")
    def _credentials_pair(self) -> ElasticsearchSettings:
        if self.password_file is not None:
            if self.password is not None:
                raise ValueError("give either password or password_file, not both")
            self.password = SecretStr(self.password_file.read_text(encoding="utf-8").strip())
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together")
        return self


class LocalElasticsearchSettings(_Section):
    """The local servers `yuqing es start` fetches with mvn and runs for local use and tests.

    With ``nodes`` 1 and ``secure`` off: the single-node server on ``port``. Otherwise the local cluster under
    ``cluster_home``: ``nodes`` nodes on HTTP ports ``cluster_http_port``+i and transport ports
    ``cluster_transport_port``+i, ``cluster_heap`` each, with TLS and file-realm users when ``secure``.
    """

    version: str = "8.19.8"
    home: Path = Path("/var/lib/yuqing/elasticsearch")
    port: int = Field(9200, ge=1, le=65535)
    heap: str = Field("512m", pattern=r"^\d+[mg]$")
    user: str = "yuqing-es"
    start_timeout_s: float = Field(240.0, gt=0)
    nodes: int = Field(1, ge=1, le=9)
    secure: bool = False
    cluster_home: Path = Path("/var/lib/yuqing/es-cluster")
    cluster_http_port: int = Field(9210, ge=1, le=65526)
    cluster_transport_port: int = Field(9310, ge=1, le=65526)
    cluster_heap: str = Field("256m", pattern=r"^\d+[mg]$")
    cluster_start_timeout_s: float = Field(600.0, gt=0)
    # Local-cluster nodes favour start-up time over peak speed on a small machine: the quick JIT only and one
    # GC thread each. Set [] for benchmarks.
    cluster_jvm_options: list[str] = Field(
        default_factory=lambda: ["-XX:TieredStopAtLevel=1", "-XX:ParallelGCThreads=1", "-XX:ConcGCThreads=1"])

    @property
    def cluster(self) -> bool:
        """Whether these settings select the local cluster rather than the single-node server."""
        return self.nodes > 1 or self.secure


class SMTPSettings(_Section):
    host: str | None = None
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    ssl: bool = False
    sender: str = "yuqing@localhost"
    timeout_s: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _tls_modes(self) -> SMTPSettings:
        if self.starttls and self.ssl:
            raise ValueError("choose either starttls or ssl, not both")
        return self


class PathSettings(_Section):
    config_dir: Path = PROJECT_ROOT / "config"
    data_dir: Path = PROJECT_ROOT / "var"
    shared_data: Path = PROJECT_ROOT.parent / "shared" / "data"

    def config_file(self, name: str) -> Path:
        return self.config_dir / name


class ScheduleSettings(_Section):
    crawl_interval_s: int = Field(300, ge=1)
    # The post-crawl jobs (alerts first; yuqing.scheduler) run after every crawl and, when no crawl finished
    # for this long, on their own (mail retries and timed digests do not wait for a crawl).
    alert_interval_s: int = Field(60, ge=1)
    crawl_timeout_s: int = Field(1800, ge=1)
    # Start the next crawl child as soon as one finishes and let it load Scrapy and the classifier (the ~20 s
    # start-up) while it waits for the next due sources: a post is crawled that much sooner (bench/freshness.py).
    warm_crawl_child: bool = True
    # The post-crawl job "judgements" writes the 人工研判 of this many past hours into any judged post that does
    # not show it (a failed write, a re-crawl racing the judgement); `yuqing judgements reapply` does all.
    judgement_reconcile_hours: int = Field(48, ge=1)


class CrawlSettings(_Section):
    user_agent: str = "yuqing/0.1 (+public-opinion monitoring of cultural public services)"
    obey_robots: bool = True
    concurrent_requests_per_domain: int = Field(4, ge=1)
    download_timeout_s: int = Field(30, ge=1)
    download_maxsize_mb: int = Field(20, ge=1)
    retry_times: int = Field(2, ge=0)
    retry_backoff_s: float = Field(1.0, ge=0, description="wait before the first retry; doubles each retry")
    retry_backoff_max_s: float = Field(30.0, ge=0)
    autothrottle: bool = True
    proxy: str | None = None
    silent_after_runs: int = Field(3, ge=1, description="runs yielding nothing before a source is 'silent'")
    dedupe: bool = True
    segment_workers: int = Field(1, ge=0, description="worker processes for jieba segmentation (0: in-process)")
    ingest_batch_size: int = Field(100, ge=1, description="posts ingested together (one bulk request)")
    redis_url: str | None = Field(None, description="scrapy-redis shared queue and dupefilter, e.g. redis://h:6379/0")
    redis_run_id: str | None = Field(
        None, description="run shared by the machines of one distributed crawl; default: the schedule slot")


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LoggingSettings(_Section):
    """Logging of every process (yuqing.logs): the console at ``level``, the full detail in a rotated file."""

    level: LogLevel = "INFO"
    to_file: bool = True
    file: Path | None = Field(None, description="default: <paths.data_dir>/log/yuqing.log")
    file_level: LogLevel = "DEBUG"
    max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="size at which the file is rotated")
    backup_count: int = Field(5, ge=0, description="rotated files kept (yuqing.log.1, …)")

    @field_validator("level", "file_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class NLPSettings(_Section):
    enabled: bool = True
    model_dir: Path = PROJECT_ROOT / "models" / "yuqing-zh-small"
    threads: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int = Field(256, ge=8)
    # relevance probability at which a post is relevant: chosen on the dev folds when the shipped model was
    # trained (models/yuqing-zh-small/metrics.json -> selection.deployed_threshold; a test keeps them equal)
    relevance_threshold: float = Field(0.3557, ge=0.0, le=1.0)
    keyword_max_chars: int = Field(5000, ge=1)  # keywords / names are extracted from the text's head only


class DashboardSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8501, ge=1, le=65535)
    page_size: int = Field(50, ge=1, le=500)
    cache_ttl_s: int = Field(30, ge=0)
    # Login (dashboard/auth.py): users in <config_dir>/users.yaml, managed with `yuqing users`.
    session_ttl_min: int = Field(480, ge=1, description="a login lasts this long, then the user signs in again")
    login_max_failures: int = Field(5, ge=1, description="failed logins per user before the account is locked")
    login_lockout_min: int = Field(15, ge=1, description="how long a locked account stays locked")
    password_hash_rounds: int = Field(12, ge=4, le=16, description="bcrypt cost of new password hashes")
    export_max_rows: int = Field(50000, ge=1, le=1_000_000, description="rows in one CSV/Excel export at most")
    refresh_s: int = Field(60, ge=5, description="live panels of 总览 refresh themselves this often (seconds)")
    judge_margin: float = Field(0.15, gt=0.0, le=0.5, description=(
        "人工研判 queue 模型拿不准: posts whose relevance probability is within this of nlp.relevance_threshold"))


class DeliverySettings(_Section):
    """How the outbox sender (alerts.outbox.Sender, a thread of `yuqing run`) delivers and retries."""

    max_attempts: int = Field(8, ge=1, description="attempts per mail before it is 'failed' (shown on the dashboard)")
    backoff_base_s: float = Field(30.0, gt=0, description="wait after the first failed attempt; doubles each time")
    backoff_max_s: float = Field(1800.0, gt=0)
    # A 'sending' claim older than this is taken over: longer than one SMTP conversation can take.
    lease_s: float = Field(300.0, gt=0)
    batch_size: int = Field(50, ge=1)
    poll_interval_s: float = Field(5.0, gt=0, description="how often the sender looks for due mails")


class AlertSettings(_Section):
    dashboard_url: str = "http://127.0.0.1:8501"
    # The rules file (post rules, signal rules, people, report recipients); relative to paths.config_dir.
    rules_file: Path = Path("alerts.yaml")
    # Post rules look at posts fetched within this window before a run (the outbox keeps each match once).
    lookback_hours: float = Field(48.0, gt=0)
    # Matches one post rule decides in one run at most (the rest in the next run).
    max_per_run: int = Field(200, ge=1)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    # 舆情日报 every day at daily_report_at, 周报 on weekly_report_day (1 = Monday) at weekly_report_at (local
    # time, `timezone`); recipients in the rules file (`reports:`). Empty time: not sent.
    daily_report_at: str | None = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekly_report_day: int = Field(1, ge=1, le=7)
    weekly_report_at: str | None = Field("08:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    # A font file for the Chinese chart labels; default: fontconfig's Noto Sans CJK (fonts-noto-cjk).
    cjk_font: Path | None = None


class DemoSettings(_Section):
    """The demo site `yuqing up` starts (yuqing/demo): a corpus written for the demo replayed with its times
    shifted to now, joined by the shared data's real pages and board messages when present."""

    host: str = "127.0.0.1"
    port: int = Field(8601, ge=0, le=65535)
    # Real seconds per story minute after the start: 1.0 brings the rising story (minutes 0-300) in over the
    # first five minutes; 60 replays it in real time. Posts of the past are published at once.
    minute_s: float = Field(1.0, gt=0)
    # Story minutes over which a social post's engagement grows to its final counts (in four steps).
    ramp_minutes: float = Field(60.0, ge=0)
    join_shared: bool = True  # real pages and board messages of paths.shared_data join when present
    shared_messages: int = Field(60, ge=0, description="real board messages joining the replay (holdout excluded)")
    # `up` first removes what an earlier run crawled from the demo site, so the story starts over.
    fresh: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="YUQING_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    local_es: LocalElasticsearchSettings = Field(default_factory=LocalElasticsearchSettings)
    smtp: SMTPSettings = Field(default_factory=SMTPSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    nlp: NLPSettings = Field(default_factory=NLPSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; environment variables override it.
        return env_settings, init_settings

    def config_file(self, name: str) -> Path:
        return self.paths.config_file(name)

    def require_smtp(self) -> SMTPSettings:
        """SMTP settings for a component that sends mail; refuses to go on without a host."""
        if not self.smtp.host:
            raise ConfigError(
                "alerts need an SMTP server: set smtp.host in the config file or YUQING_SMTP__HOST",
                field="smtp.host",
            )
        return self.smtp


def _resolve_relative(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the config file are relative to the file's folder's parent (the project root)."""
    for section, keys in (("paths", None), ("logging", ("file",))):
        values = data.get(section)
        if isinstance(values, dict):
            for key, value in list(values.items()):
                if (keys is None or key in keys) and isinstance(value, str) and not Path(value).is_absolute():
                    values[key] = str((base / value).resolve())


def load_settings(config_path: Path | str | None = None, *, overrides: Mapping[str, Any] | None = None) -> Settings:
    """Build the settings object from the config file and the environment.

    ``config_path`` defaults to ``$YUQING_CONFIG`` or ``config/yuqing.yaml`` (which may be absent: then
    the defaults apply). ``overrides`` (section -> values) are applied over the file, under the environment.
    A malformed file or a bad value raises :class:`ConfigError` naming the file and the field.
    """
    explicit = config_path or os.environ.get("YUQING_CONFIG")
    path = Path(explicit or DEFAULT_CONFIG)
    data: Any = read_yaml(path) if explicit or path.exists() else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}", file=path)
    _resolve_relative(data, path.resolve().parent.parent)
    for section, values in (overrides or {}).items():
        if isinstance(values, Mapping):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    try:
        return Settings(**data)
    except ValidationError as exc:
        err = validation_to_config_error(exc, path)
        env_name = "YUQING_" + (err.field or "").replace(".", "__").upper()
        if err.field and env_name in os.environ:
            raise validation_to_config_error(exc, f"environment variable {env_name}") from exc
        raise err from exc
