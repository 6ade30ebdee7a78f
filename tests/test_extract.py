"""Article extraction: hand-checked real pages, selectors, rules loading and malformed input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from crawlers.encoding import decode_html
from crawlers.extract import (
    ExtractedArticle,
    ExtractionRules,
    extract_article,
    load_extraction_rules,
)
from crawlers.extract.rules import EXTRACTION_CONFIG_NAME
from yuqing.errors import ConfigError
from yuqing.settings import load_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=SHANGHAI)
FIXTURES = Path(__file__).parent / "fixtures" / "extraction_expected.yaml"
MIN_MATCHING_PAGES = 20
# first_sentence must start within this many characters of the content's start; last_sentence must end
# within this many characters of its end (credit lines such as "新京报记者 陆一夫" may follow it).
EDGE_WINDOW = 200


def _expected_pages() -> list[dict[str, str]]:
    data = yaml.safe_load(FIXTURES.read_text(encoding="utf-8"))
    pages: list[dict[str, str]] = data["pages"]
    return pages


PAGES = _expected_pages()


@pytest.fixture(scope="module")
def gne_dir() -> Path:
    """The saved pages; a missing folder is an error (these tests must not silently vanish)."""
    shared = load_settings().paths.shared_data
    folder = shared / "html" / "gne"
    if not (folder / "tests").is_dir():
        pytest.fail(
            f"shared test pages not found at {folder}: set paths.shared_data in config/yuqing.yaml "
            "or YUQING_PATHS__SHARED_DATA to the folder holding html/gne (normally ../shared/data)",
            pytrace=False,
        )
    return folder


@pytest.fixture(scope="module")
def rules() -> ExtractionRules:
    return load_extraction_rules(load_settings().paths.config_file(EXTRACTION_CONFIG_NAME))


@dataclass(frozen=True)
class Verdict:
    path: str
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _judge(page: dict[str, str], article: ExtractedArticle) -> Verdict:
    problems: list[str] = []
    if article.title != page["title"]:
        problems.append(f"title {article.title!r} != {page['title']!r}")
    got = (
        article.published_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") if article.published_at else None
    )
    if got != page["published_at"]:
        problems.append(f"published_at {got} != {page['published_at']}")
    content = article.content
    first = content.find(page["first_sentence"])
    if first < 0 or first > EDGE_WINDOW:
        problems.append(f"first sentence at {first}; content starts {content[:80]!r}")
    last = content.rfind(page["last_sentence"])
    if last < 0 or len(content) - (last + len(page["last_sentence"])) > EDGE_WINDOW:
        problems.append(f"last sentence at {last} of {len(content)}; content ends {content[-80:]!r}")
    return Verdict(page["path"], tuple(problems))


def _extract(gne_dir: Path, rel: str, rules: ExtractionRules) -> ExtractedArticle:
    text, _ = decode_html((gne_dir / rel).read_bytes())
    return extract_article(text, rules=rules, now=NOW)


def test_fixture_file_lists_enough_distinct_pages(gne_dir: Path) -> None:
    paths = [p["path"] for p in PAGES]
    assert len(paths) == len(set(paths)), "a page is listed twice"
    assert len(paths) - sum(1 for p in PAGES if p.get("known_miss")) >= MIN_MATCHING_PAGES
    for page in PAGES:
        assert (gne_dir / page["path"]).is_file(), page["path"]
        for key in ("title", "published_at", "first_sentence", "last_sentence"):
            assert page.get(key), f"{page['path']}: {key} missing"


@pytest.mark.parametrize("page", PAGES, ids=[p["path"] for p in PAGES])
def test_hand_checked_page(page: dict[str, str], gne_dir: Path, rules: ExtractionRules) -> None:
    verdict = _judge(page, _extract(gne_dir, page["path"], rules))
    if page.get("known_miss"):
        assert not verdict.ok, f"{page['path']} now matches: remove its known_miss mark"
    else:
        assert verdict.ok, f"{page['path']}: " + "; ".join(verdict.problems)


def test_match_count(gne_dir: Path, rules: ExtractionRules, capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = [_judge(p, _extract(gne_dir, p["path"], rules)) for p in PAGES]
    matched = [v.path for v in verdicts if v.ok]
    with capsys.disabled():
        print(f"\nextraction: {len(matched)}/{len(verdicts)} hand-checked pages match")
        for v in verdicts:
            if not v.ok:
                print(f"  miss {v.path}: {'; '.join(v.problems)}")
    assert len(matched) >= MIN_MATCHING_PAGES
    stale = [p["path"] for p in PAGES if p.get("known_miss") and p["path"] in matched]
    assert not stale, f"marked as known misses but matching: {stale}"


# --- behaviour on small, written-here documents -------------------------------------------------------

ARTICLE = """<html><head><title>市图书馆延长开放时间_文化新闻_某某网</title>
<meta name="author" content="李明"></head><body>
<div class="nav"><a href="/">首页</a> <a href="/a">文化</a> <a href="/b">旅游</a> <a href="/c">体育</a></div>
<h1>市图书馆延长开放时间</h1><div class="info">发布时间：2024-03-05 09:30 来源：文化局</div>
<div class="article">
<p>为满足市民阅读需求，市图书馆自三月起延长开放时间，每晚开放至二十一点。</p>
<p>图书馆负责人表示，延长开放时间后，自习区、少儿阅览区和报刊区将同步开放，读者可凭证入馆。</p>
<p>据统计，去年全年图书馆接待读者超过一百二十万人次，同比增长百分之十五。</p>
<p>责任编辑：王芳</p>
</div>
<div class="share">分享到：微博 微信</div>
<div class="comment"><p>网友评论：这真是太好了，终于可以晚上去看书了，点赞！</p></div>
<script>var x = "不应出现在正文里的脚本文字，，，，。。。";</script>
</body></html>"""


def test_small_article(rules: ExtractionRules) -> None:
    art = extract_article(ARTICLE, "https://culture.example.cn/a/1.html", rules=rules, now=NOW)
    assert art.title == "市图书馆延长开放时间"
    assert art.published_at == datetime(2024, 3, 5, 9, 30, tzinfo=SHANGHAI)
    assert art.author == "李明"
    assert art.site == "某某网"
    lines = art.content.split("\n")
    assert lines[0].startswith("为满足市民阅读需求")
    assert lines[-1].startswith("据统计")
    assert "责任编辑" not in art.content and "网友评论" not in art.content and "脚本" not in art.content


def test_site_falls_back_to_url_host(rules: ExtractionRules) -> None:
    art = extract_article(
        "<html><head><title>标题</title></head><body><p>正文。</p></body></html>",
        "https://www.example.org/x",
        rules=rules,
        now=NOW,
    )
    assert art.site == "www.example.org"


def test_css_and_xpath_selectors(rules: ExtractionRules) -> None:
    css = extract_article(ARTICLE, rules=rules, now=NOW, body_selector="div.info", title_selector="title")
    assert css.content == "发布时间：2024-03-05 09:30 来源：文化局"
    assert css.title == "市图书馆延长开放时间_文化新闻_某某网"
    xp = extract_article(ARTICLE, rules=rules, now=NOW, body_selector="//div[@class='article']/p[2]")
    assert xp.content.startswith("图书馆负责人表示")
    with pytest.raises(ValueError, match="invalid selector"):
        extract_article(ARTICLE, rules=rules, now=NOW, body_selector="div[[[")


def test_relative_byline_resolved_against_now(rules: ExtractionRules) -> None:
    page = ARTICLE.replace("发布时间：2024-03-05 09:30", "3小时前")
    art = extract_article(page, rules=rules, now=NOW)
    assert art.published_at == datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI)


def test_wechat_style_script_time(rules: ExtractionRules) -> None:
    page = (
        '<html><head><title>公众号文章</title></head><body><h1 class="rich_media_title">公众号文章</h1>'
        '<em id="publish_time">昨天</em><div id="js_content">'
        "<p>这是一篇公众号文章的第一段，内容足够长，有标点。</p>"
        "<p>这是第二段，同样足够长，也有标点符号。</p></div>"
        '<script>var ct = "1581517074";</script></body></html>'
    )
    art = extract_article(page, rules=rules, now=NOW)
    assert art.published_at == datetime(2020, 2, 12, 22, 17, 54, tzinfo=SHANGHAI)
    assert art.content.startswith("这是一篇公众号文章的第一段")


# --- malformed input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "html",
    [
        "",
        "   ",
        "<",
        "<<>>",
        "<html>",
        "<html><body>",
        "<p>",
        "<!-- only a comment -->",
        "</div>",
        "<html><head><title>t",
    ],
)
def test_empty_or_trivial_html_gives_empty_fields(html: str, rules: ExtractionRules) -> None:
    art = extract_article(html, rules=rules, now=NOW)
    assert art.content == ""
    assert art.published_at is None


def test_truncated_real_page(gne_dir: Path, rules: ExtractionRules) -> None:
    text, _ = decode_html((gne_dir / "tests/163/1.html").read_bytes())
    full = extract_article(text, rules=rules, now=NOW)
    # Cut in the middle of the body: what precedes is still found, nothing raises.
    cut = text[: text.find("近日，龙湖集团公布了2019年中期业绩报告") + 30]
    art = extract_article(cut, rules=rules, now=NOW)
    assert art.title == full.title
    assert art.published_at == full.published_at
    assert "2019年，龙湖集团即将迎来赴港上市10周年" in art.content
    # Cut inside a tag and inside the head.
    for size in (10, 500, 5000, len(text) // 2):
        extract_article(text[:size], rules=rules, now=NOW)


def test_broken_markup_still_extracts(rules: ExtractionRules) -> None:
    broken = ARTICLE.replace("</p>", "").replace("</div>", "").replace("<p>", "<p><span><b>")
    art = extract_article(broken, rules=rules, now=NOW)
    assert art.title == "市图书馆延长开放时间"
    assert "为满足市民阅读需求" in art.content


def test_control_characters_and_xml_declaration(rules: ExtractionRules) -> None:
    page = '<?xml version="1.0" encoding="utf-8"?>\n' + ARTICLE.replace("市民阅读", "市民\x00阅\x07读")
    art = extract_article(page, rules=rules, now=NOW)
    assert "为满足市民阅读需求" in art.content


def test_non_html_garbage_raises_value_error(rules: ExtractionRules) -> None:
    with pytest.raises(ValueError, match="does not look like HTML"):
        extract_article("\x89PNG\r\n\x1a\n" + "binary" * 100, rules=rules, now=NOW)
    with pytest.raises(ValueError):
        extract_article("just a sentence of plain text.", rules=rules, now=NOW)
    with pytest.raises(ValueError):
        extract_article("<" + "\ufffd\x01\x02" * 500, rules=rules, now=NOW)


def test_deeply_nested_divs_bounded_time(rules: ExtractionRules) -> None:
    depth = 5 * 1024 * 1024 // len("<div></div>")
    html = (
        "<html><body>"
        + "<div>" * depth
        + "<p>深处的一段文字，有标点。</p>"
        + "</div>" * depth
        + "</body></html>"
    )
    assert len(html) >= 5 * 1024 * 1024
    start = time.monotonic()
    art = extract_article(html, rules=rules, now=NOW)
    assert time.monotonic() - start < 30
    assert isinstance(art, ExtractedArticle)


def test_many_sibling_blocks_bounded_time(rules: ExtractionRules) -> None:
    html = (
        "<html><body>" + "<div><p>一段话，有标点。</p><a href='#'>链接</a></div>" * 20_000 + "</body></html>"
    )
    start = time.monotonic()
    art = extract_article(html, rules=rules, now=NOW)
    assert time.monotonic() - start < 30
    assert "一段话" in art.content


# --- configuration ------------------------------------------------------------------------------------


def test_bad_rules_file_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "extraction.yaml"
    bad.write_text("title:\n  suffix_patterns: ['(unclosed']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_extraction_rules(bad)
    assert str(bad) in str(info.value) and "title.suffix_patterns" in str(info.value)
    bad.write_text("content:\n  nonsense: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"content\.nonsense"):
        load_extraction_rules(bad)


def test_rules_are_data(rules: ExtractionRules) -> None:
    # Without the suffix patterns the site suffix stays in the title.
    bare = rules.model_copy(update={"title": rules.title.model_copy(update={"suffix_patterns": []})})
    page = "<html><head><title>某条新闻_某某网</title></head><body><p>正文。</p></body></html>"
    assert extract_article(page, rules=rules, now=NOW).title == "某条新闻"
    assert extract_article(page, rules=bare, now=NOW).title == "某条新闻_某某网"


# --- the `yuqing extract` command ---------------------------------------------------------------------


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    import argparse

    from crawlers.extract_cli import add_subcommand

    parser = argparse.ArgumentParser(prog="yuqing")
    add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code = args.func(args, load_settings())
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_local_file(gne_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    page = gne_dir / "tests" / "people" / "1.html"
    code, out, _ = _run_cli(["extract", str(page), "--url", "http://culture.people.com.cn/n1/x.html"], capsys)
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"title", "content", "published_at", "author", "site", "encoding"}
    assert data["title"] == "女儿出嫁，郑板桥画了几笔兰花当嫁妆"
    assert data["published_at"] == "2019-06-15T08:18:00+08:00"
    assert data["encoding"] == "utf-8"
    assert data["content"].startswith("父亲的教诲像一盏灯")
    assert "女儿出嫁" in out  # ensure_ascii=False: Chinese is printed as is


def test_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run_cli(["extract", str(tmp_path / "nope.html")], capsys)
    assert code == 2 and out == ""
    assert "nope.html" in err


def test_cli_non_html_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(1, 256)) * 40)
    code, _, err = _run_cli(["extract", str(blob)], capsys)
    assert code == 1 and "does not look like HTML" in err


def test_cli_fetches_url_from_local_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = ARTICLE.encode("gb18030")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/news/1.html":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=GBK")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        code, out, _ = _run_cli(["extract", f"{base}/news/1.html"], capsys)
        assert code == 0
        data = json.loads(out)
        assert data["encoding"] == "gb18030"
        assert data["title"] == "市图书馆延长开放时间"
        assert data["published_at"] == "2024-03-05T09:30:00+08:00"
        assert data["content"].startswith("为满足市民阅读需求")
        code, out, err = _run_cli(["extract", f"{base}/missing.html"], capsys)
        assert code == 2 and "404" in err
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("姚明对周琦说了啥？周琦上下半场判若两人_网易新闻", "姚明对周琦说了啥？周琦上下半场判若两人"),
        ("陈同佳刑满出狱 向潘晓颖家人鞠躬致歉|香港_新浪新闻", "陈同佳刑满出狱 向潘晓颖家人鞠躬致歉"),
        ("法国全国大罢工再次严重影响交通-新华网", "法国全国大罢工再次严重影响交通"),
        ("女儿出嫁，郑板桥画了几笔兰花当嫁妆--文化--人民网", "女儿出嫁，郑板桥画了几笔兰花当嫁妆"),
        ("山西品牌丝路行（南美站）正式启动 - 山西省人民政府门户网站", "山西品牌丝路行（南美站）正式启动"),
        (
            "棱镜|数据业大整顿：爬虫与现金贷共生共荣，用户信息几元不等_财经_腾讯网",
            "棱镜|数据业大整顿：爬虫与现金贷共生共荣，用户信息几元不等",
        ),
        ("没有后缀的标题", "没有后缀的标题"),
    ],
)
def test_title_suffixes_are_stripped(raw: str, expected: str, rules: ExtractionRules) -> None:
    page = f"<html><head><title>{raw}</title></head><body><p>正文。</p></body></html>"
    assert extract_article(page, rules=rules, now=NOW).title == expected
