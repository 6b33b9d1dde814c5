"""The IDX file format of MNIST and Fashion-MNIST, gzip-compressed or raw.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (TT: element type, NN: number of dimensions), NN
big-endian uint32 dimension sizes, then the elements in C order. Every problem -- a wrong magic number,
a truncated header or body, trailing bytes, a broken gzip stream -- raises
:class:`~xpnet.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

#: IDX element type codes -> big-endian NumPy dtypes.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_bytes(path) -> bytes:
    """The content of ``path``, decompressed when it is gzip (recognised by its magic bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: damaged or truncated gzip data ({type(exc).__name__}: {exc})") from None


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX ``data`` into an array (native byte order), validating header and length."""
    if len(data) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(data)} bytes; the header alone is at least 4)")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DataError(f"{name}: not an IDX file (magic number {data[:4].hex()}, expected 0000TTNN with a known type TT)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes; {ndim} dimensions need {header})")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[data[2]])
    expected = math.prod(dims) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise DataError(f"{name}: IDX body {problem}: header says {dims} x {dtype.itemsize} bytes = {expected}, found {found}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw); with ``sha256``, check the decompressed content against it."""
    data = read_bytes(path)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise DataError(f"{path}: checksum mismatch (sha256 of its content is {digest[:16]}..., expected {sha256[:16]}...); the file is damaged or not the expected one")
    return parse_idx(data, str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes for ``array`` (the inverse of :func:`parse_idx`; used by tests and tools)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    array = np.asarray(array)
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(IDX_TYPES[code]).tobytes()
