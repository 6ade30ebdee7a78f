"""Article extraction: main text, title, publish time, author and site from a news/article page.

Heuristics are data (``config/extraction.yaml``); `default_rules()` reads it lazily, once.
"""

from crawlers.extract.article import ExtractedArticle, extract_article
from crawlers.extract.rules import ExtractionRules, default_rules, load_extraction_rules

__all__ = ["ExtractedArticle", "ExtractionRules", "default_rules", "extract_article", "load_extraction_rules"]
