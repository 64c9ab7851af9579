"""The run store (:class:`~ecgcore.runs.store.RunStore`, SQLite in WAL mode) and the worker
processes that train runs outside the page or terminal that started them (:mod:`ecgcore.runs.worker`).
"""
