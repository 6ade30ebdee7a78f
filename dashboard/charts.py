"""Chart specs of the dashboard: pure functions from a long-format frame to an Altair chart.

``st.bar_chart`` colours categories from a fixed palette in the categories' sort order, which made 正面 red
and 负面 a pale pink on 总览. Here every sentiment has its colour: 负面 the alarm red a press officer looks
for, 正面 green, 中性 (and an event's 其他) grey-blue, 未分析 light grey; 负面 is stacked at the bottom, where
the eye compares bars.
"""

from __future__ import annotations

from typing import Any

SENTIMENT_COLOURS: dict[str, str] = {
    "负面": "#d62728",
    "中性": "#7f93ad",
    "其他": "#7f93ad",
    "正面": "#2ca02c",
    "未分析": "#d0d4da",
}


def sentiment_bars(frame: Any, *, height: int) -> Any:
    """Stacked bars of 条数 per 时间, one colour per 情感 (columns of ``frame``, long format). Times keep the
    frame's order (its labels are not sortable across a year); a sentiment absent from the frame is left out
    of the legend."""
    import altair as alt

    missing = {"时间", "情感", "条数"} - set(frame.columns)
    if missing:
        raise ValueError(f"sentiment chart: the frame lacks column(s) {sorted(missing)}")
    present = set(frame["情感"])
    unknown = sorted(present - set(SENTIMENT_COLOURS))
    if unknown:
        raise ValueError(f"sentiment chart: no colour for {unknown}")
    domain = [s for s in SENTIMENT_COLOURS if s in present]
    rank = {s: i for i, s in enumerate(domain)}
    data = frame.assign(_rank=frame["情感"].map(rank))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("时间:N", sort=None, title="时间"),
            y=alt.Y("条数:Q", title="条数", stack="zero"),
            color=alt.Color("情感:N", scale=alt.Scale(domain=domain, range=[SENTIMENT_COLOURS[s] for s in domain]),
                            legend=alt.Legend(title="情感", orient="bottom")),
            order=alt.Order("_rank:Q", sort="ascending"),
            tooltip=["时间:N", "情感:N", "条数:Q"],
        )
        .properties(height=height)
    )
