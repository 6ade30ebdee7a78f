"""RSS 2.0 / Atom / RDF feed parsing (pure): entries with link, title, time, author and summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin

from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"


class FeedError(ValueError):
    """The document is not a feed this module understands."""


@dataclass(frozen=True)
class FeedEntry:
    link: str
    title: str = ""
    published: str | None = None  # the raw date string; crawlers.dates parses it
    author: str | None = None
    summary: str = ""


def _text(el: etree._Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _local(tag: object) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else ""


def parse_feed(body: bytes, base_url: str) -> list[FeedEntry]:
    """Entries of an RSS/Atom/RDF document, links made absolute; raises FeedError for anything else."""
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise FeedError(f"not XML: {exc}") from exc
    if root is None:
        raise FeedError("empty or unparsable feed")
    kind = _local(root.tag).lower()
    entries: list[FeedEntry] = []
    if kind == "feed":
        for e in root.iter(f"{ATOM}entry"):
            link = ""
            for ln in e.findall(f"{ATOM}link"):
                if ln.get("rel", "alternate") == "alternate" and ln.get("href"):
                    link = ln.get("href", "")
                    break
            if not link:
                continue
            entries.append(
                FeedEntry(
                    link=urljoin(base_url, link.strip()),
                    title=_text(e.find(f"{ATOM}title")),
                    published=_text(e.find(f"{ATOM}published")) or _text(e.find(f"{ATOM}updated")) or None,
                    author=_text(e.find(f"{ATOM}author/{ATOM}name")) or None,
                    summary=_text(e.find(f"{ATOM}summary")) or _text(e.find(f"{ATOM}content")),
                )
            )
    elif kind in ("rss", "rdf"):
        for item in root.iter():
            if _local(item.tag) != "item":
                continue
            children = {_local(c.tag): c for c in item}
            link = _text(children.get("link")) or (children["guid"].text or "" if "guid" in children else "")
            if not link.strip():
                continue
            entries.append(
                FeedEntry(
                    link=urljoin(base_url, link.strip()),
                    title=_text(children.get("title")),
                    published=_text(children.get("pubDate")) or _text(children.get("date")) or None,
                    author=_text(children.get("author")) or _text(children.get("creator")) or None,
                    summary=_text(children.get("description")) or _text(children.get("encoded")),
                )
            )
    else:
        raise FeedError(f"unknown feed root element <{_local(root.tag)}>")
    return entries


def rss_document(title: str, link: str, entries: list[FeedEntry], *, built: datetime) -> bytes:
    """An RSS 2.0 document for ``entries`` (used by the demo source and tests that write feeds)."""
    from email.utils import format_datetime

    rss = etree.Element("rss", version="2.0")
    channel = etree.SubElement(rss, "channel")
    etree.SubElement(channel, "title").text = title
    etree.SubElement(channel, "link").text = link
    etree.SubElement(channel, "lastBuildDate").text = format_datetime(built)
    for e in entries:
        item = etree.SubElement(channel, "item")
        etree.SubElement(item, "title").text = e.title
        etree.SubElement(item, "link").text = e.link
        etree.SubElement(item, "guid").text = e.link
        if e.published:
            etree.SubElement(item, "pubDate").text = e.published
        if e.author:
            etree.SubElement(item, "author").text = e.author
        if e.summary:
            etree.SubElement(item, "description").text = e.summary
    return bytes(etree.tostring(rss, xml_declaration=True, encoding="utf-8", pretty_print=True))
