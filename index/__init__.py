"""Elasticsearch: the local server, index layout, writing and querying posts."""
