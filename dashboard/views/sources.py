"""信源状态: is every source still delivering? Silent (nothing at all) is not calm (nothing new)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components, data
from dashboard import format as fmt
from dashboard.format import STATUS_LABELS
from index.source_health import ALARMING

backend = components.backend_or_stop()
tz = backend.settings.timezone

st.title("信源状态")
statuses = components.call_or_stop(data.source_health, backend)
alarming = [s for s in statuses if s.status in ALARMING]
never_ran = [s for s in statuses if s.status == "unknown"]
if alarming:
    st.error("需要关注：" + "；".join(f"{fmt.md_escape(s.source)}（{STATUS_LABELS[s.status]}）" for s in alarming))
if never_ran:
    st.info(f"{len(never_ran)} 个信源尚未运行过：" + "、".join(fmt.md_escape(s.source) for s in never_ran)
            + "。采集服务启动后首轮采集即会记录。")
if statuses and not alarming and not never_ran:
    st.success("所有信源运行正常。")
elif not statuses:
    st.info("尚未配置信源（config/sources.yaml）。")

if statuses:
    st.dataframe(
        pd.DataFrame({
            "信源": [s.source for s in statuses],
            "状态": [STATUS_LABELS[s.status] for s in statuses],
            "最近运行": [fmt.format_time(s.last_run, tz) if s.last_run else "—" for s in statuses],
            "最近成功": [fmt.format_time(s.last_success, tz) if s.last_success else "—" for s in statuses],
            "连续无产出": [s.consecutive_empty for s in statuses],
            "最近错误": [s.last_error or "" for s in statuses],
        }),
        hide_index=True,
    )
st.caption("平静：信源有响应但没有新内容；静默：连续多次没有任何产出（选择器失效、被屏蔽或地址变更），需人工检查。")
