"""ECG Lab: ``streamlit run app.py``. The pages are in ``app_pages/``; all the science is in ``ecgcore``.

The folder is not called ``pages/``: Streamlit treats a ``pages/`` folder next to the entry script as
its older multipage layout, and a browser opening a page URL first on a fresh server would get the
page without this navigation (no sidebar, no page config).
"""

import streamlit as st

st.set_page_config(page_title="ECG Lab", page_icon=":material/monitor_heart:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/explorer.py", title="Explorer", icon=":material/monitor_heart:"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("app_pages/results.py", title="Results", icon=":material/leaderboard:"),
    st.Page("app_pages/record.py", title="Record & saliency", icon=":material/troubleshoot:"),
    st.Page("app_pages/settings.py", title="Settings", icon=":material/settings:"),
]

st.navigation(PAGES).run()
