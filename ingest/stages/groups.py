"""专题: the keyword groups of ``config/keyword_groups.yaml`` each post matches, stored on it (``keyword_groups``).

Alert rules and the dashboard filter by the stored field; ``yuqing events groups`` evaluates a group against the
whole index on demand (the same expression as an Elasticsearch query: :func:`events.keyword_groups.es_query`).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.keyword_groups import GroupMatcher
from ingest.batch import Batch


@dataclass
class MatchGroups:
    """Sets every post's ``keyword_groups`` (an empty list when it matches none), on the redacted title and text."""

    matcher: GroupMatcher
    name: str = "groups"

    def run(self, batch: Batch) -> Batch:
        posts = [p.model_copy(update={"keyword_groups": list(self.matcher.match(p.title, p.content))})
                 for p in batch.posts]
        return batch.with_posts(posts)
