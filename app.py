"""ECG Lab: ``streamlit run app.py``. The pages are in ``dashboard/``; all the science is in ``ecgcore``.

There is deliberately no ``pages/`` folder beside this file: when one exists (even holding no
script), Streamlit runs the first script run of a fresh server in its older multipage mode, which
finds no page for a deep link such as ``/record`` and shows "Page not found" over the right page.
"""

import streamlit as st

from dashboard.common import store_repair_banner

st.set_page_config(page_title="ECG Lab", page_icon=":material/monitor_heart:", layout="wide")
store_repair_banner()

PAGES = [
    st.Page("dashboard/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("dashboard/explorer.py", title="Explorer", icon=":material/monitor_heart:"),
    st.Page("dashboard/compare.py", title="Compare datasets", icon=":material/compare:"),
    st.Page("dashboard/train.py", title="Train", icon=":material/model_training:"),
    st.Page("dashboard/results.py", title="Results", icon=":material/leaderboard:"),
    st.Page("dashboard/record.py", title="Record & saliency", icon=":material/troubleshoot:"),
    st.Page("dashboard/images.py", title="Images & studies", icon=":material/image:"),
    st.Page("dashboard/holter.py", title="Holter", icon=":material/ecg_heart:"),
    st.Page("dashboard/settings.py", title="Settings", icon=":material/settings:"),
]

st.navigation(PAGES).run()
