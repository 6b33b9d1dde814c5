"""Downloading a dataset file into the cache: progress bar, checksum, atomic write, clear errors."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..io import atomic_write
from ..progress import Progress
from .idx import read_bytes

TIMEOUT = 30  # seconds without data before a mirror is given up


def _fetch(url: str, progress: bool | None) -> bytes:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        total = int(response.headers.get("Content-Length") or 0)
        chunks = []
        with Progress(total, f"downloading {url.rsplit('/', 1)[-1]}", enabled=progress, unit="B") as bar:
            while chunk := response.read(1 << 16):
                chunks.append(chunk)
                bar.update(len(chunk))
    return b"".join(chunks)


def _content_ok(path: Path, sha256: str) -> bool:
    try:
        return hashlib.sha256(read_bytes(path)).hexdigest() == sha256
    except DataError:
        return False


def download(filename: str, directory, mirrors, sha256: str, progress: bool | None = None) -> Path:
    """``directory/filename``, downloaded from the first mirror that serves it with the right content.

    ``sha256`` is of the uncompressed content. A cached file that does not match is fetched again (once);
    a download that does not match is never moved into place. Offline, or when every mirror fails, a
    :class:`~xpnet.errors.DataError` lists what was tried and where the files can be put by hand.
    """
    target = Path(directory) / filename
    if target.is_file():
        if _content_ok(target, sha256):
            return target
        target.unlink()  # damaged or stale: fetch it again, once
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            data = _fetch(url, progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        tmp = Path(directory) / f".{filename}.check"
        atomic_write(tmp, lambda f: f.write(data))
        try:
            ok = _content_ok(tmp, sha256)
            if ok:
                tmp.replace(target)
                return target
        finally:
            tmp.unlink(missing_ok=True)
        failures.append(f"{url}: checksum mismatch")
    raise DataError(
        f"could not download {filename} ({'; '.join(failures)}); put the files in a directory and pass "
        f"--data-dir (or set XPNET_DATA), or on Debian: apt-get install dataset-fashion-mnist"
    )
