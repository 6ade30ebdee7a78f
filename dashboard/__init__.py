"""The Streamlit dashboard for press officers: newest posts with search, and an overview for 预判.

``dashboard/app.py`` is the entry point (``yuqing dashboard`` or ``streamlit run dashboard/app.py``); pages
live in ``dashboard/pages``; Elasticsearch access in :mod:`dashboard.data`; pure formatting in
:mod:`dashboard.format`.
"""
