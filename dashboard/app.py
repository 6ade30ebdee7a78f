"""Dashboard entry point: builds the settings once and navigates between the pages.

Run with ``yuqing dashboard`` or ``streamlit run dashboard/app.py``. Configuration comes from
``config/yuqing.yaml`` (or ``$YUQING_CONFIG``) and ``YUQING_<SECTION>__<FIELD>`` environment variables.
"""

from __future__ import annotations

import streamlit as st

from dashboard import components

st.set_page_config(page_title="文化舆情监测与回应平台", page_icon="📰", layout="wide")

# Settings and the Elasticsearch client are built here, once per process and configuration (cached);
# the pages reuse the same cached object. A configuration error stops the app with a clear message.
components.backend_or_stop()

navigation = st.navigation(
    [
        st.Page("pages/latest.py", title="最新舆情", icon="📰", default=True),
        st.Page("pages/overview.py", title="舆情概览", icon="📊"),
        st.Page("pages/sources.py", title="信源状态", icon="📡"),
    ]
)
navigation.run()
