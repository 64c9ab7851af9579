"""ECG Lab core: datasets, interval measurement, models, trainer, run store and explanations.

Nothing in this package imports Streamlit: the dashboard (``app.py`` and ``pages/``) and the
command line (``python -m ecgcore``) are two thin front ends over the same functions.
"""

__version__ = "0.1.0"
