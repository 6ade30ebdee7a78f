"""The demo `yuqing up` starts: a local site whose channels (news feed and column, message board, Weibo-style
JSON, forum search, the bureau's own website and 微信公众号) publish a corpus written for the demo about the
fictional 青川市, with times shifted to now; a library closure grows into a negative story over the first
minutes. The real pages and board messages of the shared data join the replay when present.

- :mod:`yuqing.demo.corpus`  the corpus (YAML under ``data/``) and its model
- :mod:`yuqing.demo.replay`  the demo clock: who is published when; engagement growth
- :mod:`yuqing.demo.shared`  the shared data that joins the replay
- :mod:`yuqing.demo.site`    every channel in the format its spider reads (pure)
- :mod:`yuqing.demo.server`  the HTTP server (ETag, Last-Modified, 304)
- :mod:`yuqing.demo.reset`   forgetting an earlier replay, so each `up` starts the story over

Run alone: ``python -m yuqing.demo`` (settings section ``demo``; prints ``PORT <n>`` once listening).
"""
