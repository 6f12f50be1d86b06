import numpy as np
import pytest

import pydfn
from pydfn import _core

BATCHES = [1, 3, 17, 63, 64, 65]
WIDTHS = [1, 10, 17, 128, 257, 784]
# The fast kernel sets this build can run here (the reference is the oracle).
FAST_KERNELS = [k for k in _core.kernel_names() if k != "reference"]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def threads():
    """Restore the thread count a test changes."""
    before = pydfn.get_num_threads()
    yield
    pydfn.set_num_threads(before)


def product_error_bound(a_abs_b_abs, k):
    """Worst-case rounding bound of a float32 dot product of length k (plus slack)."""
    return 2 * k * np.finfo(np.float32).eps * a_abs_b_abs + 1e-30
