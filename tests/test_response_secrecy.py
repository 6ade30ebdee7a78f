"""保密审查 on real-looking 回应稿 (tests/fixtures/response/draft_*.txt) with the shipped rules."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from response.secrecy import SecrecyFile, SecrecyRules, SensitiveAmount, SensitiveTerm, load_secrecy_rules
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT

DRAFTS = Path(__file__).parent / "fixtures" / "response"
CONFIG = PROJECT_ROOT / "config"
RULES = load_secrecy_rules(CONFIG / "secrecy.yaml", CONFIG)
RULES_PRIVACY = [(name, p.pattern) for name, p in RULES.privacy]


def draft(name: str) -> str:
    return (DRAFTS / name).read_text(encoding="utf-8")


def test_a_clean_draft_has_no_findings() -> None:
    text = draft("draft_clean.txt")
    # 馆内部分区域 (内 + 部分), a public 文号 and the office's landline are fine.
    assert "馆内部分区域" in text and "国办发〔2016〕61号" in text and "0571-87654321" in text
    assert RULES.review(text) == []


def test_a_leaky_draft_shows_each_finding_at_its_position() -> None:
    text = draft("draft_leaky.txt")
    findings = RULES.review(text)
    assert [(f.kind, f.text) for f in findings] == [
        ("个人信息", "13812345678"),
        ("内部文件文号", "市文广旅办〔2018〕225号"),
        ("密级标识", "内部资料"),
        ("密级标识", "不宜公开"),
        ("个人信息", "wangjg@example.com"),
    ]
    for f in findings:
        assert text[f.start: f.end] == f.text and f.reason
    assert "关于全市公共文化场馆安全隐患排查情况的内部通报" in findings[1].reason
    with_names = SecrecyRules.build(SecrecyFile(names=["王建国"]), RULES_PRIVACY)
    assert [f.kind for f in with_names.review(text)][:1] == ["个人姓名"]



def test_document_numbers_in_any_bracket_style_and_amounts_in_any_unit() -> None:
    text = draft("draft_numbers.txt")
    rules = SecrecyRules.build(
        SecrecyFile(
            internal_documents=list(RULES.documents),
            sensitive_amounts=[SensitiveAmount(amount_yuan=Decimal(3_800_000), reason="尚未批复的追加预算")],
            sensitive_terms=[SensitiveTerm(text="智能书库", reason="采购未公示")],
        ),
        RULES_PRIVACY,
    )
    findings = rules.review(text)
    assert [(f.kind, f.text) for f in findings] == [
        ("内部文件文号", "[2023]17号"),  # bare number, same year and serial as 市文广旅发〔2023〕17号: check
        ("敏感金额", "380万元"),
        ("敏感名称", "智能书库"),
    ]
    assert "请核对" in findings[0].reason
    # Another agency's document with the same numbers is not flagged; the same amount written out in 元 is.
    assert rules.review("依据国办发〔2023〕17号文件") == []
    assert [f.text for f in rules.review("追加3,800,000元")] == ["3,800,000元"]
    assert rules.review("追加3,800,001元") == []
    assert [f.text for f in rules.review("见市文广旅发（2023）第17号")] == ["市文广旅发（2023）第17号"]


def test_two_listed_series_sharing_year_and_serial_are_each_found() -> None:
    from response.secrecy import InternalDocument

    rules = SecrecyRules.build(SecrecyFile(internal_documents=[
        InternalDocument(number="市文广旅办〔2018〕12号", title="值班安排"),
        InternalDocument(number="市文广旅发〔2018〕12号", title="场馆安全排查通报"),
    ]), RULES_PRIVACY)
    # the 发 document, listed second: the 办 one has the same year and serial but another code
    (found,) = rules.review("依据市文广旅发〔2018〕12号要求")
    assert found.text == "市文广旅发〔2018〕12号" and "场馆安全排查通报" in found.reason
    (found,) = rules.review("依据市文广旅办〔2018〕12号要求")
    assert found.text == "市文广旅办〔2018〕12号" and "值班安排" in found.reason
    (bare,) = rules.review("见〔2018〕12号")  # no code written: the first that may be it, to check
    assert "请核对" in bare.reason


def test_a_bad_rules_file_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "secrecy.yaml"
    bad.write_text("internal_documents:\n  - number: 225号\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_secrecy_rules(bad, CONFIG)
    assert str(bad) in str(err.value) and "internal_documents[0].number" in str(err.value)
