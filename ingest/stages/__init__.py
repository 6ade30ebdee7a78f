"""The ingest stages, one small class each, in the order :func:`ingest.service.standard_stages` runs them."""

from ingest.stages.analyse import Analyse
from ingest.stages.duplicates import LinkDuplicates
from ingest.stages.groups import MatchGroups
from ingest.stages.index import IndexPosts
from ingest.stages.judged import ApplyJudgements
from ingest.stages.redact import Redact
from ingest.stages.segment import PooledSegmenter, Segment
from ingest.stages.unchanged import RememberIndexed, SkipUnchanged

__all__ = ["Analyse", "ApplyJudgements", "IndexPosts", "LinkDuplicates", "MatchGroups", "PooledSegmenter", "Redact",
           "RememberIndexed", "Segment", "SkipUnchanged"]
