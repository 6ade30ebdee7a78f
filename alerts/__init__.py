"""Leaders' alerts and reports: rules in ``config/alerts.yaml`` (post rules, signal rules, people, report
recipients) decide into an outbox in Elasticsearch, delivered exactly once by the sender of ``yuqing run``.

``rules`` / ``event_rules`` load, check and explain the rules; ``query`` turns a post rule into a search;
``producers`` (+ ``signal_queries``) read the signals from indexed data; ``outbox`` decides, holds digests and
delivers with retries; ``compose`` / ``chart`` build the mails; ``service`` is the post-crawl job and the sender
thread; ``reports`` / ``report_render`` the 舆情日报/周报; ``cli`` / ``report_cli`` the commands.
"""
