"""The Streamlit dashboard for press officers: newest posts with search, and an overview for 预判.

``dashboard/app.py`` is the entry point (``yuqing dashboard`` or ``streamlit run dashboard/app.py``); pages
live in ``dashboard/views`` (not ``pages/``: Streamlit would serve a ``pages/`` folder
beside app.py on its own, around the login gate); Elasticsearch access in :mod:`dashboard.data`; pure formatting in
:mod:`dashboard.format`.
"""
