"""Model tests run torch on one thread (the trainer tests' fixture): on the shared 2-core machine, OpenMP
threads spin-waiting for a busy second core made forward/backward passes 10-20x slower than one thread."""

from tests.train.helpers import one_torch_thread  # noqa: F401  (autouse fixture)
