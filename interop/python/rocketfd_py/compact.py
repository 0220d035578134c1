"""Thrift Compact protocol: the subset spec/fd-passing.md section 6.1 needs.

Writing: encode_struct() turns a list of (field id, type, value) triples into
bytes.  Reading: decode_struct() checks a blob against a schema (known fields
with their types), skips unknown fields of any type at any depth without
recursion (META-2, META-23), and refuses anything that is not exactly one
struct (META-3): truncated, a known field of another wire type, a union with
more than one field, a type code that is not a type, bytes after the end.
"""

import struct as _struct

STOP = 0
BOOL_TRUE = 1
BOOL_FALSE = 2
BYTE = 3
I16 = 4
I32 = 5
I64 = 6
DOUBLE = 7
BINARY = 8
LIST = 9
SET = 10
MAP = 11
STRUCT = 12
FLOAT = 13
LAST_TYPE = FLOAT

# The type used in schemas and writers for a bool; on the wire it is 1 or 2.
BOOL = BOOL_TRUE

_INT_LIMITS = {
    BYTE: (-(1 << 7), (1 << 7) - 1),
    I16: (-(1 << 15), (1 << 15) - 1),
    I32: (-(1 << 31), (1 << 31) - 1),
    I64: (-(1 << 63), (1 << 63) - 1),
}

MAX_VARINT_BYTES = 10


class DecodeError(ValueError):
    """The bytes are not a valid Compact encoding of the expected struct."""


# ---------------------------------------------------------------------------
# Writing


def varint(value):
    if value < 0:
        raise ValueError("varint of a negative number")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value, bits=64):
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= value <= high:
        raise ValueError("%d does not fit %d bits" % (value, bits))
    return (value << 1) if value >= 0 else ((-value) << 1) - 1


def unzigzag(value):
    return (value >> 1) if not value & 1 else -((value + 1) >> 1)


def _is_bool_type(ttype):
    return ttype in (BOOL_TRUE, BOOL_FALSE)


def _write_value(out, ttype, value):
    if _is_bool_type(ttype):
        out.append(BOOL_TRUE if value else BOOL_FALSE)
    elif ttype == BYTE:
        out += _struct.pack("<b", value)
    elif ttype in (I16, I32, I64):
        bits = {I16: 16, I32: 32, I64: 64}[ttype]
        out += varint(zigzag(value, bits))
    elif ttype == DOUBLE:
        out += _struct.pack(">d", value)
    elif ttype == FLOAT:
        out += _struct.pack(">f", value)
    elif ttype == BINARY:
        if isinstance(value, str):
            value = value.encode("utf-8")
        out += varint(len(value))
        out += value
    elif ttype in (LIST, SET):
        elem_type, items = value
        if len(items) <= 14:
            out.append(len(items) << 4 | elem_type)
        else:
            out.append(0xF0 | elem_type)
            out += varint(len(items))
        for item in items:
            _write_value(out, elem_type, item)
    elif ttype == MAP:
        key_type, val_type, pairs = value
        if not pairs:
            out.append(0)
            return
        out += varint(len(pairs))
        out.append(key_type << 4 | val_type)
        for key, val in pairs:
            _write_value(out, key_type, key)
            _write_value(out, val_type, val)
    elif ttype == STRUCT:
        _write_struct(out, value)
    else:
        raise ValueError("cannot write type %r" % (ttype,))


def _write_field_header(out, field_id, ttype, last_id):
    delta = field_id - last_id
    if 1 <= delta <= 15:
        out.append(delta << 4 | ttype)
    else:
        out.append(ttype)
        out += varint(zigzag(field_id, 16))


def _write_struct(out, fields):
    last_id = 0
    for field_id, ttype, value in fields:
        if value is None:
            continue
        if _is_bool_type(ttype):
            _write_field_header(out, field_id, BOOL_TRUE if value else BOOL_FALSE, last_id)
        else:
            _write_field_header(out, field_id, ttype, last_id)
            _write_value(out, ttype, value)
        last_id = field_id
    out.append(STOP)


def encode_struct(fields):
    """Encodes [(id, type, value), ...]; a value of None leaves the field out.

    Values: int for integers, bytes or str for BINARY, bool for BOOL, a field
    list for STRUCT, (elem_type, [items]) for LIST and SET, and
    (key_type, value_type, [(key, value)]) for MAP.
    """
    out = bytearray()
    _write_struct(out, fields)
    return bytes(out)


# ---------------------------------------------------------------------------
# Reading


class Reader:
    """A cursor over bytes; every read checks that the bytes are there."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf, pos=0, end=None):
        self.buf = buf
        self.pos = pos
        self.end = len(buf) if end is None else end

    def remaining(self):
        return self.end - self.pos

    def byte(self):
        if self.pos >= self.end:
            raise DecodeError("truncated")
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def take(self, count):
        if count > self.end - self.pos:
            raise DecodeError("truncated: %d bytes wanted, %d left" % (count, self.end - self.pos))
        value = bytes(self.buf[self.pos:self.pos + count])
        self.pos += count
        return value

    def varint(self):
        value = 0
        for shift in range(0, 7 * MAX_VARINT_BYTES, 7):
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                if value >> 64:
                    raise DecodeError("varint beyond 64 bits")
                return value
        raise DecodeError("varint longer than %d bytes" % MAX_VARINT_BYTES)

    def integer(self, ttype):
        if ttype == BYTE:
            value = self.byte()
            return value - 256 if value >= 128 else value
        value = unzigzag(self.varint())
        low, high = _INT_LIMITS[ttype]
        if not low <= value <= high:
            raise DecodeError("integer %d out of range for its type" % value)
        return value

    def binary(self):
        return self.take(self.varint())

    def bool_element(self):
        """A bool inside a list, set or map: 1 true, 2 false, 0 (older writers) false."""
        byte = self.byte()
        if byte not in (0, BOOL_TRUE, BOOL_FALSE):
            raise DecodeError("bad bool element byte %d" % byte)
        return byte == BOOL_TRUE

    def field_header(self, last_id):
        """Returns (type, id), or (STOP, None) at the end of a struct."""
        byte = self.byte()
        if byte == STOP:
            return STOP, None
        ttype = byte & 0x0F
        delta = byte >> 4
        if not BOOL_TRUE <= ttype <= LAST_TYPE:
            raise DecodeError("unknown field type %d" % ttype)
        if delta:
            field_id = last_id + delta
        else:
            field_id = self.integer(I16)
        return ttype, field_id

    def collection_header(self, ttype):
        """Returns the element types and count of a list, set or map."""
        if ttype == MAP:
            count = self.varint()
            if count == 0:
                return (None, None), 0
            kinds = self.byte()
            key_type, val_type = kinds >> 4, kinds & 0x0F
            for elem in (key_type, val_type):
                if not BOOL_TRUE <= elem <= LAST_TYPE:
                    raise DecodeError("unknown map element type %d" % elem)
            # Every element takes at least one byte.
            if count > self.remaining() // 2:
                raise DecodeError("map size %d exceeds the bytes left" % count)
            return (key_type, val_type), count
        header = self.byte()
        elem_type = header & 0x0F
        count = header >> 4
        if count == 15:
            count = self.varint()
        if not BOOL_TRUE <= elem_type <= LAST_TYPE:
            raise DecodeError("unknown list element type %d" % elem_type)
        if count > self.remaining():
            raise DecodeError("list size %d exceeds the bytes left" % count)
        return (elem_type, None), count


def skip(reader, ttype, in_field=False):
    """Skips one value of type ttype, iteratively: nesting depth is bounded
    only by the input's length, never by Python's recursion limit.

    in_field: the value follows a field header, so a bool has no byte.
    """
    # Stack items: ("struct", last_id) or ("seq", [types...], remaining count)
    stack = []
    pending = [(ttype, in_field)]
    while True:
        if pending:
            current, field_bool = pending.pop()
            if _is_bool_type(current):
                if not field_bool:
                    reader.bool_element()
            elif current in (BYTE,):
                reader.byte()
            elif current in (I16, I32, I64):
                reader.varint()
            elif current == DOUBLE:
                reader.take(8)
            elif current == FLOAT:
                reader.take(4)
            elif current == BINARY:
                reader.take(reader.varint())
            elif current == STRUCT:
                stack.append(["struct", 0])
            elif current in (LIST, SET):
                (elem_type, _), count = reader.collection_header(current)
                stack.append(["seq", [elem_type], count])
            elif current == MAP:
                (key_type, val_type), count = reader.collection_header(MAP)
                stack.append(["seq", [key_type, val_type], count])
            else:
                raise DecodeError("cannot skip type %d" % current)
            continue
        if not stack:
            return
        top = stack[-1]
        if top[0] == "struct":
            field_type, field_id = reader.field_header(top[1])
            if field_type == STOP:
                stack.pop()
                continue
            top[1] = field_id
            pending.append((field_type, True))
        else:
            if top[2] == 0:
                stack.pop()
                continue
            top[2] -= 1
            for elem_type in reversed(top[1]):
                pending.append((elem_type, False))


class Union(dict):
    """A schema whose struct is a union: at most one field of any id (6.1).
    A union with no field, or with only a field the schema does not know,
    decodes as {} (empty); two or more fields are malformed."""


# A schema is {field id: (name, type, sub)} where sub is a schema for STRUCT,
# the element spec for LIST/SET ((elem_type, elem_sub)), (key spec, value spec)
# for MAP, and None otherwise.  Values decode to int, bytes, bool, dict (structs,
# keyed by name), list and list of pairs.
#
# A fourth element LENIENT marks a field that is read only when it has the
# expected shape and is otherwise skipped like an unknown field: a field the
# spec does not list as known (6.1) but from which a value is taken when it
# fits, such as otherMetadata's map of strings (EXT-2).

LENIENT = "lenient"


def _types_match(expected, actual):
    if _is_bool_type(expected):
        return _is_bool_type(actual)
    return expected == actual


def _read_value(reader, ttype, sub, wire_type, in_field):
    if _is_bool_type(ttype):
        if in_field:
            return wire_type == BOOL_TRUE
        return reader.bool_element()
    if ttype in (BYTE, I16, I32, I64):
        return reader.integer(ttype)
    if ttype == DOUBLE:
        return _struct.unpack(">d", reader.take(8))[0]
    if ttype == FLOAT:
        return _struct.unpack(">f", reader.take(4))[0]
    if ttype == BINARY:
        return reader.binary()
    if ttype == STRUCT:
        return read_struct(reader, sub)
    if ttype in (LIST, SET):
        (elem_type, _), count = reader.collection_header(ttype)
        want_type, want_sub = sub
        if count and not _types_match(want_type, elem_type):
            raise DecodeError("list element type %d, expected %d" % (elem_type, want_type))
        return [_read_value(reader, want_type, want_sub, elem_type, False) for _ in range(count)]
    if ttype == MAP:
        (key_type, val_type), count = reader.collection_header(MAP)
        (want_key, key_sub), (want_val, val_sub) = sub
        if count and not (_types_match(want_key, key_type) and _types_match(want_val, val_type)):
            raise DecodeError("map element types do not match")
        pairs = []
        for _ in range(count):
            key = _read_value(reader, want_key, key_sub, key_type, False)
            pairs.append((key, _read_value(reader, want_val, val_sub, val_type, False)))
        return pairs
    raise DecodeError("cannot read type %d" % ttype)


def read_struct(reader, schema):
    """Reads one struct; returns {name: value} for the known fields present.
    A field id seen twice keeps its later value, whole."""
    result = {}
    last_id = 0
    fields_seen = 0
    while True:
        wire_type, field_id = reader.field_header(last_id)
        if wire_type == STOP:
            return result
        fields_seen += 1
        if fields_seen > 1 and isinstance(schema, Union):
            raise DecodeError("union with more than one field")
        last_id = field_id
        known = schema.get(field_id)
        if known is None:
            skip(reader, wire_type, in_field=True)
            continue
        name, ttype, sub = known[:3]
        if known[3:] == (LENIENT,):
            _read_lenient(reader, result, name, ttype, sub, wire_type)
            continue
        if not _types_match(ttype, wire_type):
            raise DecodeError("field %d (%s) has type %d, expected %d" % (field_id, name, wire_type, ttype))
        result[name] = _read_value(reader, ttype, sub, wire_type, True)


def _read_lenient(reader, result, name, ttype, sub, wire_type):
    """A LENIENT field: its value when it has the expected shape; otherwise it
    is skipped and the field counts as absent, an earlier value included."""
    start = reader.pos
    if _types_match(ttype, wire_type):
        try:
            result[name] = _read_value(reader, ttype, sub, wire_type, True)
            return
        except DecodeError:
            reader.pos = start
    result.pop(name, None)
    skip(reader, wire_type, in_field=True)


def decode_struct(buf, schema):
    """Decodes buf as exactly one struct: no truncation, nothing after it."""
    reader = Reader(buf)
    result = read_struct(reader, schema)
    if reader.remaining():
        raise DecodeError("%d bytes after the struct" % reader.remaining())
    return result
