"""专题 keyword groups: users' expressions such as ``图书馆 +闭馆 !招聘``, their matcher, and the equivalent
Elasticsearch query.

Syntax (terms separated by spaces; full-width ``＋ ！`` and the ideographic space are accepted too):

* ``word``   — an *any* term: when the expression has any, at least one of them must occur;
* ``+word``  — a *must* term: it must occur;
* ``!word``  — an *exclude* term: it must not occur;
* ``"two words"`` / ``“两个 词”`` — a quoted phrase (may contain spaces), with or without ``+`` / ``!``.

A term occurs in the title or in the text when its tokens appear there consecutively: Chinese characters one
by one, runs of Latin letters and digits as words, case, spaces and punctuation ignored — exactly what
``match_phrase`` does with the ``standard`` analyzer, so the matcher and the query agree (``"闭馆 装修"``
matches 闭馆装修 and 闭馆，装修; ``KTV`` matches KTV but not KTVs). An expression needs at least one any or
must term (an expression of exclusions alone would match nearly everything).

The groups live in ``config/keyword_groups.yaml``; a bad expression is refused with a :class:`ConfigError`
naming the file and the group. :func:`es_query` builds the equivalent ``bool`` query (``match_phrase`` on
``title`` / ``content``) for evaluating a group on demand against the index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from yuqing.config_files import load_model

_MUST = ("+", "＋")
_EXCLUDE = ("!", "！")
_OPEN = {'"': '"', "“": "”", "「": "」"}
_SPACE = (" ", "\t", "\n", "\u3000")


# the standard analyzer's tokens, near enough: one token per CJK character, words of letters and digits
_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_SEP = "\x1f"


def tokens(text: str) -> list[str]:
    """Lower-cased tokens of ``text`` as the ``standard`` analyzer sees them (CJK characters, words)."""
    return _TOKEN.findall(text.casefold())


def _haystack(text: str) -> str:
    return _SEP + _SEP.join(tokens(text)) + _SEP


def _needle(term: str) -> str:
    return _SEP + _SEP.join(tokens(term)) + _SEP


class ExpressionError(ValueError):
    """A keyword-group expression that cannot be parsed; the message says where and why."""


@dataclass(frozen=True)
class Expression:
    any: tuple[str, ...] = ()
    must: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def matches(self, title: str, text: str) -> bool:
        fields = (_haystack(title), _haystack(text))

        def occurs(term: str) -> bool:
            needle = _needle(term)
            return any(needle in f for f in fields)

        if any(occurs(t) for t in self.exclude):
            return False
        if not all(occurs(t) for t in self.must):
            return False
        return not self.any or any(occurs(t) for t in self.any)

    def __str__(self) -> str:
        def show(t: str) -> str:
            return f'"{t}"' if any(ch in t for ch in _SPACE) else t

        parts = [show(t) for t in self.any] + [f"+{show(t)}" for t in self.must] + [f"!{show(t)}" for t in self.exclude]
        return " ".join(parts)


def parse_expression(source: str) -> Expression:
    """Parse ``source`` (see the module docstring); raises :class:`ExpressionError` on bad input."""
    any_: list[str] = []
    must: list[str] = []
    exclude: list[str] = []
    i, n = 0, len(source)
    while i < n:
        if source[i] in _SPACE:
            i += 1
            continue
        start = i
        target = any_
        if source[i] in _MUST:
            target, i = must, i + 1
        elif source[i] in _EXCLUDE:
            target, i = exclude, i + 1
        if i >= n or source[i] in _SPACE:
            raise ExpressionError(f"第 {start + 1} 个字符“{source[start]}”后面缺少词")
        if source[i] in _MUST + _EXCLUDE:
            raise ExpressionError(f"第 {start + 1} 个字符起连用了两个符号“{source[start:i + 1]}”")
        if source[i] in _OPEN:
            close = _OPEN[source[i]]
            end = source.find(close, i + 1)
            if end < 0:
                raise ExpressionError(f"第 {i + 1} 个字符的引号没有闭合")
            term = " ".join(source[i + 1 : end].split())
            if not term:
                raise ExpressionError(f"第 {i + 1} 个字符的引号内没有内容")
            i = end + 1
            if i < n and source[i] not in _SPACE:
                raise ExpressionError(f"第 {i} 个字符结束的短语后面需要空格")
        else:
            end = i
            while end < n and source[end] not in _SPACE:
                if source[end] in _OPEN or source[end] in _OPEN.values():
                    raise ExpressionError(f"第 {end + 1} 个字符：引号在词的中间，请给整个短语加引号")
                end += 1
            term, i = source[i:end], end
        if not tokens(term):
            raise ExpressionError(f"第 {start + 1} 个字符起的“{term}”不含文字或数字")
        if term not in target:
            target.append(term)
    if not any_ and not must:
        raise ExpressionError("至少需要一个要匹配的词（不能只有 !排除词）")
    overlap = (set(any_) | set(must)) & set(exclude)
    if overlap:
        raise ExpressionError(f"这些词既要求出现又被排除：{'、'.join(sorted(overlap))}")
    return Expression(tuple(any_), tuple(must), tuple(exclude))


def _phrase(term: str, fields: Sequence[str]) -> dict[str, Any]:
    if len(fields) == 1:
        return {"match_phrase": {fields[0]: term}}
    return {"bool": {"should": [{"match_phrase": {f: term}} for f in fields], "minimum_should_match": 1}}


def es_query(expr: Expression, fields: Sequence[str] = ("title", "content")) -> dict[str, Any]:
    """The Elasticsearch query equivalent to ``expr`` (pure; see the module docstring)."""
    body: dict[str, Any] = {}
    if expr.must:
        body["filter"] = [_phrase(t, fields) for t in expr.must]
    if expr.any:
        body["should"] = [{"match_phrase": {f: t}} for t in expr.any for f in fields]
        body["minimum_should_match"] = 1
    if expr.exclude:
        body["must_not"] = [{"match_phrase": {f: t}} for t in expr.exclude for f in fields]
    return {"bool": body}


def groups_filter(names: Iterable[str], field: str = "keyword_groups") -> dict[str, Any]:
    """A filter on the groups stored on posts (alert rules and dashboard filter by them)."""
    return {"terms": {field: sorted(set(names))}}


class KeywordGroup(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    expression: str = Field(min_length=1)
    description: str = ""

    @field_validator("expression")
    @classmethod
    def _parses(cls, value: str, info: ValidationInfo) -> str:
        name = info.data.get("name", "?")
        try:
            parse_expression(value)
        except ExpressionError as exc:
            raise ValueError(f"专题“{name}”：{exc}") from exc
        return value

    @property
    def parsed(self) -> Expression:
        return parse_expression(self.expression)


class KeywordGroups(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: list[KeywordGroup] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> KeywordGroups:
        seen: set[str] = set()
        for g in self.groups:
            if g.name in seen:
                raise ValueError(f"专题名“{g.name}”重复")
            seen.add(g.name)
        return self


class GroupMatcher:
    """All groups parsed once; :meth:`match` lists the groups a post belongs to (in file order)."""

    def __init__(self, groups: Sequence[KeywordGroup]) -> None:
        self._groups = [(g.name, g.parsed) for g in groups]

    def match(self, title: str, text: str) -> tuple[str, ...]:
        return tuple(name for name, expr in self._groups if expr.matches(title, text))

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._groups]


def load_keyword_groups(path: Path) -> KeywordGroups:
    """Read ``config/keyword_groups.yaml``; a missing file means no groups; errors name file and group."""
    if not path.exists():
        return KeywordGroups()
    return load_model(path, KeywordGroups)
