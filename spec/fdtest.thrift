// FdTest: the service every implementation under test serves, so that the
// rocketfd conformance harness can drive it.  Normative text for each method
// is in spec/fd-passing.md, section 17 (requirements SVC-*); the comments here
// summarise it.
//
// Encoding on the wire (spec/fd-passing.md sections 6.7 and 17): requests are
// Rocket REQUEST_RESPONSE frames (REQUEST_FNF for `record`, REQUEST_STREAM for
// `streamFds`, REQUEST_CHANNEL for `sinkFds`) whose data is the method's
// argument struct in the Thrift Compact protocol without a message envelope.
// File descriptors never appear in these structs: they travel as SCM_RIGHTS
// ancillary data, announced by the fdMetadata field of the RPC metadata.

// What the server saw when it examined one received file descriptor.
struct FdInfo {
  // st_dev from fstat(2), the 64-bit value as Linux/glibc encode it,
  // reinterpreted as a signed 64-bit integer.
  1: i64 dev;
  // st_ino from fstat(2), reinterpreted as a signed 64-bit integer.
  2: i64 ino;
  // st_mode & S_IFMT, for example 0x8000 for a regular file, 0x1000 for a
  // FIFO, 0x2000 for a character device, 0xC000 for a socket.
  3: i32 type;
  // Whether FD_CLOEXEC was set on the descriptor as the server received it,
  // before anything changed it.
  4: bool cloexec;
  // The value fcntl(F_GETFL) returned, unmodified.
  5: i32 flags;
}

// A description of every descriptor that came with one request.
struct FdReport {
  // The tag argument of the request the report describes.
  1: string tag;
  // One entry per received descriptor, in the order they were received.
  2: list<FdInfo> fds;
}

// The only declared exception: a failure of `open`.
exception FdTestError {
  // Human-readable text; clients must not parse it.
  1: string message;
  // The Linux errno value that describes the failure.
  2: i32 errnum;
}

// The server's view of the process at the other end of a connection
// (spec/fd-passing.md, sections 15 and 17.7).
struct PeerInfo {
  // pid, uid and gid from SO_PEERCRED, read when the server accepted the
  // connection: the process that connected, whichever process wrote the
  // request, as the server's pid and user namespaces see it.  uid and gid
  // carry the same bits as the unsigned values (4294967295 is -1); -1 for
  // all three when the server could not read them.
  1: i32 pid;
  2: i32 uid;
  3: i32 gid;
  // Whether the server holds a pidfd of that process obtained with
  // SO_PEERPIDFD (Linux 6.5), which no later process with the same pid can
  // be mistaken for; false without one, or for a pidfd_open() fallback.
  4: bool pidPinned;
}

service FdTest {
  // Describes every descriptor received with this request (one FdInfo each,
  // in receive order), closes all of them, and only after they are closed
  // answers with the report.  The response carries no descriptors.  With no
  // descriptors the report has an empty list.
  FdReport inspect(1: string tag);

  // Answers with the tag and sends back exactly the descriptors that came
  // with the request, in the same order and naming the same open file
  // descriptions (numFds equal to the number received; none when none came).
  // The server closes its own copies once the response has been sent.
  string echo(1: string tag);

  // One-way (REQUEST_FNF): builds the same report `inspect` would, closes
  // the descriptors, and stores the report as the last recorded report of
  // the connection it arrived on, replacing any earlier one.  Nothing is
  // sent back.  A `record` whose descriptors fail to bind to it (count or
  // sequence mismatch) is not executed and changes nothing.
  oneway void record(1: string tag);

  // Answers with the report stored by the last `record` that arrived before
  // this request on the same connection; before any, a report with an empty
  // tag and an empty list.  Descriptors sent with this request are closed
  // before the answer.
  FdReport lastRecorded();

  // Opens, read-only, the regular file at `path` relative to the directory
  // given to the server with --root, and answers with `path` unchanged plus
  // the opened descriptor (numFds 1).  The lookup never leaves the root
  // (absolute paths, ".." above the root and symbolic links that lead
  // outside it fail with EXDEV), never blocks on a FIFO or device, and
  // refuses anything that is not a regular file (EINVAL).  Other failures
  // carry the errno of the step that failed (for example ENOENT).  A server
  // started without --root fails every call with EACCES.  Failures are
  // FdTestError, with no descriptor.  Descriptors sent with this request
  // are closed before the answer.
  string open(1: string path) throws (1: FdTestError error);

  // A stream (REQUEST_STREAM, kind 4).  The first response is the empty
  // struct; then come `count` items, each a report of the `fdsPerItem` fresh
  // descriptors it carries: pipe read ends whose write ends the server has
  // closed, so that each reads end-of-file at once.  An item's tag is its
  // index in decimal ("0", "1", ...) and its list describes those very
  // descriptors, in the order they are attached.  Items go out as the
  // client's credit allows (the initial request n, less one for the first
  // response, then each REQUEST_N), and the stream then completes.  A count
  // outside 0..10000 or an fdsPerItem outside 0..253 is refused before any
  // first response (ERROR 0x204, category 1, code 6).  Descriptors sent with
  // the request are closed before the first response, which carries none.
  stream<FdReport> streamFds(1: i32 count, 2: i32 fdsPerItem);

  // A sink (REQUEST_CHANNEL, kind 6).  The first response is the empty
  // struct and carries no descriptor; it holds the server's answer to the
  // extensions the client offered (spec/fd-passing.md section 21.8).  Each
  // item the client then sends, as the server's credit allows, is a tag of
  // the client's choosing with descriptors attached, which travel only under
  // the extension `sink`: the server describes them as the item arrives and
  // closes them.  After the client completes the sink, the final response
  // is a report whose tag is `tag` and whose list describes every
  // descriptor of every item, in the order the items arrived and, within an
  // item, the order of its descriptors; items without descriptors add
  // nothing, and the items' tags are not reported.  It carries no
  // descriptor.  The client's ERROR on the sink ends it without a final
  // response.  Descriptors sent with the request are closed before the
  // first response.
  sink<string, FdReport> sinkFds(1: string tag);

  // Answers with the credentials the server took from the socket when it
  // accepted this connection, and whether it holds a pinned pidfd of the
  // process that connected.  Descriptors sent with this request are closed
  // before the answer, which carries none.
  PeerInfo whoami();
}
