"""ECG Lab: ``streamlit run app.py``. The pages are in ``pages/views/``; all the science is in ``ecgcore``.

The page scripts sit one folder below ``pages/`` on purpose: Streamlit runs an app whose ``pages/``
folder holds ``.py`` files in its older multipage mode until ``st.navigation`` has run once, so a
browser opening a page URL first on a fresh server got that page without this navigation (no sidebar,
no page config). With no scripts directly in ``pages/``, every first request runs this file.
"""

import streamlit as st

from pages.views.common import store_repair_banner

st.set_page_config(page_title="ECG Lab", page_icon=":material/monitor_heart:", layout="wide")
store_repair_banner()

PAGES = [
    st.Page("pages/views/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/views/explorer.py", title="Explorer", icon=":material/monitor_heart:"),
    st.Page("pages/views/compare.py", title="Compare datasets", icon=":material/compare:"),
    st.Page("pages/views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/views/results.py", title="Results", icon=":material/leaderboard:"),
    st.Page("pages/views/record.py", title="Record & saliency", icon=":material/troubleshoot:"),
    st.Page("pages/views/images.py", title="Images & studies", icon=":material/image:"),
    st.Page("pages/views/holter.py", title="Holter", icon=":material/ecg_heart:"),
    st.Page("pages/views/settings.py", title="Settings", icon=":material/settings:"),
]

st.navigation(PAGES).run()
