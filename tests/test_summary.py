"""model.summary(): the Keras-like table of layers, parameters and memory."""

import numpy as np

import pydfn


def test_tutorial_network_summary(capsys):
    model = pydfn.MLP([784, 256, 128, 10])
    model.summary()
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "Model: MLP([784, 256, 128, 10])"
    rows = [line.split() for line in lines if line.startswith("dense_")]
    assert rows == [["dense_1", "784", "->", "256", "relu", "-", "200,960"],
                    ["dense_2", "256", "->", "128", "relu", "-", "32,896"],
                    ["dense_3", "128", "->", "10", "logits", "-", "1,290"]]
    assert sum(w.size for w in model.get_weights()) == 235_146
    assert "Total params: 235,146 (918.5 KiB as float32), all trainable" in lines
    # parameter, gradient and two optimizer buffers, 4 bytes each: 235,146 * 16 B = 3.59 MiB
    assert "Training memory: 3.6 MiB" in text
    info = pydfn.info()
    threads = f"{info['threads']} thread" + ("s" if info["threads"] != 1 else "")
    assert lines[-1] == f"Runs in float32 on the {info['kernels']} kernels with {threads}"
    assert max(map(len, lines)) <= 80  # fits a terminal


def test_summary_shows_dropout_penalties_and_a_regression_output(capsys):
    model = pydfn.MLP([3, 5, 4, 2], loss="mse", activation="tanh", dropout=[0.25, 0], l1=1e-5)
    model.summary()
    text = capsys.readouterr().out
    rows = [line.split() for line in text.splitlines() if line.startswith("dense_")]
    assert [r[4:] for r in rows] == [["tanh", "0.25", "20"], ["tanh", "-", "24"], ["linear", "-", "10"]]
    assert "Loss: mse; penalties: l1 1e-05, l2 0" in text
    assert "Total params: 54 (216 B as float32)" in text
    assert np.sum([w.size for w in model.get_weights()]) == 54


def test_summary_of_a_bf16_model_says_how_its_products_run(capsys):
    pydfn.MLP([4, 3], precision="bf16").summary()
    last = capsys.readouterr().out.splitlines()[-1]
    kernels = pydfn.info()["kernels"]
    how = {"avx512bf16": "", "amx": ", AMX tiles"}.get(kernels, ", emulated")
    assert last.startswith(f"Runs in bf16 products (float32 sums{how}) on the {kernels} kernels")
