"""Events (issue 8): posts grouped into events, the event summary, heat, risk levels I–IV, a heat forecast
and 专题 keyword groups. Pure logic on the foundation types (+ ``nlp.segment`` for jieba tokens); storage
of events lives in ``index.events``."""
