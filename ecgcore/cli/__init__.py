"""One module per command of ``python -m ecgcore``: each defines ``add_arguments`` and ``main``."""
