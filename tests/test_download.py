"""Downloading, against an HTTP server on 127.0.0.1 that these tests start: never the internet."""

from __future__ import annotations

import gzip
import http.server
import io
import sys
import threading
import time

import numpy as np
import pytest

from pydfn import datasets
from pydfn.datasets import download_fashion_mnist, load_fashion_mnist

TIMEOUT = 2.0  # seconds; every request in these tests is bounded by it
SLOW = 1.0  # how long the "slow" mirror stalls before answering


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``/<mode>/<file>.gz`` from ``server.files``; ``mode`` picks the failure to act out."""

    def do_GET(self):
        mode, _, name = self.path.strip("/").partition("/")
        self.server.hits.append(self.path)
        body = self.server.files.get(name)
        if mode in ("error", "missing") or body is None:
            self.send_error(500 if mode == "error" else 404)
            return
        if mode == "corrupt":
            body = gzip.compress(gzip.decompress(body)[:-1] + b"\x01")
        if mode == "slow":
            time.sleep(SLOW)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "drop":
            body = body[: len(body) // 2]  # then the connection closes, short of Content-Length
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep test output clean


class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that timed out and left is part of the test, not an error


@pytest.fixture
def server(fake_fashion):
    httpd = Server(("127.0.0.1", 0), Handler)
    httpd.files = {f"{spec.name}.gz": fake_fashion.gz(role) for role, spec in fake_fashion.specs.items()}
    httpd.hits = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = lambda mode: f"http://127.0.0.1:{httpd.server_address[1]}/{mode}/"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(TIMEOUT)


def download(directory, *modes, server):
    return download_fashion_mnist(directory, mirrors=[server.url(m) for m in modes], timeout=TIMEOUT)


def test_download_success(server, fake_fashion, tmp_path):
    directory = tmp_path / "new" / "dir"
    assert download(directory, "ok", server=server) == directory
    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{s.name}.gz" for s in fake_fashion.specs.values())
    (x_train, _), (_, y_test) = load_fashion_mnist(directory, download=False)
    np.testing.assert_array_equal(x_train, fake_fashion.arrays["train_images"])
    np.testing.assert_array_equal(y_test, fake_fashion.arrays["test_labels"])


def test_download_skips_files_already_verified(server, fake_fashion, tmp_path):
    directory = fake_fashion.write(tmp_path / "dl")
    spec = fake_fashion.specs["test_images"]
    (directory / f"{spec.name}.gz").write_bytes(b"corrupt")  # replaced by the download
    download(directory, "ok", server=server)
    assert [hit.rsplit("/", 1)[1] for hit in server.hits] == [f"{spec.name}.gz"]
    np.testing.assert_array_equal(datasets.read_idx(directory / f"{spec.name}.gz"), fake_fashion.arrays["test_images"])


@pytest.mark.parametrize("mode, message", [
    ("corrupt", "content SHA-256 is"),
    ("error", "HTTP Error 500"),
    ("drop", "connection dropped after|IncompleteRead"),
    ("slow", "timed out"),
])
def test_failed_download_leaves_nothing(server, tmp_path, mode, message):
    timeout = SLOW / 4 if mode == "slow" else TIMEOUT
    started = time.monotonic()
    with pytest.raises(OSError, match=f"could not download train-images-idx3-ubyte.gz: .*/{mode}/.*({message})"):
        download_fashion_mnist(tmp_path / "dl", mirrors=[server.url(mode)], timeout=timeout)
    assert time.monotonic() - started < SLOW
    assert list((tmp_path / "dl").iterdir()) == []


@pytest.mark.parametrize("bad", ["corrupt", "error", "drop", "missing"])
def test_next_mirror_is_tried(server, fake_fashion, tmp_path, bad):
    download(tmp_path / "dl", bad, "ok", server=server)
    assert len(list((tmp_path / "dl").iterdir())) == 4  # the four files, no temp file left
    assert server.hits[:2] == [f"/{bad}/train-images-idx3-ubyte.gz", "/ok/train-images-idx3-ubyte.gz"]


def test_load_downloads_into_the_cache_once(server, fake_fashion, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [server.url("error"), server.url("ok")])
    load_fashion_mnist()
    assert len(list(datasets.fashion_mnist_cache_dir().iterdir())) == 4
    hits = len(server.hits)
    (x_train, _), _ = load_fashion_mnist()
    assert len(server.hits) == hits  # served from the cache
    np.testing.assert_array_equal(x_train, fake_fashion.arrays["train_images"])


def test_load_reports_every_mirror_failure(server, monkeypatch):
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", [server.url("error"), server.url("corrupt")])
    with pytest.raises(FileNotFoundError, match=r"(?s)user cache .*download into .*/error/.*HTTP Error 500: .*; "
                                                r".*/corrupt/.*content SHA-256.*apt-get install"):
        load_fashion_mnist()
    assert list(datasets.fashion_mnist_cache_dir().iterdir()) == []


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("tty", [True, False])
def test_progress_only_on_a_terminal(server, tmp_path, monkeypatch, tty):
    stderr = FakeTerminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    download(tmp_path / "dl", "ok", server=server)
    if tty:
        assert "\rdownloading " in stderr.getvalue() and "train-images-idx3-ubyte.gz" in stderr.getvalue()
    else:
        assert stderr.getvalue() == ""
