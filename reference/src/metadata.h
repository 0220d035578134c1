/* SPDX-License-Identifier: MIT */
/*
 * The RPC metadata structs of fbthrift's RpcMetadata.thrift that this
 * library reads and writes, in the Thrift Compact protocol.  Only the fields
 * listed here are decoded; every other field, of any type, is skipped.
 * Decoded strings are slices into the input: the input must outlive them.
 */
#ifndef RFD_METADATA_H
#define RFD_METADATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The key of the extension offer (SETUP) and answer (a sink's first response), spec 21.8. */
#define RFD_EXTENSIONS_KEY "rocketfd.fds"

/* The extensions by name, as bits: the values of enum rfd_extension in rocketfd.h. */
enum {
	RFD_EXT_SINK = 1 << 0,      /* "sink" */
	RFD_EXT_EXCEPTION = 1 << 1, /* "exception" */
};

enum rfd_protocol_id {
	RFD_PROTOCOL_BINARY = 0,
	RFD_PROTOCOL_COMPACT = 2,
};

enum rfd_rpc_kind {
	RFD_RPC_SINGLE_REQUEST_SINGLE_RESPONSE = 0,
	RFD_RPC_SINGLE_REQUEST_NO_RESPONSE = 1,
	RFD_RPC_STREAMING_REQUEST_SINGLE_RESPONSE = 2,
	RFD_RPC_STREAMING_REQUEST_NO_RESPONSE = 3,
	RFD_RPC_SINGLE_REQUEST_STREAMING_RESPONSE = 4,
	RFD_RPC_STREAMING_REQUEST_STREAMING_RESPONSE = 5,
	RFD_RPC_SINK = 6,
	RFD_RPC_BIDIRECTIONAL_STREAM = 7,
};

/* FdMetadata { 1: optional i64 fdSeqNum; 2: optional i32 numFds; } */
struct rfd_fd_metadata {
	bool present; /* the struct itself was on the wire */
	bool has_seq;
	int64_t fd_seq;
	bool has_num;
	int32_t num_fds;
};

/*
 * RequestRpcMetadata: 1 protocol (i32), 2 name (binary), 3 kind (i32),
 * 5 clientTimeoutMs (i32), 8 otherMetadata (map<string,string>),
 * 14 compression, 16 interactionId, 17 interactionCreate,
 * 25 checksum, 22 fdMetadata.  The "uses_" flags report fields whose
 * features this library declines (it never misreads them as absent).
 */
struct rfd_request_metadata {
	bool has_protocol;
	int32_t protocol;
	bool has_name;
	struct rfd_slice name;
	bool has_kind;
	int32_t kind;
	bool has_client_timeout;
	int32_t client_timeout_ms;
	bool uses_compression; /* field 14 other than 0 (15, compressionConfig, asks nothing) */
	bool uses_interaction; /* field 16 or 17 present */
	bool uses_checksum;    /* field 25 with an algorithm other than 0 */
	struct rfd_fd_metadata fd;
};

/* Which arm of PayloadMetadata (ResponseRpcMetadata field 7) was set. */
enum rfd_payload_kind {
	RFD_PAYLOAD_NONE = 0,              /* field 7 absent */
	RFD_PAYLOAD_RESPONSE,              /* 1: responseMetadata */
	RFD_PAYLOAD_DECLARED_EXCEPTION,    /* 2: exceptionMetadata / 1: declaredException */
	RFD_PAYLOAD_APP_UNKNOWN_EXCEPTION, /* 2: exceptionMetadata / 6: appUnknownException */
	RFD_PAYLOAD_OTHER_EXCEPTION,       /* 2: exceptionMetadata, any other or no arm */
	RFD_PAYLOAD_EMPTY,                 /* field 7 present with no arm this library knows */
};

/*
 * The payload metadata shared by ResponseRpcMetadata (7 payloadMetadata,
 * 6 compression, 14 checksum, 12 fdMetadata, 9 streamId) and
 * StreamPayloadMetadata (3 payloadMetadata, 1 compression, 6 checksum,
 * 5 fdMetadata).  ex_name/ex_what are PayloadExceptionMetadataBase
 * 1 name_utf8, 2 what_utf8.  uses_compression and uses_checksum as in
 * rfd_request_metadata.
 */
struct rfd_response_metadata {
	enum rfd_payload_kind payload_kind;
	bool has_ex_name;
	struct rfd_slice ex_name;
	bool has_ex_what;
	struct rfd_slice ex_what;
	bool uses_compression;
	bool uses_checksum;
	struct rfd_fd_metadata fd;
	/* ResponseRpcMetadata only: 9 streamId, which a stream's first response carries (written,
	 * not read). */
	bool has_stream_id;
	int32_t stream_id;
	/*
	 * ResponseRpcMetadata only: the value of the key RFD_EXTENSIONS_KEY in
	 * 3 otherMetadata, the answer of a sink's first response.  Decoding
	 * skips every other key, and a field 3 that is not a map of strings.
	 */
	bool has_extensions;
	struct rfd_slice extensions;
	/*
	 * Read as ResponseRpcMetadata: a struct in field 3 or 5, where that
	 * struct has a map and an i32 but StreamPayloadMetadata has its
	 * payloadMetadata and fdMetadata: the metadata of a stream item.
	 */
	bool item_fields;
};

/* ResponseRpcErrorCategory and ResponseRpcErrorCode values used here. */
enum {
	RFD_ERROR_CATEGORY_INTERNAL_ERROR = 0,
	RFD_ERROR_CATEGORY_INVALID_REQUEST = 1,
	RFD_ERROR_CATEGORY_LOADSHEDDING = 2,
	RFD_ERROR_CATEGORY_SHUTDOWN = 3,
	RFD_ERROR_CODE_UNKNOWN = 0,
	RFD_ERROR_CODE_OVERLOAD = 1,
	RFD_ERROR_CODE_REQUEST_PARSING_FAILURE = 6,
	RFD_ERROR_CODE_WRONG_RPC_KIND = 9,
	RFD_ERROR_CODE_UNKNOWN_METHOD = 10,
};

/*
 * ResponseRpcError: 1 name_utf8, 2 what_utf8, 3 category (i32), 4 code (i32).
 * StreamRpcError, the data of an ERROR after a stream's first response, has
 * the same fields but category: it is written and read with this struct too.
 */
struct rfd_response_error {
	bool has_name;
	struct rfd_slice name;
	bool has_what;
	struct rfd_slice what;
	bool has_category;
	int32_t category;
	bool has_code;
	int32_t code;
};

/*
 * RequestSetupMetadata: 3 minVersion, 4 maxVersion, 9 clientMetadata
 * (ClientMetadata 1 agent, 3 otherMetadata: the value of the key
 * RFD_EXTENSIONS_KEY, the client's offer), 13 encodeMetadataUsingBinary
 * (bool), 14 compressionSetupRequest.  As for the answer, decoding skips
 * other keys and an otherMetadata that is not a map of strings.
 */
struct rfd_setup_metadata {
	bool has_min_version;
	int32_t min_version;
	bool has_max_version;
	int32_t max_version;
	bool has_agent;
	struct rfd_slice agent;
	bool has_extensions;
	struct rfd_slice extensions;
	bool encode_metadata_using_binary;
	bool uses_compression_setup;
};

/*
 * ServerPushMetadata is a union: 1 setupResponse (SetupResponse 1 version,
 * 2 zstdSupported, 5 lz4Supported), 2 streamHeadersPush, 3 drainCompletePush.
 * The decoder knows only setupResponse: any other arm reads as RFD_PUSH_NONE.
 */
enum rfd_server_push_kind {
	RFD_PUSH_NONE = 0,
	RFD_PUSH_SETUP_RESPONSE = 1,
	RFD_PUSH_STREAM_HEADERS = 2,
	RFD_PUSH_DRAIN_COMPLETE = 3,
};

struct rfd_server_push {
	enum rfd_server_push_kind kind;
	bool has_version;
	int32_t version;
};

/*
 * Encoders append to @out and return 0 or -ENOMEM; on failure @out may hold
 * a partial encoding past its original length, which the caller discards.
 * Fields are written only when their has_ flag (or present) is set.  The
 * "uses_" flags are ignored by the encoders.
 */
int rfd_fd_metadata_encode(const struct rfd_fd_metadata *m, struct rfd_buf *out);
int rfd_request_metadata_encode(const struct rfd_request_metadata *m, struct rfd_buf *out);
int rfd_response_metadata_encode(const struct rfd_response_metadata *m, struct rfd_buf *out);
int rfd_stream_payload_metadata_encode(const struct rfd_response_metadata *m, struct rfd_buf *out);
int rfd_response_error_encode(const struct rfd_response_error *m, struct rfd_buf *out);
int rfd_setup_metadata_encode(const struct rfd_setup_metadata *m, struct rfd_buf *out);
int rfd_server_push_encode(const struct rfd_server_push *m, struct rfd_buf *out);

/*
 * Decoders read exactly one struct from @bytes.  They return 0, or -EBADMSG
 * with *why set to a static string naming the problem (a field of the wrong
 * type, a truncated value, nesting or a length over the limits).  Trailing
 * bytes after the struct's stop byte are an error.
 */
int rfd_request_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_request_metadata *m,
                                const char **why);
int rfd_response_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_response_metadata *m,
                                 const char **why);
int rfd_stream_payload_metadata_decode(const uint8_t *bytes, size_t len,
                                       struct rfd_response_metadata *m, const char **why);
int rfd_response_error_decode(const uint8_t *bytes, size_t len, struct rfd_response_error *m,
                              const char **why);
int rfd_setup_metadata_decode(const uint8_t *bytes, size_t len, struct rfd_setup_metadata *m,
                              const char **why);
int rfd_server_push_decode(const uint8_t *bytes, size_t len, struct rfd_server_push *m,
                           const char **why);

/*
 * The extensions (RFD_EXT_*) an offer or an answer names: the value
 * split at commas, spaces and tabs around each name ignored, empty and
 * unknown names ignored, names compared exactly (EXT-2).
 */
unsigned rfd_extensions_parse(struct rfd_slice value);

/*
 * The names of @extensions (RFD_EXT_*, unknown bits ignored) as an
 * offer or answer writes them (EXT-1): "sink,exception", "sink", ... or ""
 * for none, NUL-terminated in @buf.  Returns the length; @size of
 * RFD_EXTENSIONS_TEXT_SIZE always suffices.
 */
enum { RFD_EXTENSIONS_TEXT_SIZE = 32 };
size_t rfd_extensions_format(unsigned extensions, char *buf, size_t size);

#endif
