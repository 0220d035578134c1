"""The RPC metadata structs of spec sections 5 and 6, with fbthrift's field ids."""

from . import compact as c
from .frame import PROTOCOL_KEY

PROTOCOL_COMPACT = 2

KIND_SINGLE_REQUEST_SINGLE_RESPONSE = 0
KIND_SINGLE_REQUEST_NO_RESPONSE = 1
KIND_SINGLE_REQUEST_STREAMING_RESPONSE = 4
KIND_SINK = 6
KIND_BIDIRECTIONAL_STREAM = 7

CATEGORY_INTERNAL_ERROR = 0
CATEGORY_INVALID_REQUEST = 1
CATEGORY_LOADSHEDDING = 2
CATEGORY_SHUTDOWN = 3

CODE_UNKNOWN = 0
CODE_OVERLOAD = 1
CODE_REQUEST_PARSING_FAILURE = 6
CODE_WRONG_RPC_KIND = 9
CODE_UNKNOWN_METHOD = 10

# StreamRpcErrorCode (6.5)
STREAM_CODE_UNKNOWN = 0
STREAM_CODE_CREDIT_TIMEOUT = 1
STREAM_CODE_CHUNK_TIMEOUT = 2

# The extensions of 21.8, offered in SETUP and answered in a sink's first response.
FDS_KEY = b"rocketfd.fds"
EXT_SINK = b"sink"
EXT_EXCEPTION = b"exception"
KNOWN_EXTENSIONS = (EXT_SINK, EXT_EXCEPTION)

# A sink's completion carries the empty StreamPayloadMetadata (SINK-6).
EMPTY_STREAM_PAYLOAD_METADATA = b"\x00"

MIN_ROCKET_VERSION = 8
MAX_ROCKET_VERSION = 10

# The schemas hold exactly the known fields of the table under META-3 (6.1),
# the only fields whose wire type is checked; every other field, including
# those the spec lists as ignored (RequestRpcMetadata 8 and 15, ClientMetadata
# 2, SetupResponse 2 and 5), is skipped whatever its type.  The two
# otherMetadata fields that carry 21.8's offer and answer are not known
# fields either: they are read when they are a map of strings and skipped
# otherwise (EXT-2).  Structs the table
# does not list (PayloadResponseMetadata, PayloadDeclaredExceptionMetadata,
# InteractionCreate, CompressionConfig, CompressionSetupRequest) have no known
# field: {} checks only the wire type of the field that holds them.

FD_METADATA = {
    1: ("fdSeqNum", c.I64, None),
    2: ("numFds", c.I32, None),
}

CHECKSUM = {
    1: ("algorithm", c.I32, None),
}

REQUEST_RPC_METADATA = {
    1: ("protocol", c.I32, None),
    2: ("name", c.BINARY, None),
    3: ("kind", c.I32, None),
    5: ("clientTimeoutMs", c.I32, None),
    14: ("compression", c.I32, None),
    16: ("interactionId", c.I64, None),
    17: ("interactionCreate", c.STRUCT, {}),
    22: ("fdMetadata", c.STRUCT, FD_METADATA),
    25: ("checksum", c.STRUCT, CHECKSUM),
}

PAYLOAD_EXCEPTION_METADATA = c.Union({
    1: ("declaredException", c.STRUCT, {}),
    6: ("appUnknownException", c.STRUCT, {}),
})

PAYLOAD_EXCEPTION_METADATA_BASE = {
    1: ("name_utf8", c.BINARY, None),
    2: ("what_utf8", c.BINARY, None),
    3: ("metadata", c.STRUCT, PAYLOAD_EXCEPTION_METADATA),
}

PAYLOAD_METADATA = c.Union({
    1: ("responseMetadata", c.STRUCT, {}),
    2: ("exceptionMetadata", c.STRUCT, PAYLOAD_EXCEPTION_METADATA_BASE),
})

OTHER_METADATA = ((c.BINARY, None), (c.BINARY, None))

RESPONSE_RPC_METADATA = {
    3: ("otherMetadata", c.MAP, OTHER_METADATA, c.LENIENT),
    6: ("compression", c.I32, None),
    7: ("payloadMetadata", c.STRUCT, PAYLOAD_METADATA),
    12: ("fdMetadata", c.STRUCT, FD_METADATA),
    14: ("checksum", c.STRUCT, CHECKSUM),
}

STREAM_PAYLOAD_METADATA = {
    1: ("compression", c.I32, None),
    3: ("payloadMetadata", c.STRUCT, PAYLOAD_METADATA),
    5: ("fdMetadata", c.STRUCT, FD_METADATA),
    6: ("checksum", c.STRUCT, CHECKSUM),
}

RESPONSE_RPC_ERROR = {
    1: ("name_utf8", c.BINARY, None),
    2: ("what_utf8", c.BINARY, None),
    3: ("category", c.I32, None),
    4: ("code", c.I32, None),
}

CLIENT_METADATA = {
    1: ("agent", c.BINARY, None),
    3: ("otherMetadata", c.MAP, OTHER_METADATA, c.LENIENT),
}

REQUEST_SETUP_METADATA = {
    3: ("minVersion", c.I32, None),
    4: ("maxVersion", c.I32, None),
    9: ("clientMetadata", c.STRUCT, CLIENT_METADATA),
    13: ("encodeMetadataUsingBinary", c.BOOL, None),
    14: ("compressionSetupRequest", c.STRUCT, {}),
}

SETUP_RESPONSE = {
    1: ("version", c.I32, None),
}

SERVER_PUSH_METADATA = c.Union({
    1: ("setupResponse", c.STRUCT, SETUP_RESPONSE),
})


# ---------------------------------------------------------------------------
# Encoders


def fd_metadata_fields(fd_seq_num, num_fds):
    return [(1, c.I64, fd_seq_num), (2, c.I32, num_fds)]


def encode_fd_metadata(fd_seq_num, num_fds):
    return c.encode_struct(fd_metadata_fields(fd_seq_num, num_fds))


def encode_request_metadata(name, kind, fd_seq_num=None, num_fds=0, protocol=PROTOCOL_COMPACT):
    """RequestRpcMetadata with protocol, name, kind and, with FDs, fdMetadata (META-4, META-9)."""
    fields = [(1, c.I32, protocol), (2, c.BINARY, name), (3, c.I32, kind)]
    if num_fds:
        fields.append((22, c.STRUCT, fd_metadata_fields(fd_seq_num, num_fds)))
    return c.encode_struct(fields)


def _payload_metadata_fields(exception):
    """responseMetadata {} or, with exception = (name, what), exceptionMetadata
    for a declared exception (META-6, META-7)."""
    if exception is None:
        return [(1, c.STRUCT, [])]
    name, what = exception
    return [(2, c.STRUCT, [
        (1, c.BINARY, name),
        (2, c.BINARY, what),
        (3, c.STRUCT, [(1, c.STRUCT, [])]),
    ])]


def _other_metadata_field(field_id, extensions):
    """The key rocketfd.fds with the names in EXT-1's form, or nothing without names."""
    if not extensions:
        return []
    return [(field_id, c.MAP, (c.BINARY, c.BINARY, [(FDS_KEY, encode_extension_names(extensions))]))]


def encode_response_metadata(fd_seq_num=None, num_fds=0, exception=None, extensions=()):
    """ResponseRpcMetadata of a response or of a stream's or sink's first
    response; extensions is the answer of 21.8 (EXT-3)."""
    fields = _other_metadata_field(3, extensions)
    fields.append((7, c.STRUCT, _payload_metadata_fields(exception)))
    if num_fds:
        fields.append((12, c.STRUCT, fd_metadata_fields(fd_seq_num, num_fds)))
    return c.encode_struct(fields)


def encode_stream_payload_metadata(fd_seq_num=None, num_fds=0, exception=None):
    """StreamPayloadMetadata of a stream item, a sink item or a sink's final
    response (STREAM-3, SINK-5, SINK-7)."""
    fields = [(3, c.STRUCT, _payload_metadata_fields(exception))]
    if num_fds:
        fields.append((5, c.STRUCT, fd_metadata_fields(fd_seq_num, num_fds)))
    return c.encode_struct(fields)


def encode_stream_rpc_error(what, code=STREAM_CODE_UNKNOWN, name=None):
    """StreamRpcError: the data of an ERROR that ends a stream or a sink after its first response (6.5)."""
    return c.encode_struct([(1, c.BINARY, name), (2, c.BINARY, what), (4, c.I32, code)])


def encode_extension_names(names):
    """EXT-1: each name once, separated by single commas, no white space."""
    unique = []
    for name in names:
        if name not in unique:
            unique.append(name)
    return b",".join(unique)


def extension_names(other_metadata):
    """EXT-2: the known names in the value of rocketfd.fds, the last entry
    winning; no names when the map, or the key, is absent."""
    value = None
    for key, entry in other_metadata or ():
        if key == FDS_KEY:
            value = entry
    if value is None:
        return frozenset()
    names = (part.strip(b" \t") for part in value.split(b","))
    return frozenset(name for name in names if name in KNOWN_EXTENSIONS)


def encode_response_rpc_error(what, category, code, name=None):
    return c.encode_struct([(1, c.BINARY, name), (2, c.BINARY, what), (3, c.I32, category),
                            (4, c.I32, code)])


def encode_setup_metadata(min_version=MIN_ROCKET_VERSION, max_version=MAX_ROCKET_VERSION, agent=None,
                          hostname=None, offer=()):
    """The SETUP metadata: the protocol key and a RequestSetupMetadata (SETUP-4),
    with the extensions offered in ClientMetadata.otherMetadata (EXT-1)."""
    fields = [(3, c.I32, min_version), (4, c.I32, max_version)]
    client_fields = [(1, c.BINARY, agent), (2, c.BINARY, hostname)] + _other_metadata_field(3, offer)
    if any(value is not None for _, _, value in client_fields):
        fields.append((9, c.STRUCT, client_fields))
    return PROTOCOL_KEY + c.encode_struct(fields)


def encode_setup_response(version):
    return c.encode_struct([(1, c.STRUCT, [(1, c.I32, version)])])


# ---------------------------------------------------------------------------
# Decoders: each raises compact.DecodeError on a malformed blob (META-3).


def decode_request_metadata(blob):
    return c.decode_struct(blob, REQUEST_RPC_METADATA)


def decode_response_metadata(blob):
    return c.decode_struct(blob, RESPONSE_RPC_METADATA)


def decode_stream_payload_metadata(blob):
    return c.decode_struct(blob, STREAM_PAYLOAD_METADATA)


def decode_response_rpc_error(blob):
    """A ResponseRpcError, or a StreamRpcError, which reads the same way (6.5)."""
    return c.decode_struct(blob, RESPONSE_RPC_ERROR)


def decode_setup_metadata(blob):
    return c.decode_struct(blob, REQUEST_SETUP_METADATA)


def decode_server_push(blob):
    return c.decode_struct(blob, SERVER_PUSH_METADATA)


def fd_claim_args(decoded):
    """(numFds, fdSeqNum) of decoded metadata, None for what is absent."""
    fd_metadata = decoded.get("fdMetadata")
    if fd_metadata is None:
        return None, None
    return fd_metadata.get("numFds"), fd_metadata.get("fdSeqNum")
