"""Model tests run torch on one thread: on the shared 2-core machine, OpenMP threads that spin-wait
for a busy second core made forward/backward passes 10-20x slower than a single thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
