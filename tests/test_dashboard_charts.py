"""The sentiment chart spec (dashboard/charts.py): each sentiment its own colour, 负面 red and stacked first,
times in the frame's order, bad frames refused."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.charts import SENTIMENT_COLOURS, sentiment_bars


def _frame(times: list[str], sentiments: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"时间": t, "情感": s, "条数": i + 1} for i, t in enumerate(times) for s in sentiments])


def test_each_sentiment_gets_its_colour_negative_red_and_first():
    spec = sentiment_bars(_frame(["11-30 23:00", "12-01 00:00"], ["正面", "负面", "未分析", "中性"]),
                          height=200).to_dict()
    scale = spec["encoding"]["color"]["scale"]
    assert scale["domain"] == ["负面", "中性", "正面", "未分析"]
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert colours["负面"] == "#d62728" and colours["正面"] == "#2ca02c" and colours["负面"] != colours["中性"]
    assert spec["encoding"]["order"]["field"] == "_rank" and spec["encoding"]["y"]["stack"] == "zero"
    rows = next(iter(spec["datasets"].values()))
    assert {r["情感"]: r["_rank"] for r in rows} == {"负面": 0, "中性": 1, "正面": 2, "未分析": 3}
    assert spec["height"] == 200


def test_times_keep_the_frame_order_across_a_year():
    spec = sentiment_bars(_frame(["12-31", "01-01"], ["负面", "其他"]), height=100).to_dict()
    assert spec["encoding"]["x"]["sort"] is None
    assert spec["encoding"]["color"]["scale"]["domain"] == ["负面", "其他"]  # an event's chart: 负面 / 其他
    assert spec["encoding"]["color"]["scale"]["range"] == [SENTIMENT_COLOURS["负面"], SENTIMENT_COLOURS["其他"]]


def test_unknown_sentiment_or_missing_column_is_refused():
    with pytest.raises(ValueError, match="no colour for"):
        sentiment_bars(_frame(["11-30"], ["愤怒"]), height=100)
    with pytest.raises(ValueError, match="lacks column"):
        sentiment_bars(pd.DataFrame({"时间": ["11-30"], "条数": [1]}), height=100)
