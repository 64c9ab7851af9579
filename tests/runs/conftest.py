"""Session-wide synthetic data folders (built once; each test still gets its own empty cache)."""

from tests.train.helpers import deepfake_spec, one_torch_thread, ptbxl_spec  # noqa: F401  (fixtures)
