"""The Kubernetes protobuf wire format, as much of it as the fake API server
speaks (standard library only).

A protobuf request or answer is the 4 bytes "k8s\\0" and then a
runtime.Unknown message: typeMeta (1: apiVersion = 1, kind = 2), raw (2: the
object's own message), contentEncoding (3) and contentType (4). kubectl's
typed clients (`kubectl auth can-i` among them) send that by default.

Messages are handled as {field number: [values]}: a varint field's values
are ints, a length-delimited one's are bytes (a string, or a nested message
to decode in turn), a fixed 64- or 32-bit one's are ints as well (no
message the fake reads has one: an unknown field, skipped as protobuf
skips it). Groups (wire types 3, 4) and truncated fields are refused. A
nested message given more than once is the merge of its copies, as in
protobuf; a string given more than once, the last.
"""

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5


class ProtobufError(ValueError):
    """The bytes are not a message of the supported shape."""


def _varint(data, pos):
    """The varint at data[pos:] and the position after it."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 64 bits")


def decode(data):
    """{field number: [values]} of one message's bytes."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        if wire == VARINT:
            value, pos = _varint(data, pos)
        elif wire in (LENGTH_DELIMITED, FIXED64, FIXED32):
            if wire == LENGTH_DELIMITED:
                length, pos = _varint(data, pos)
            else:
                length = 8 if wire == FIXED64 else 4
            if pos + length > len(data):
                raise ProtobufError("field %d runs past the end of its message" % number)
            value, pos = bytes(data[pos:pos + length]), pos + length
            if wire != LENGTH_DELIMITED:
                value = int.from_bytes(value, "little")
        else:
            raise ProtobufError("field %d has wire type %d, which no message read here uses"
                                % (number, wire))
        fields.setdefault(number, []).append(value)
    return fields


def text(fields, number):
    """The last value of a string field (protobuf's rule for a repeated
    scalar), "" when absent."""
    values = fields.get(number)
    if not values:
        return ""
    if not isinstance(values[-1], bytes):
        raise ProtobufError("field %d is not a string" % number)
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError("field %d is not UTF-8" % number)


def message(fields, number):
    """The nested message in field `number`, decoded (the merge of its
    copies); None when absent."""
    values = fields.get(number)
    if not values:
        return None
    if not all(isinstance(value, bytes) for value in values):
        raise ProtobufError("field %d is not a message" % number)
    return decode(b"".join(values))


def _encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(pairs):
    """The bytes of a message from (field number, value) pairs in order: a
    bool or int is a varint, str and bytes are length-delimited (a nested
    message is passed as its encoded bytes)."""
    out = bytearray()
    for number, value in pairs:
        if isinstance(value, (bool, int)):
            out += _encode_varint(number << 3 | VARINT) + _encode_varint(int(value))
        else:
            raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
            out += _encode_varint(number << 3 | LENGTH_DELIMITED) + _encode_varint(len(raw)) + raw
    return bytes(out)


def unwrap(body):
    """(apiVersion, kind, raw object bytes) of an enveloped body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the protobuf magic number")
    envelope = decode(body[len(MAGIC):])
    type_meta = message(envelope, 1) or {}
    raw = envelope.get(2)
    return text(type_meta, 1), text(type_meta, 2), raw[-1] if raw else b""


def wrap(api_version, kind, raw):
    """The enveloped body of the object message `raw`."""
    type_meta = encode([(1, api_version), (2, kind)])
    return MAGIC + encode([(1, type_meta), (2, raw), (3, ""), (4, "")])


def wants_protobuf(accept):
    """Whether an Accept header puts protobuf before JSON (client-go's typed
    clients send "application/vnd.kubernetes.protobuf,application/json")."""
    for media in (accept or "").split(","):
        media_type = media.split(";")[0].strip().lower()
        if media_type == CONTENT_TYPE:
            return True
        if media_type in ("application/json", "*/*", "application/*"):
            return False
    return False
