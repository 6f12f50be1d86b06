"""Writes the checkpoints of today's release (format version 2) that test_checkpoint_compat.py loads.

Run once with pydfn 0.1.0 at commit 95e39ae (before the engine redesign):
    python tests/data/make_release_checkpoints.py tests/data
It saves, per optimizer, a tiny model after 3 epochs (release_<name>.npz) and what the
release's own model reached by continuing 2 more epochs with ``model.optimizer``
(release_expected.npz): the weights and the losses. Loading the file and continuing
must reach the same bits in every later version.
"""

import sys

import numpy as np

import pydfn


def data():
    """40 rows of 6 features, 3 classes: arithmetic only, so no generator's version matters."""
    i = np.arange(40 * 6, dtype=np.float64).reshape(40, 6)
    x = np.sin(0.37 * i + 0.11 * (i % 7)).astype(np.float32)
    y = (np.arange(40) * 7 % 3).astype(np.int64)
    return x, y


CASES = {
    "adam": (dict(l2=1e-3, dropout=0.2, seed=5), lambda: pydfn.Adam(lr=1e-2)),
    "sgd_momentum": (dict(seed=6), lambda: pydfn.SGD(lr=0.05, momentum=0.9, nesterov=True)),
    "rmsprop_momentum": (dict(l1=1e-4, seed=7), lambda: pydfn.RMSProp(lr=1e-3, momentum=0.5)),
}


def main(folder):
    x, y = data()
    expected = {}
    for name, (options, make_optimizer) in CASES.items():
        model = pydfn.MLP([6, 5, 3], **options)
        model.fit(x, y, make_optimizer(), epochs=3, batch_size=8, verbose=0)
        model.save(f"{folder}/release_{name}.npz")
        history = model.fit(x, y, model.optimizer, epochs=2, batch_size=8, verbose=0)
        expected[f"{name}_params"] = np.concatenate([w.ravel() for w in model.get_weights()])
        expected[f"{name}_loss"] = np.array(history.history["loss"])
    np.savez(f"{folder}/release_expected.npz", **expected)


if __name__ == "__main__":
    main(sys.argv[1])
