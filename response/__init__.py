"""处置跟踪: response tickets with statutory deadlines, the 失声 check, 保密审查 of drafts and 依申请公开 clocks.

Pure logic on foundation types (pydantic + stdlib + the ``chinesecalendar`` data); storage lives in
``index.tickets`` / ``index.foia``, orchestration (load → change → compare-and-set write) in
``response.service``, the command line in ``response.cli``.
"""
