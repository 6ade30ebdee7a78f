"""Crawlers: spiders, pipelines and the article-extraction / text-hygiene layer they share."""
