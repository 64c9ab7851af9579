"""ECG Lab: ``streamlit run app.py``. The pages are in ``dashboard/``; all the science is in ``ecgcore``.

There is deliberately no ``pages/`` folder beside this file: when one exists (even holding no
script), Streamlit runs the first script run of a fresh server in its older multipage mode, which
finds no page for a deep link such as ``/record`` and shows "Page not found" over the right page.
"""

import streamlit as st

from dashboard import navigation
from dashboard.common import store_repair_banner

st.set_page_config(page_title="ECG Lab", page_icon=":material/monitor_heart:", layout="wide")
store_repair_banner()

PAGES = [
    st.Page(page.script, title=page.title, icon=page.icon, default=page.script.endswith("home.py"))
    for page in navigation.PAGES
]

st.navigation(PAGES).run()
