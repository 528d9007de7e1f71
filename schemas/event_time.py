"""Event time (and request id) of an Impression or Click read from, or rewritten in, the first bytes of its
Avro value, without decoding it.

Both records start with two strings (request_id, then user_id or item_id) and the long `event_time`
(schemas/impression.avsc, schemas/click.avsc): skipping two length-prefixed strings and reading one
zig-zag varint is ~20x cheaper than a full decode, which matters when replay moves millions of them.
"""

from __future__ import annotations

#: Record names whose third field is the long `event_time` after two strings.
EVENT_TIME_PREFIX_RECORDS = frozenset({"Impression", "Click"})


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """One Avro zig-zag varint at `pos`: (value, next position); IndexError/ValueError on bad bytes."""
    shift = 0
    raw = 0
    while True:
        b = data[pos]
        pos += 1
        raw |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")
    return (raw >> 1) ^ -(raw & 1), pos


def event_time_of(value: bytes | None) -> int | None:
    """`event_time` of an Avro Impression/Click value, or None if the bytes cannot hold one."""
    if not value:
        return None
    try:
        pos = 0
        for _ in range(2):
            length, pos = _varint(value, pos)
            if length < 0:
                return None
            pos += length
        if pos >= len(value):
            return None
        t, _ = _varint(value, pos)
        return t
    except (IndexError, ValueError):
        return None


def encode_long(n: int) -> bytes:
    """The Avro zig-zag varint of a long (the inverse of `_varint`)."""
    if not -(1 << 63) <= n < (1 << 63):
        raise OverflowError(f"{n} is out of the range of an Avro long")
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


#: (request_id as UTF-8, the second field's bytes as written, event_time, the rest of the value).
EventPrefix = tuple[bytes, bytes, int, bytes]


def split_event_prefix(value: bytes | None) -> EventPrefix | None:
    """An Impression/Click value cut around its request_id and event_time, or None if the bytes cannot hold
    them. `join_event_prefix` of the parts gives the value back, with a new request_id or event time if asked."""
    if not value:
        return None
    try:
        length, pos = _varint(value, 0)
        if length < 0 or pos + length > len(value):
            return None
        request_id = value[pos:pos + length]
        second_at = pos + length
        length, pos = _varint(value, second_at)
        if length < 0 or pos + length >= len(value):
            return None
        time_at = pos + length
        t, end = _varint(value, time_at)
        return request_id, value[second_at:time_at], t, value[end:]
    except (IndexError, ValueError):
        return None


def join_event_prefix(request_id: bytes, second: bytes, event_time: int, tail: bytes) -> bytes:
    """The value `split_event_prefix` cut, with this request_id (UTF-8) and event time."""
    return b"".join((encode_long(len(request_id)), request_id, second, encode_long(event_time), tail))
