"""What the CLI tests share: each runs in its own folder and restores the thread count."""

import pytest

import pydfn
from pydfn import cli


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # model.npz and friends land here
    before = pydfn.get_num_threads()
    yield
    pydfn.set_num_threads(before)


def run(capsys, *argv):
    """``pydfn argv...`` in this process: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
