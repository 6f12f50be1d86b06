"""Small synthetic classification problems, and comparisons of models' states, shared by the
training tests."""

import numpy as np

import pydfn


def blobs(n=600, n_features=20, n_classes=4, seed=0, noise=1.0):
    """Gaussian clusters, one per class: float32 x (n, n_features), int64 y (n,)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n)
    x = centers[y] + rng.normal(scale=noise, size=(n, n_features))
    return x.astype(np.float32), y


def weights_equal(a, b):
    """Whether two models (or weight lists) hold bitwise-identical parameters."""
    wa = a if isinstance(a, list) else a.get_weights()
    wb = b if isinstance(b, list) else b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def snapshot(model):
    """Copies of all a fit continues from: parameters, optimizer state, step, generator state."""
    state = model.engine.state()
    return (state.params, dict(state.optimizer_state), state.step, state.rng_state)


def same(a, b):
    """Whether two snapshots are bitwise equal."""
    return (np.array_equal(a[0], b[0]) and a[1].keys() == b[1].keys()
            and all(np.array_equal(a[1][k], b[1][k]) for k in a[1]) and a[2] == b[2] and a[3] == b[3])


def finite_and_loadable(model, tmp_path):
    """Assert the model's state is finite, and that save then load gives it back bit for bit."""
    state = model.engine.state()
    assert np.isfinite(state.params).all() and all(np.isfinite(v).all() for v in state.optimizer_state.values())
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = pydfn.load(path)
    assert same(snapshot(loaded), snapshot(model))
