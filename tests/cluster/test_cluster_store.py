"""The essential integration tests of the store and the alert state, unchanged, on the local secured 3-node
cluster with one replica (fixtures: tests/cluster/conftest.py). They run here as the application user with the
settings from the environment, and in tests/ against the single node. A crawl child writing posts, crawl state
and source health to the cluster: test_cluster_security.py::test_secrets_never_reach_a_log."""

from __future__ import annotations

import pytest

from tests.test_alerts import (  # noqa: F401 (collected here)
    test_matching_post_decided_once_mailed_once_also_after_restart,
)
from tests.test_index import (  # noqa: F401
    test_analysis_fields_round_trip_and_filter,
    test_hot_terms_count_words_and_leave_out_stopwords,
    test_migrate_copies_documents_and_swaps_alias,
    test_per_document_errors_are_reported_not_swallowed,
    test_phrase_search_finds_exact_substrings_only,
    test_recrawl_updates_never_duplicates,
    test_setup_is_idempotent_and_uses_alias_and_versioned_index,
)

pytestmark = pytest.mark.cluster
pytest_plugins = ("tests.smtp_fixtures",)  # smtp, start_smtp: fixtures the alert test uses
