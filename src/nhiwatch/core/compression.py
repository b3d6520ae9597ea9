"""gzip through zlib-ng when it is installed (about three times faster), else the standard library.

Both read and write the same gzip format; only speed (and the exact compressed bytes) differ.
"""

from __future__ import annotations

try:
    from zlib_ng import gzip_ng as _gzip
    from zlib_ng import zlib_ng as _zlib
except ImportError:  # a platform without the wheel still works, more slowly
    import gzip as _gzip  # type: ignore[no-redef]
    import zlib as _zlib  # type: ignore[no-redef]

ZlibError: type[Exception] = getattr(_zlib, "error")  # zlib.error (zlib-ng ships no type stubs)
MAX_WBITS = _zlib.MAX_WBITS
crc32 = _zlib.crc32


def gzip_compress(data: bytes, level: int = 6) -> bytes:
    """gzip with a zero timestamp, so the same input always gives the same bytes."""
    return _gzip.compress(data, compresslevel=level, mtime=0)


def gzip_decompressor():
    """A streaming inflater for gzip members (16 + MAX_WBITS: expect a gzip header)."""
    return _zlib.decompressobj(16 + _zlib.MAX_WBITS)


def raw_inflater():
    """A streaming inflater for bare deflate data (no header, no check): reads what a damaged gzip
    member still holds. Both libraries' inflaters take max_length and keep unconsumed_tail, so output
    can be drawn in bounded steps."""
    return _zlib.decompressobj(-_zlib.MAX_WBITS)
