"""What `yuqing migrate` does to the documents of an index made by an older layout version (pure transforms),
and which indices need it.

posts v1 → v2: ``hot_terms`` (the keyword field hot words aggregate, see :mod:`index.hotwords`) computed from the
stored ``title_seg``/``content_seg`` — no re-segmentation, no classifier; fielddata over ``content_seg`` gone.
tickets v1 → v2: ``next_due_at``, by a transform the caller passes (``response.service.refresh_ticket_source``: when a
deadline counts as met is the response layer's rule, which this layer does not import).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elasticsearch import Elasticsearch

from index.hotwords import HotWords, hot_terms_of
from index.layout import ALL_SPECS, POSTS, Transform, migrate, needs_migration
from index.spec import IndexSpec
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)


def fill_hot_terms(hot_words: HotWords) -> Transform:
    """A transform that gives a posts ``_source`` without ``hot_terms`` the ones its segmentation yields."""
    stop = frozenset(hot_words.stopwords)

    def fill(source: dict[str, Any]) -> dict[str, Any]:
        if source.get("hot_terms") is not None:
            return source
        terms = hot_terms_of(source.get("title_seg") or "", source.get("content_seg") or "", stopwords=stop,
                             per_post=hot_words.per_post)
        return {**source, "hot_terms": terms}

    return fill


def transform_for(spec: IndexSpec, hot_words: HotWords, extra: Mapping[str, Transform] | None = None
                  ) -> Transform | None:
    if spec.name == POSTS.name:
        return fill_hot_terms(hot_words)
    return (extra or {}).get(spec.name)


@dataclass(frozen=True)
class Migrated:
    alias: str
    old: str
    new: str
    documents: int


def migrate_outdated(client: Elasticsearch, es: ElasticsearchSettings, hot_words: HotWords,
                     specs: tuple[IndexSpec, ...] = ALL_SPECS,
                     transforms: Mapping[str, Transform] | None = None) -> list[Migrated]:
    """Migrate every index of ``specs`` whose concrete index is of an older layout version (idempotent: a second
    run finds nothing to do); ``transforms``: spec name → the transform of a higher layer (tickets)."""
    done: list[Migrated] = []
    for spec in specs:
        old = needs_migration(client, spec, es)
        if old is None:
            continue
        alias = spec.alias(es.index_prefix)
        log.info("migrating %s (%s) to layout v%d", alias, old, spec.version)
        new = migrate(client, spec, es, transform_for(spec, hot_words, transforms))
        done.append(Migrated(alias, old, new, int(client.count(index=new)["count"])))
    return done
