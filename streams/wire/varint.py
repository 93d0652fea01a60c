"""Avro's zig-zag varints (``int`` and ``long``): the one reader and the one writer
that every hand-written codec in this layer (usage reader, contributions, container
files) uses."""

from __future__ import annotations


class WireError(ValueError):
    """The bytes are not the Avro body they were read as."""


def read_long(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The Avro ``int``/``long`` at ``pos`` and the position after it; IndexError if
    the bytes end inside it, :class:`WireError` if it runs beyond 64 bits."""
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 7
    while b & 0x80:
        b = data[pos]
        pos += 1
        if shift == 63 and b > 1:  # a 10th byte may hold only the 64th bit
            raise WireError("a varint beyond 64 bits")
        n |= (b & 0x7F) << shift
        shift += 7
    return (n >> 1) ^ -(n & 1), pos


def _encode(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


SMALL_LONGS = 1 << 12
_SMALL = [_encode(i) for i in range(SMALL_LONGS)]
"""Encoded non-negative longs below 4096 (string lengths, counts, partitions): looked
up, not computed, since the writers emit several per record."""


def write_long(n: int) -> bytes:
    """The Avro ``int``/``long`` ``n``: zig-zag, then base-128, low group first."""
    return _SMALL[n] if 0 <= n < SMALL_LONGS else _encode(n)
