"""保密审查 of a response draft: what must not be published, each finding with its position.

Checks (rules are data, config/secrecy.yaml; personal-data patterns are read from config/privacy.yaml, the
same patterns that mask crawled posts):

- 内部文件文号: a document number (``〔2018〕225号``, ``[2018]225号``, ``（2018）225号`` …) that is in the configured
  list of internal / 不予公开 documents. The issuing code before the bracket (``市文广旅办``) must match when the
  text has one; a bare number with the same year and serial is flagged too, for a person to check;
- 密级/内部标识: the words 绝密 / 机密 / 秘密 / 内部资料 / 内部 / 不宜公开 (configurable), except in configured
  harmless contexts such as ``馆内部分区域`` (内 + 部分);
- 个人信息: phone and ID numbers and email addresses (privacy.yaml patterns) and configured personal names;
- 敏感信息: configured names (companies, persons, projects) and amounts (``380万元`` = ``3,800,000元``).

A draft with findings is published only with an explicit override and a reason, recorded in the audit trail
(``response.tickets.publish_response``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yuqing.config_files import load_model
from yuqing.errors import ConfigError

FindingKind = Literal["内部文件文号", "密级标识", "个人信息", "个人姓名", "敏感名称", "敏感金额"]

# A document number: optional issuing code, a four-digit year in brackets, a serial and 号.
_BRACKETS_OPEN = "〔[［【(（"
_BRACKETS_CLOSE = "〕]］】)）"
DOC_NUMBER = re.compile(
    rf"[{re.escape(_BRACKETS_OPEN)}]\s*(?P<year>(?:19|20)\d{{2}})\s*[{re.escape(_BRACKETS_CLOSE)}]\s*第?\s*"
    r"(?P<serial>\d{1,5})\s*号"
)
# The last character of an issuing code (国办发, 文旅函, 市文广旅办, 京政字 …).
_CODE_ENDINGS = "发函字办复通令规电"
# An amount of money: 380万元, 3,800,000元, 1.2亿元, 380万 (a bare number without a unit is no amount).
AMOUNT = re.compile(r"(?<![\d.,])(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?\s*(?P<unit>亿元|万元|元|亿|万)")
_MULTIPLIER = {"元": Decimal(1), "万": Decimal(10_000), "万元": Decimal(10_000), "亿": Decimal(10**8),
               "亿元": Decimal(10**8)}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InternalDocument(_Model):
    number: str = Field(min_length=1, description="e.g. 市文广旅办〔2018〕225号")
    title: str = ""
    reason: str = "内部文件，不予公开"

    @field_validator("number")
    @classmethod
    def _is_number(cls, value: str) -> str:
        if not DOC_NUMBER.search(value):
            raise ValueError(f"{value!r} is not a document number like 市文广旅办〔2018〕225号")
        return value

    def parts(self) -> tuple[str, str, int]:
        """(issuing code, year, serial)."""
        m = DOC_NUMBER.search(self.number)
        assert m is not None  # validated
        return self.number[: m.start()].strip(), m.group("year"), int(m.group("serial"))


class SensitiveTerm(_Model):
    text: str = Field(min_length=1)
    reason: str = "敏感信息，未经批准不得公开"


class SensitiveAmount(_Model):
    amount_yuan: Decimal = Field(gt=0)
    reason: str = "敏感金额，未经批准不得公开"


class SecrecyFile(_Model):
    version: int = 1
    words: list[str] = Field(default_factory=lambda: ["绝密", "机密", "秘密", "内部资料", "内部", "不宜公开"])
    # Longer texts containing a word in which the word is harmless (馆内部分区域: 内 + 部分).
    word_exceptions: list[str] = Field(default_factory=list)
    internal_documents: list[InternalDocument] = Field(default_factory=list)
    # Personal names that must not appear in a published text (complainants, staff on leave …).
    names: list[str] = Field(default_factory=list)
    sensitive_terms: list[SensitiveTerm] = Field(default_factory=list)
    sensitive_amounts: list[SensitiveAmount] = Field(default_factory=list)
    # The personal-data patterns (name + regex), relative to the config folder.
    privacy_file: str = "privacy.yaml"

    @field_validator("words", "word_exceptions", "names")
    @classmethod
    def _no_blank(cls, values: list[str]) -> list[str]:
        if any(not v.strip() for v in values):
            raise ValueError("entries must not be blank")
        return [v.strip() for v in values]


class _PrivacyPattern(BaseModel):
    model_config = ConfigDict(extra="ignore")  # privacy.yaml also carries the masking replacement
    name: str = Field(min_length=1)
    regex: str = Field(min_length=1)


class _PrivacyFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    patterns: list[_PrivacyPattern] = Field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    start: int
    end: int
    kind: FindingKind
    text: str
    reason: str

    def describe(self) -> str:
        return f"[{self.start}-{self.end}] {self.kind}「{self.text}」：{self.reason}"


@dataclass(frozen=True)
class SecrecyRules:
    """The compiled rules (build once with :func:`load_secrecy_rules`, then :meth:`review` any number of drafts)."""

    words: re.Pattern[str] | None
    word_exceptions: tuple[str, ...]
    documents: tuple[InternalDocument, ...]
    privacy: tuple[tuple[str, re.Pattern[str]], ...]
    names: tuple[str, ...]
    terms: tuple[SensitiveTerm, ...]
    amounts: tuple[SensitiveAmount, ...]

    @classmethod
    def build(cls, spec: SecrecyFile, privacy: Sequence[tuple[str, str]] = ()) -> SecrecyRules:
        words = sorted(set(spec.words), key=len, reverse=True)  # 内部资料 before 内部
        return cls(
            words=re.compile("|".join(map(re.escape, words))) if words else None,
            word_exceptions=tuple(spec.word_exceptions),
            documents=tuple(spec.internal_documents),
            privacy=tuple((name, re.compile(regex)) for name, regex in privacy),
            names=tuple(spec.names),
            terms=tuple(spec.sensitive_terms),
            amounts=tuple(spec.sensitive_amounts),
        )

    def review(self, text: str) -> list[Finding]:
        """Every finding in ``text``, in order of position (an overlapping weaker finding is dropped)."""
        found = [
            *self._documents(text), *self._words(text), *self._privacy(text), *self._names(text),
            *self._terms(text), *self._amounts(text),
        ]
        found.sort(key=lambda f: (f.start, -(f.end - f.start)))
        out: list[Finding] = []
        for f in found:
            if out and f.start < out[-1].end and f.end <= out[-1].end:
                continue  # inside an earlier, longer finding
            out.append(f)
        return out

    def _documents(self, text: str) -> list[Finding]:
        out = []
        for m in DOC_NUMBER.finditer(text):
            before = text[: m.start()].rstrip()
            # Every listed document of this year and serial is looked at (series such as 办 and 发 share serials):
            # one whose code precedes the number is this document; else the first one that may be it (no code
            # written, or none listed) is named for a person to check.
            exact: Finding | None = None
            maybe: Finding | None = None
            for doc in self.documents:
                code, year, serial = doc.parts()
                if (year, serial) != (m.group("year"), int(m.group("serial"))):
                    continue
                title = f"《{doc.title}》" if doc.title else ""
                if code and before.endswith(code):
                    start = len(before) - len(code)
                    exact = Finding(start, m.end(), "内部文件文号", text[start: m.end()],
                                    f"{doc.number}{title}：{doc.reason}")
                    break
                if maybe is None and (not code or not before or before[-1] not in _CODE_ENDINGS):
                    maybe = Finding(m.start(), m.end(), "内部文件文号", m.group(0),
                                    f"与内部文件 {doc.number}{title} 年份、序号相同，请核对：{doc.reason}")
            finding = exact or maybe
            if finding is not None:
                out.append(finding)
        return out

    def _words(self, text: str) -> list[Finding]:
        if self.words is None:
            return []
        harmless: list[tuple[int, int]] = []
        for phrase in self.word_exceptions:
            harmless.extend((m.start(), m.end()) for m in re.finditer(re.escape(phrase), text))
        out = []
        for m in self.words.finditer(text):
            if any(s <= m.start() and m.end() <= e for s, e in harmless):
                continue
            out.append(Finding(m.start(), m.end(), "密级标识", m.group(0), f"含“{m.group(0)}”字样，可能涉密或不宜公开"))
        return out

    def _privacy(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "个人信息", m.group(0), f"{name}：个人信息不得公开")
            for name, pattern in self.privacy
            for m in pattern.finditer(text)
        ]

    def _names(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "个人姓名", name, "个人姓名：未经本人同意不得公开")
            for name in self.names
            for m in re.finditer(re.escape(name), text)
        ]

    def _terms(self, text: str) -> list[Finding]:
        return [
            Finding(m.start(), m.end(), "敏感名称", term.text, term.reason)
            for term in self.terms
            for m in re.finditer(re.escape(term.text), text)
        ]

    def _amounts(self, text: str) -> list[Finding]:
        if not self.amounts:
            return []
        out = []
        for m in AMOUNT.finditer(text):
            value = amount_in_yuan(m)
            for amount in self.amounts:
                if value is not None and abs(value - amount.amount_yuan) < Decimal("0.5"):
                    out.append(Finding(m.start(), m.end(), "敏感金额", m.group(0), amount.reason))
                    break
        return out


def amount_in_yuan(match: re.Match[str]) -> Decimal | None:
    """The value of an :data:`AMOUNT` match in 元."""
    digits = match.group("num").replace(",", "")
    frac = match.group("frac")
    try:
        value = Decimal(f"{digits}.{frac}" if frac else digits)
    except InvalidOperation:
        return None
    return value * _MULTIPLIER[match.group("unit")]


def load_secrecy_rules(path: Path, config_dir: Path | None = None) -> SecrecyRules:
    """Rules from ``path`` (absent: the default words only) and the privacy patterns file it names."""
    spec = load_model(path, SecrecyFile) if path.exists() else SecrecyFile()
    base = config_dir or path.parent
    privacy_path = base / spec.privacy_file
    privacy: list[tuple[str, str]] = []
    if privacy_path.exists():
        for p in load_model(privacy_path, _PrivacyFile).patterns:
            try:
                re.compile(p.regex)
            except re.error as exc:
                raise ConfigError(f"not a regular expression: {exc}", file=privacy_path,
                                  field=f"patterns.{p.name}.regex") from exc
            privacy.append((p.name, p.regex))
    elif path.exists():
        raise ConfigError(f"privacy patterns file {privacy_path} not found", file=path, field="privacy_file")
    return SecrecyRules.build(spec, privacy)


def summarize(findings: Sequence[Finding]) -> str:
    """One line for the audit trail: counts by kind, e.g. 内部文件文号×1、个人信息×2."""
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return "、".join(f"{k}×{n}" for k, n in counts.items()) or "无"
