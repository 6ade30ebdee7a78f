"""Article extraction: main text, title, publish time, author and site from a news/article page.

Heuristics are data (``config/extraction.yaml``, :func:`load_extraction_rules`); the caller reads them (from
its settings) and passes them in.
"""

from crawlers.extract.article import ExtractedArticle, extract_article
from crawlers.extract.rules import ExtractionRules, load_extraction_rules

__all__ = ["ExtractedArticle", "ExtractionRules", "extract_article", "load_extraction_rules"]
