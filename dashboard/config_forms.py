"""What the 设置 page's forms change in the configuration files, without Streamlit: edits of ``sources.yaml``,
``keyword_groups.yaml`` and the alert rules file's recipients (and people, where the file has them), each written
through :func:`yuqing.config_write.write_config` with the start-up model and loader (a bad value is refused with
the file and field named; the file is never half-written; an edit made meanwhile by someone else is not
overwritten).

Each file is edited as its raw YAML data, changing only the part the form shows, so settings the form does not
know survive the write (e.g. a source's selectors).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from alerts.rules import AlertRulesFile, load_alert_config
from events.keyword_groups import KeywordGroups, load_keyword_groups
from yuqing.config_files import read_yaml
from yuqing.config_write import file_digest, write_config
from yuqing.errors import ConfigError
from yuqing.sources import SourcesFile, load_sources

# The settings of a source the quick form changes (the others through its YAML).
SOURCE_BASICS: tuple[str, ...] = ("enabled", "site", "interval_s", "weight", "max_items")
_LIST_SPLIT = re.compile(r"[\s,，、;；]+")


@dataclass(frozen=True)
class Snapshot:
    """A configuration file as an editor read it: its raw data and digest (passed back when writing)."""

    path: Path
    data: dict[str, Any]
    digest: str


def read_snapshot(path: Path) -> Snapshot:
    digest = file_digest(path)
    raw = read_yaml(path) if path.exists() else None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"顶层应为“键: 值”映射，实际是 {type(raw).__name__}", file=path)
    return Snapshot(path=path, data=raw, digest=digest)


def _write(snap: Snapshot, data: dict[str, Any], model: type[BaseModel], check: Callable[[Path], object]) -> None:
    write_config(snap.path, data, model, check=check, expected_digest=snap.digest)


def split_list(text: str) -> list[str]:
    """Words or addresses typed in one cell, separated by spaces, commas, 、 or semicolons."""
    return [t for t in _LIST_SPLIT.split(text.strip()) if t]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and
                                                                              not value.strip())


# ---- items of a list or mapping ----------------------------------------------------------------------------
def _named(items: Sequence[Mapping[str, Any]]) -> list[str]:
    return [str(i.get("name", "")) for i in items]


def _put_item(snap: Snapshot, key: str, item: dict[str, Any], replacing: str | None) -> dict[str, Any]:
    """The file's data with ``item`` appended to the list ``key`` (``replacing`` None) or put in place of the item
    named ``replacing``; a name used by another item is refused."""
    data = copy.deepcopy(snap.data)
    items = list(data.get(key) or [])
    names = _named(items)
    if replacing is not None and replacing not in names:
        raise ConfigError(f"没有名为“{replacing}”的条目（可能刚被他人修改，请刷新页面）", file=snap.path,
                          field=key)
    new_name = str(item.get("name", ""))
    if new_name != replacing and new_name in names:
        raise ConfigError(f"名称“{new_name}”已被使用", file=snap.path,
                          field=f"{key}[{names.index(new_name)}].name")
    if replacing is None:
        items.append(item)
    else:
        items[names.index(replacing)] = item
    data[key] = items
    return data


def _without_item(snap: Snapshot, key: str, name: str) -> dict[str, Any]:
    data = copy.deepcopy(snap.data)
    items = list(data.get(key) or [])
    if name not in _named(items):
        raise ConfigError(f"没有名为“{name}”的条目（可能刚被他人修改，请刷新页面）", file=snap.path, field=key)
    data[key] = [i for i in items if i.get("name") != name]
    return data


def _set_or_drop(item: dict[str, Any], key: str, value: Any) -> None:
    if _blank(value):
        item.pop(key, None)
    else:
        item[key] = value.strip() if isinstance(value, str) else value


# ---- sources ----------------------------------------------------------------------------------------------
def source_names(snap: Snapshot) -> list[str]:
    return _named(snap.data.get("sources") or [])


def source_item(snap: Snapshot, name: str) -> dict[str, Any]:
    for item in snap.data.get("sources") or []:
        if item.get("name") == name:
            return dict(item)
    raise ConfigError(f"没有名为“{name}”的信源", file=snap.path, field="sources")


def save_source_basics(snap: Snapshot, name: str, values: Mapping[str, Any]) -> None:
    """Change a source's enabled/site/interval_s/weight/max_items (an empty value: the default applies)."""
    item = source_item(snap, name)
    for key in SOURCE_BASICS:
        if key in values:
            _set_or_drop(item, key, values[key])
    _write(snap, _put_item(snap, "sources", item, name), SourcesFile, load_sources)


def source_yaml(snap: Snapshot, name: str) -> str:
    """One source as YAML, for the editor of all its settings."""
    return yaml.safe_dump(source_item(snap, name), allow_unicode=True, sort_keys=False)


def source_name_of(text: str) -> str:
    """The name in a source written as YAML ("" when there is none or the YAML is broken)."""
    try:
        item = yaml.safe_load(text)
    except yaml.YAMLError:
        return ""
    return str(item.get("name") or "") if isinstance(item, dict) else ""


def put_source_yaml(snap: Snapshot, text: str, replacing: str | None) -> str:
    """Add a source written as YAML (``replacing`` None) or replace the source named ``replacing``; returns the
    saved source's name."""
    try:
        item = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"信源不是有效的 YAML：{exc}", file=snap.path, field="sources") from exc
    if not isinstance(item, dict) or not item.get("name"):
        raise ConfigError("信源至少需要 name、kind 和 start_urls", file=snap.path, field="sources")
    _write(snap, _put_item(snap, "sources", item, replacing), SourcesFile, load_sources)
    return str(item["name"])


def remove_source(snap: Snapshot, name: str) -> None:
    _write(snap, _without_item(snap, "sources", name), SourcesFile, load_sources)


# ---- 专题 keyword groups ------------------------------------------------------------------------------------
def group_names(snap: Snapshot) -> list[str]:
    return _named(snap.data.get("groups") or [])


def group_item(snap: Snapshot, name: str) -> dict[str, Any]:
    return next((dict(g) for g in snap.data.get("groups") or [] if g.get("name") == name), {})


def put_group(snap: Snapshot, replacing: str | None, name: str, expression: str, description: str = "") -> None:
    item = group_item(snap, replacing) if replacing else {}
    item.update({"name": name.strip(), "expression": expression.strip()})
    _set_or_drop(item, "description", description)
    _write(snap, _put_item(snap, "groups", item, replacing), KeywordGroups, load_keyword_groups)


def remove_group(snap: Snapshot, name: str) -> None:
    _write(snap, _without_item(snap, "groups", name), KeywordGroups, load_keyword_groups)


# ---- alert recipients and people ---------------------------------------------------------------------------
def has_people() -> bool:
    """Whether the alert rules file has a ``people`` directory (the signal rules of the alerts component)."""
    return "people" in AlertRulesFile.model_fields


def recipient_groups(snap: Snapshot) -> dict[str, list[str]]:
    return {str(k): list(v or []) for k, v in (snap.data.get("recipients") or {}).items()}


def put_recipient_group(snap: Snapshot, replacing: str | None, name: str, addresses: str) -> None:
    """Add or change a recipient group (addresses separated by spaces, commas, 、 or new lines); a renamed group
    keeps its place. A rule that names a group that no longer exists is refused by the loader, naming it."""
    name = name.strip()
    groups = recipient_groups(snap)
    if replacing is not None and replacing not in groups:
        raise ConfigError(f"没有名为“{replacing}”的收件人组", file=snap.path, field="recipients")
    if name != replacing and name in groups:
        raise ConfigError(f"收件人组“{name}”已存在", file=snap.path, field=f"recipients.{name}")
    entries = list(groups.items())
    value = split_list(addresses)
    if replacing is None:
        entries.append((name, value))
    else:
        entries = [(name, value) if k == replacing else (k, v) for k, v in entries]
    data = copy.deepcopy(snap.data)
    data["recipients"] = dict(entries)
    _write(snap, data, AlertRulesFile, load_alert_config)


def remove_recipient_group(snap: Snapshot, name: str) -> None:
    groups = recipient_groups(snap)
    if name not in groups:
        raise ConfigError(f"没有名为“{name}”的收件人组", file=snap.path, field="recipients")
    data = copy.deepcopy(snap.data)
    data["recipients"] = {k: v for k, v in groups.items() if k != name}
    _write(snap, data, AlertRulesFile, load_alert_config)


def people_names(snap: Snapshot) -> list[str]:
    return _named(snap.data.get("people") or [])


def person_item(snap: Snapshot, name: str) -> dict[str, Any]:
    return next((dict(p) for p in snap.data.get("people") or [] if p.get("name") == name), {})


def put_person(snap: Snapshot, replacing: str | None, name: str, email: str, unit: str, topics: Sequence[str],
               known_topics: Collection[str] | None = None) -> None:
    """Add or change a person of the directory (their other settings kept); with ``known_topics`` (the
    taxonomy's) the topics they follow must be among them."""
    item = person_item(snap, replacing) if replacing else {}
    item["name"] = name.strip()
    _set_or_drop(item, "email", email)
    _set_or_drop(item, "unit", unit)
    _set_or_drop(item, "topics", [t.strip() for t in topics if t.strip()] or None)
    _write(snap, _put_item(snap, "people", item, replacing), AlertRulesFile,
           partial(load_alert_config, topics=known_topics))


def remove_person(snap: Snapshot, name: str) -> None:
    _write(snap, _without_item(snap, "people", name), AlertRulesFile, load_alert_config)
