"""One input rule for every entry point: float features or uint8 images, batches or one sample."""

import numpy as np
import pytest

import pydfn


@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 40)
    model = pydfn.MLP([784, 16, 10], seed=1)
    model.fit(images, labels, pydfn.Adam(), epochs=1, batch_size=8, verbose=0)
    return model, images, labels, images.reshape(40, 784).astype(np.float32) / np.float32(255)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_logits"])
def test_uint8_and_image_shaped_inputs_predict_as_the_scaled_rows(model_and_data, method):
    model, images, _, rows = model_and_data
    expected = getattr(model, method)(rows)
    for x in (images, images.reshape(40, 784), rows.reshape(40, 28, 28)):
        np.testing.assert_array_equal(getattr(model, method)(x), expected)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "predict_logits"])
def test_one_image_or_one_row_gives_one_prediction(model_and_data, method):
    model, images, _, rows = model_and_data
    expected = getattr(model, method)(rows[3:4])[0]
    for one in (images[3], rows[3], rows[3].reshape(28, 28), images[3].reshape(784)):
        got = getattr(model, method)(one)
        assert np.shape(got) == np.shape(expected)
        np.testing.assert_array_equal(got, expected)
    assert isinstance(model.predict(images[3]), np.integer)


def test_evaluate_and_train_step_take_uint8_images(model_and_data):
    model, images, labels, rows = model_and_data
    assert model.evaluate(images, labels) == model.evaluate(rows, labels)
    assert model.evaluate(rows.reshape(40, 28, 28), labels) == model.evaluate(rows, labels)
    a, b = pydfn.MLP([784, 8, 10]), pydfn.MLP([784, 8, 10])
    assert a.train_step(images[:8], labels[:8], pydfn.Adam()) == b.train_step(rows[:8], labels[:8], pydfn.Adam())


def test_fit_takes_float_images_as_it_takes_their_rows(model_and_data):
    _, _, labels, rows = model_and_data
    a, b = pydfn.MLP([784, 8, 10]), pydfn.MLP([784, 8, 10])
    a.fit(rows.reshape(40, 28, 28), labels, pydfn.Adam(), epochs=1, batch_size=8, verbose=0)
    b.fit(rows, labels, pydfn.Adam(), epochs=1, batch_size=8, verbose=0)
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights()))


def test_ambiguous_or_wrong_inputs_are_refused_clearly(model_and_data):
    model, images, labels, rows = model_and_data
    with pytest.raises(ValueError, match=r"got \(783,\): one sample has 784 features"):
        model.predict(rows[0, :783])
    with pytest.raises(ValueError, match=r"pass one sample as x\[None\]"):
        model.evaluate(rows[0], labels[:1])
    with pytest.raises(ValueError, match=r"must hold images of 784 pixels.*got shape \(27, 28\)"):
        model.predict(images[0, :27])
    with pytest.raises(TypeError, match="floating-point array, got dtype int16 .uint8 images are scaled"):
        model.predict(images.astype(np.int16))
    # A 2-D array whose last axis is the input size is rows, never one image.
    small = pydfn.MLP([28, 4, 3])
    assert small.predict(rows[0].reshape(28, 28)).shape == (28,)
    assert small.predict(rows[0, :28]).shape == ()
