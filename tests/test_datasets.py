"""IDX parsing, the packaged MNIST, Fashion-MNIST lookup and download (against a local server only)."""

import gzip
import hashlib
import http.server
import threading

import numpy as np
import pytest

from xpnet import datasets
from xpnet.datasets import fetch
from xpnet.datasets.idx import encode_idx, parse_idx, read_idx
from xpnet.errors import DataError, ValidationError


def test_packaged_mnist_matches_the_published_counts():
    data = datasets.load_mnist()
    assert data.X_train.shape == (60000, 784) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (10000, 784)
    assert list(data.y_train[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert list(np.bincount(data.y_train)) == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert list(np.bincount(data.y_test)) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_a_damaged_packaged_file_is_detected(tmp_path):
    for f in datasets.PACKAGED.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="damaged"):
        datasets.load("mnist", sources=datasets.Sources(packaged=tmp_path))


def test_idx_round_trip_gzip_and_raw(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(encode_idx(a))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(encode_idx(a)))
    for name in ("a.idx", "a.idx.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), a)
    f = np.linspace(0, 1, 6).reshape(2, 3)
    np.testing.assert_array_equal(parse_idx(encode_idx(f)), f)


@pytest.mark.parametrize(
    "data,match",
    [
        (b"\x00\x00", "truncated IDX file"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "truncated: header says"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abc", "trailing bytes"),
    ],
)
def test_bad_idx_data_is_named(data, match):
    with pytest.raises(DataError, match=match) as info:
        parse_idx(data, "labels.idx")
    assert str(info.value).startswith("labels.idx:")


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(encode_idx(np.zeros(1000, np.uint8)))[:-20])
    with pytest.raises(DataError, match=f"{path}: damaged or truncated gzip"):
        read_idx(path)


def test_image_and_label_counts_must_agree(tmp_path):
    images = np.zeros((3, 28, 28), np.uint8)
    for base, arr in zip(datasets.FILES, (images, np.zeros(4, np.uint8), images, np.zeros(3, np.uint8))):
        (tmp_path / base).write_bytes(encode_idx(arr))
    fake = {base: hashlib.sha256((tmp_path / base).read_bytes()).hexdigest() for base in datasets.FILES}
    datasets.SHA256["fake"] = fake
    try:
        with pytest.raises(DataError, match="images do not match"):
            datasets.load("fake", tmp_path)
    finally:
        del datasets.SHA256["fake"]


def test_fashion_mnist_from_a_named_directory(shared_fashion):
    data = datasets.load_fashion_mnist(shared_fashion)
    assert data.X_train.shape == (60000, 784) and list(np.bincount(data.y_test)) == [1000] * 10
    assert data.classes[9] == "Ankle boot"


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="fashion-mnist files not found in"):
        datasets.load_fashion_mnist(tmp_path)


def test_preprocessing():
    X = np.array([[0, 51, 255], [0, 10, 20]], dtype=np.uint8)
    np.testing.assert_allclose(datasets.scale(X)[0], [0, 0.2, 1])
    np.testing.assert_allclose(datasets.scale(X, "max")[1], [0, 0.5, 1])
    s = datasets.scale(X, "standardize")
    assert abs(s.mean()) < 1e-12 and abs(s.std() - 1) < 1e-12
    np.testing.assert_array_equal(datasets.scale(X, "none"), X)
    Xp, yp = datasets.digit_pair(np.arange(6)[:, None], np.array([3, 1, 9, 3, 5, 9]), "3,9")
    assert Xp[:, 0].tolist() == [0, 2, 3, 5] and yp.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValidationError, match="two different classes"):
        datasets.digit_pair(X, np.zeros(2), (3, 3))
    Xtr, ytr, Xv, yv = datasets.validation_split(np.arange(10)[:, None], np.arange(10), 0.2)
    assert len(Xv) == 2 and sorted(np.r_[ytr, yv]) == list(range(10))


# -- downloading, against a server on 127.0.0.1 serving files the test writes ------------------
@pytest.fixture
def server(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def _small_dataset(root):
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (20, 28, 28), dtype=np.uint8), rng.integers(0, 10, 20).astype(np.uint8),
              rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), rng.integers(0, 10, 5).astype(np.uint8)]
    sums = {}
    for base, arr in zip(datasets.FILES, arrays):
        raw = encode_idx(arr)
        (root / f"{base}.gz").write_bytes(gzip.compress(raw))
        sums[base] = hashlib.sha256(raw).hexdigest()
    return arrays, sums


def test_download_into_the_cache(server, tmp_path, monkeypatch):
    root, url = server
    arrays, sums = _small_dataset(root)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("XPNET_DATA", raising=False)
    sources = datasets.Sources(debian_dir=tmp_path / "nowhere", sha256={"fashion-mnist": sums},
                               mirrors={"fashion-mnist": ["http://127.0.0.1:9/", url]})  # the first one refuses
    data = datasets.load_fashion_mnist(progress=False, sources=sources)
    np.testing.assert_array_equal(data.X_train, arrays[0].reshape(20, -1))
    cached = tmp_path / "cache" / "xpnet" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(f"{b}.gz" for b in datasets.FILES)
    # a damaged cached file is fetched again, once
    (cached / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    assert datasets.load_fashion_mnist(progress=False, sources=sources).y_test.tolist() == arrays[3].tolist()


def test_download_with_a_wrong_checksum_keeps_nothing(server, tmp_path):
    root, url = server
    _, sums = _small_dataset(root)
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch.download("train-labels-idx1-ubyte.gz", tmp_path / "c", [url], "0" * 64, progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_offline_download_is_one_clear_line(tmp_path):
    with pytest.raises(DataError) as info:
        fetch.download("x.gz", tmp_path, ["http://127.0.0.1:9/"], "0" * 64, progress=False)
    message = str(info.value)
    assert "could not download x.gz" in message and "--data-dir" in message and "\n" not in message
