// A subset of fbthrift's thrift/lib/thrift/RpcMetadata.thrift for the
// Apache Thrift cross-check of the library's Compact metadata codec
// (interop/thrift_check.py).  Field ids and wire types are those of
// fbthrift; structs and fields are limited to the ones the library writes
// plus a selection of others, of every Compact type, that a receiver has to
// skip.
//
// Two deliberate differences that do not change a single byte on the wire:
// - string fields are declared binary, so that Apache's Python code hands
//   over arbitrary bytes instead of decoding UTF-8;
// - fields are declared in increasing id order (fbthrift declares
//   RequestSetupMetadata's field 9 after 10 and 11), because Apache writes
//   fields in declaration order and the library in id order.
//
// Compiled at build time with Debian's thrift-compiler 0.17 (--gen py);
// the generated code lives in the build directory only.

namespace py rpcmetadata_subset

enum ProtocolId {
  BINARY = 0,
  COMPACT = 2,
}

enum RpcKind {
  SINGLE_REQUEST_SINGLE_RESPONSE = 0,
  SINGLE_REQUEST_NO_RESPONSE = 1,
  SINGLE_REQUEST_STREAMING_RESPONSE = 4,
  SINK = 6,
  BIDIRECTIONAL_STREAM = 7,
}

enum RpcPriority {
  HIGH_IMPORTANT = 0,
  HIGH = 1,
  IMPORTANT = 2,
  NORMAL = 3,
  BEST_EFFORT = 4,
  N_PRIORITIES = 5,
}

enum CompressionAlgorithm {
  NONE = 0,
  ZLIB = 1,
  ZSTD = 2,
  LZ4 = 3,
}

enum ChecksumAlgorithm {
  NONE = 0,
  CRC32 = 1,
  XXH3_64 = 2,
}

enum ResponseRpcErrorCategory {
  INTERNAL_ERROR = 0,
  INVALID_REQUEST = 1,
  LOADSHEDDING = 2,
  SHUTDOWN = 3,
}

enum ResponseRpcErrorCode {
  UNKNOWN = 0,
  OVERLOAD = 1,
  REQUEST_PARSING_FAILURE = 6,
  WRONG_RPC_KIND = 9,
  UNKNOWN_METHOD = 10,
}

enum InterfaceKind {
  USER = 0,
  DEBUGGING = 1,
  MONITORING = 2,
  PROFILING = 3,
}

enum ErrorKind {
  UNSPECIFIED = 0,
  TRANSIENT = 1,
  STATEFUL = 2,
  PERMANENT = 3,
}

enum ErrorBlame {
  UNSPECIFIED = 0,
  SERVER = 1,
  CLIENT = 2,
}

enum ErrorSafety {
  UNSPECIFIED = 0,
  SAFE = 1,
}

enum DrainCompleteCode {
  EXCEEDED_INGRESS_MEM_LIMIT = 1,
}

struct FdMetadata {
  1: optional i64 fdSeqNum;
  2: optional i32 numFds;
}

struct Checksum {
  1: optional ChecksumAlgorithm algorithm;
  2: optional i64 checksum;
  3: optional i64 salt;
}

struct ZstdCompressionCodecConfig {
  1: optional i32 levelPreset;
}

union CodecConfig {
  2: ZstdCompressionCodecConfig zstdConfig;
}

struct CompressionConfig {
  1: optional CodecConfig codecConfig;
  2: optional i64 compressionSizeLimit;
}

struct InteractionCreate {
  1: optional i64 interactionId;
  2: optional binary interactionName;
}

struct LoggingContext {
  1: optional i64 logSampleRatio;
  2: optional i64 logErrorSampleRatio;
  3: optional binary requestId;
  4: optional binary routingTarget;
  5: optional i32 requestAttemptId;
}

struct QuotaReportConfig {
  1: optional i64 backendId;
  2: optional list<binary> reportingHierarchy;
}

struct RequestRpcMetadata {
  1: optional ProtocolId protocol;
  2: optional binary name;
  3: optional RpcKind kind;
  5: optional i32 clientTimeoutMs;
  6: optional i32 queueTimeoutMs;
  7: optional RpcPriority priority;
  8: optional map<binary, binary> otherMetadata;
  11: optional i32 crc32c;
  13: optional binary loadMetric;
  14: optional CompressionAlgorithm compression;
  15: optional CompressionConfig compressionConfig;
  16: optional i64 interactionId;
  17: optional InteractionCreate interactionCreate;
  18: optional binary clientId;
  20: optional binary frameworkMetadata;
  22: optional FdMetadata fdMetadata;
  23: optional LoggingContext loggingContext;
  25: optional Checksum checksum;
  26: optional bool checksumResponse;
  28: optional QuotaReportConfig quotaReportConfig;
}

struct ErrorClassification {
  1: optional ErrorKind kind;
  2: optional ErrorBlame blame;
  3: optional ErrorSafety safety;
}

struct PayloadResponseMetadata {}

struct PayloadDeclaredExceptionMetadata {
  1: optional ErrorClassification errorClassification;
}

struct PayloadProxyExceptionMetadata {}

struct PayloadAppUnknownExceptionMetdata {
  1: optional ErrorClassification errorClassification;
}

struct PayloadAnyExceptionMetadata {}

union PayloadExceptionMetadata {
  1: PayloadDeclaredExceptionMetadata declaredException;
  2: PayloadProxyExceptionMetadata DEPRECATED_proxyException;
  6: PayloadAppUnknownExceptionMetdata appUnknownException;
  7: PayloadAnyExceptionMetadata anyException;
}

struct PayloadExceptionMetadataBase {
  1: optional binary name_utf8;
  2: optional binary what_utf8;
  3: optional PayloadExceptionMetadata metadata;
}

union PayloadMetadata {
  1: PayloadResponseMetadata responseMetadata;
  2: PayloadExceptionMetadataBase exceptionMetadata;
}

struct ProxiedPayloadMetadata {}

struct QueueMetadata {
  1: optional i32 queueingTimeMs;
  2: optional i32 queueTimeoutMs;
}

struct ResponseRpcMetadata {
  3: optional map<binary, binary> otherMetadata;
  4: optional i64 load;
  5: optional i32 crc32c;
  6: optional CompressionAlgorithm compression;
  7: optional PayloadMetadata payloadMetadata;
  8: optional ProxiedPayloadMetadata proxiedPayloadMetadata;
  9: optional i32 streamId;
  10: optional QueueMetadata queueMetadata;
  12: optional FdMetadata fdMetadata;
  13: optional binary frameworkMetadata;
  14: optional Checksum checksum;
  15: optional i64 secondaryLoad;
}

struct ResponseRpcError {
  1: optional binary name_utf8;
  2: optional binary what_utf8;
  3: optional ResponseRpcErrorCategory category;
  4: optional ResponseRpcErrorCode code;
  5: optional i64 load;
}

struct StreamPayloadMetadata {
  1: optional CompressionAlgorithm compression;
  2: optional map<binary, binary> otherMetadata;
  3: optional PayloadMetadata payloadMetadata;
  5: optional FdMetadata fdMetadata;
  6: optional Checksum checksum;
}

struct ClientMetadata {
  1: optional binary agent;
  2: optional binary hostname;
  3: optional map<binary, binary> otherMetadata;
}

struct CustomCompressionSetupRequest {
  1: optional binary compressorName;
  2: optional binary payload;
}

union CompressionSetupRequest {
  1: CustomCompressionSetupRequest custom;
}

struct RequestSetupMetadata {
  1: optional map<binary, binary> opaque;
  2: optional InterfaceKind interfaceKind;
  3: optional i32 minVersion;
  4: optional i32 maxVersion;
  5: optional i32 dscpToReflect;
  6: optional i32 markToReflect;
  9: optional ClientMetadata clientMetadata;
  10: optional i32 qosUseCaseId;
  11: optional i32 qosPolicyId;
  12: optional i32 keepAliveTimeoutMs;
  13: optional bool encodeMetadataUsingBinary;
  14: optional CompressionSetupRequest compressionSetupRequest;
}

struct CustomCompressionSetupResponse {
  1: optional binary compressorName;
  2: optional binary payload;
}

union CompressionSetupResponse {
  1: CustomCompressionSetupResponse custom;
}

enum SecurityPolicyStatus {
  DISABLED = 0,
  ENABLED = 1,
  ENFORCED = 2,
}

struct SecurityPolicy {
  1: optional SecurityPolicyStatus authorization;
  2: optional SecurityPolicyStatus authWall;
}

struct SetupResponse {
  1: optional i32 version;
  2: optional bool zstdSupported;
  3: optional CompressionSetupResponse compressionSetupResponse;
  4: optional SecurityPolicy securityPolicy;
  5: optional bool lz4Supported;
}

struct HeadersPayloadContent {
  1: optional map<binary, binary> otherMetadata;
}

struct StreamHeadersPush {
  1: optional i32 streamId;
  2: optional HeadersPayloadContent headersPayloadContent;
}

struct DrainCompletePush {
  1: optional DrainCompleteCode drainCompleteCode;
}

union ServerPushMetadata {
  1: SetupResponse setupResponse;
  2: StreamHeadersPush streamHeadersPush;
  3: DrainCompletePush drainCompletePush;
}

// FdTest's echo (spec/fdtest.thrift), whose argument and result structs
// are the data of the golden vectors' request and response.
service FdTest {
  binary echo(1: binary tag);
}
