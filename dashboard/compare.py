"""Compare datasets: two or more sources side by side (labels over one label set, rates, lengths, age, sex)."""

from __future__ import annotations

import streamlit as st

from dashboard.common import csv_download, dataset, guarded, sources
from ecgcore import viz
from ecgcore.data.compare import profile, profiles_table
from ecgcore.data.labels import LABEL_SET_NAMES

st.title("Compare datasets")
st.write(
    "Two or more sources side by side. Labels are counted over one label set: the transfer study's 18 "
    "PTB-XL statements (`study18`), the Challenge's scored SNOMED classes (`scored`), or your own comma "
    "list of Challenge abbreviations, SNOMED codes or PTB-XL statements. PTB-XL records are counted through "
    "the reviewed SCP → SNOMED crosswalk; a class a source cannot express shows as n/a, not 0."
)
available = sources()
chosen = st.multiselect("Sources", list(available), default=list(available)[:2], key="compare_sources")
c1, c2 = st.columns([2, 3])
preset = c1.selectbox("Label set", [*LABEL_SET_NAMES, "custom"], key="compare_labels")
labels = preset
if preset == "custom":
    labels = c2.text_input("Classes (comma list)", "AF,IAVB,CRBBB|RBBB,LVH", key="compare_custom")
share = c2.toggle("Share of records (%)", value=True, key="compare_share") if preset != "custom" else True

if len(chosen) < 2:
    st.info("Pick at least two sources (set more folders, e.g. a Challenge folder, in Settings).")
    st.stop()

profiles = []
for name in chosen:
    opened = guarded(f"Opening {name}", lambda name=name: dataset(available[name]))
    if opened is None:
        continue
    made = guarded(f"Counting {name}", lambda opened=opened, name=name: profile(opened[0], labels, name))
    if made is not None:
        profiles.append(made)
if len(profiles) < 2:
    st.stop()

st.plotly_chart(viz.label_heatmap(profiles, share=share), key="compare_heatmap")
st.plotly_chart(viz.dataset_comparison(profiles), key="compare_panels")
table = profiles_table(profiles)
csv_download(
    table.reset_index(names="class"), "label-counts", key="dl_compare", label="Download the counts (CSV)"
)
with st.expander("Summaries (JSON)"):
    st.json({p.name: p.to_dict() for p in profiles}, expanded=False)
