#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# rfd-server and rfd-client end to end: a server on a socket in a fresh
# directory, serving a root directory with a file of known content, a
# symlink pointing outside, a FIFO and a subdirectory; every client command
# (sinks too, with and without the extension sink) and the demo against it; the error paths of both tools; no FD leaked by
# the server; a clean SIGTERM shutdown.
#
# usage: tools_test.sh [--wrapper PROGRAM] RFD_SERVER RFD_CLIENT
# With --wrapper, both tools run under PROGRAM (for example ci/valgrind-check),
# and every time limit is ten times longer.
set -euo pipefail

wrapper=()
slow=1
if [ $# -ge 2 ] && [ "$1" = --wrapper ]; then
	wrapper=("$2")
	slow=10
	shift 2
fi
if [ $# -ne 2 ]; then
	echo "usage: $0 [--wrapper PROGRAM] RFD_SERVER RFD_CLIENT" >&2
	exit 2
fi
server_bin=$1
client_bin=$2

# The tools, run through the wrapper when there is one.
server_tool() {
	"${wrapper[@]}" "$server_bin" "$@"
}
client_tool() {
	"${wrapper[@]}" "$client_bin" "$@"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/rfd-tools-test.XXXXXX")
started_pids=()

cleanup() {
	local pid
	for pid in "${started_pids[@]}"; do
		kill -KILL "$(server_process "$pid")" "$pid" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

failures=0
checks=0

pass() {
	checks=$((checks + 1))
	echo "ok   $1"
}

fail() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "FAIL $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		sed 's/^/     | /' "$2"
	fi
}

# run NAME CMD...: run CMD with its stdout in $work/NAME.out, stderr in
# $work/NAME.err; sets $status.
run() {
	local name=$1
	shift
	status=0
	"$@" >"$work/$name.out" 2>"$work/$name.err" || status=$?
}

# expect_status WHAT WANT NAME
expect_status() {
	if [ "$status" -eq "$2" ]; then
		pass "$1: exit status $2"
	else
		fail "$1: exit status $status, want $2" "$work/$3.err"
	fi
}

# expect_grep WHAT FILE PATTERN: FILE has a line matching the extended regex PATTERN.
expect_grep() {
	if grep -Eq -- "$3" "$2"; then
		pass "$1"
	else
		fail "$1 (no line matches /$3/ in $(basename "$2"))" "$2"
	fi
}

count_fds() {
	ls "/proc/$1/fd" | wc -l
}

# server_process PID: the process that is the server, PID itself or, under a
# wrapper, its descendant at the end of the chain of single children.
server_process() {
	local pid=$1 child
	while child=$(pgrep -P "$pid" | head -n 1) && [ -n "$child" ]; do
		pid=$child
	done
	echo "$pid"
}

# settled_fds PID: the FD count once two readings 100 ms apart agree (at most 5 s),
# as connections of clients that exited close asynchronously.
settled_fds() {
	local previous current
	previous=$(count_fds "$1")
	for _ in $(seq 1 50); do
		sleep 0.1
		current=$(count_fds "$1")
		[ "$current" -eq "$previous" ] && break
		previous=$current
	done
	echo "$previous"
}

# wait_ready SOCKET PID: until a client gets an answer, for at most 10 s (unwrapped).
wait_ready() {
	local i
	for i in $(seq 1 $((200 * slow))); do
		if ! kill -0 "$2" 2>/dev/null; then
			return 1
		fi
		if "$client_bin" --socket "$1" --timeout $((1000 * slow)) last-recorded >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# stop_server SIGNAL PID: send SIGNAL to the server itself (not to a wrapper:
# background jobs of a script ignore SIGINT, and such a wrapper cannot pass it
# on), then wait up to 10 s (unwrapped) for PID to end; sets $status, 124 when
# it did not end and was killed.
stop_server() {
	local i
	kill "-$1" "$(server_process "$2")"
	for i in $(seq 1 $((200 * slow))); do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$2" 2>/dev/null; then
		kill -KILL "$(server_process "$2")" "$2" 2>/dev/null || true
		wait "$2" || true
		status=124
		return
	fi
	status=0
	wait "$2" || status=$?
}

# ---- The root directory ----

root=$work/root
mkdir "$root" "$root/sub"
printf 'known content of the test file\n' >"$root/file"
printf 'a file in a subdirectory\n' >"$root/sub/inner"
printf 'outside the root\n' >"$work/outside"
ln -s "$work/outside" "$root/link"
ln -s ../outside "$root/uplink"
ln -s sub/inner "$root/inlink"
mkfifo "$root/fifo"

socket=$work/fdtest.sock
client=("${wrapper[@]}" "$client_bin" --socket "$socket" --timeout $((5000 * slow)))

# ---- Both tools: help and usage ----

run server_help server_tool --help
expect_status "rfd-server --help" 0 server_help
expect_grep "rfd-server --help shows the usage" "$work/server_help.out" '^usage: rfd-server --socket PATH'
run client_help client_tool --help
expect_status "rfd-client --help" 0 client_help
expect_grep "rfd-client --help documents the pipe:w spec" "$work/client_help.out" 'pipe:w'
expect_grep "rfd-client --help documents the memfd spec" "$work/client_help.out" 'memfd:TEXT'
expect_grep "rfd-client --help documents the sink command" "$work/client_help.out" 'sink \[--tag T\] ITEM'
expect_grep "rfd-client --help documents --offer" "$work/client_help.out" '--offer NAMES'
expect_grep "rfd-client --help documents the whoami command" "$work/client_help.out" '^  whoami '
expect_grep "rfd-client --help gives the range of --credits" "$work/client_help.out" 'N \(1 to 2147483646\)'

run server_bad_option server_tool --socket "$socket" --no-such-option
expect_status "rfd-server with an unknown option" 2 server_bad_option
expect_grep "rfd-server names the unknown option" "$work/server_bad_option.err" 'unknown option --no-such-option'
expect_grep "rfd-server prints a usage line" "$work/server_bad_option.err" '^usage: rfd-server'
run client_bad_option client_tool --socket "$socket" --no-such-option demo
expect_status "rfd-client with an unknown option" 2 client_bad_option
expect_grep "rfd-client prints a usage line" "$work/client_bad_option.err" '^usage: rfd-client'
run client_bad_command client_tool --socket "$socket" frobnicate
expect_status "rfd-client with an unknown command" 2 client_bad_command

# ---- Server start-up errors ----

long_socket=$work/$(printf 'x%.0s' $(seq 1 $((108 - ${#work} - 1))))
if [ ${#long_socket} -ne 108 ]; then
	echo "setup: the long socket path is ${#long_socket} bytes, not 108" >&2
	exit 1
fi
run server_long server_tool --socket "$long_socket"
expect_status "rfd-server on a 108-byte socket path" 1 server_long
expect_grep "rfd-server says the path is too long" "$work/server_long.err" 'path is 108 bytes.*at most 107'
run client_long client_tool --socket "$long_socket" last-recorded
expect_status "rfd-client on a 108-byte socket path" 2 client_long
expect_grep "rfd-client says the path is too long" "$work/client_long.err" 'longer than 107 bytes'

run server_bad_root server_tool --socket "$work/other.sock" --root "$root/file"
expect_status "rfd-server with a file as --root" 1 server_bad_root
expect_grep "rfd-server says --root is not a directory" "$work/server_bad_root.err" 'not a directory'

run client_no_server "${client[@]}" last-recorded
expect_status "rfd-client with no server listening" 2 client_no_server
expect_grep "rfd-client says why it cannot connect" "$work/client_no_server.err" 'cannot connect to .*fdtest.sock'

# ---- The server ----

# Started directly, not through a function, so that $! is the process itself.
"${wrapper[@]}" "$server_bin" --socket "$socket" --root "$root" -v 2>"$work/server.log" &
server_pid=$!
started_pids+=("$server_pid")
if wait_ready "$socket" "$server_pid"; then
	pass "rfd-server accepts connections"
else
	fail "rfd-server accepts connections" "$work/server.log"
	exit 1
fi
expect_grep "rfd-server logs where it listens" "$work/server.log" "^rfd-server: info: listening on $socket\$"
server_fds_pid=$(server_process "$server_pid")
fds_before=$(settled_fds "$server_fds_pid")

run second_server server_tool --socket "$socket"
expect_status "a second rfd-server on the same socket" 1 second_server
expect_grep "it says another server is there" "$work/second_server.err" 'another server is accepting connections'

# ---- inspect ----

run inspect "${client[@]}" inspect --tag t1 "$root/file" pipe:r pipe:w memfd:hello socket dev:null "$root/sub"
expect_status "inspect of 7 FDs" 0 inspect
expect_grep "inspect answers the tag" "$work/inspect.out" '^tag "t1"$'
expect_grep "inspect reports 7 FDs" "$work/inspect.out" '^fds 7$'
file_ino=$(stat -c %i "$root/file")
expect_grep "inspect: the file, read-only, with FD_CLOEXEC and its inode" "$work/inspect.out" \
	"^0 regular +[0-9]+:$file_ino cloexec yes O_RDONLY"
expect_grep "inspect: a pipe read end" "$work/inspect.out" '^1 fifo .* cloexec yes O_RDONLY'
expect_grep "inspect: a pipe write end" "$work/inspect.out" '^2 fifo .* cloexec yes O_WRONLY'
expect_grep "inspect: the memfd, read-write" "$work/inspect.out" '^3 regular .* cloexec yes O_RDWR'
expect_grep "inspect: a socket" "$work/inspect.out" '^4 socket .* cloexec yes O_RDWR'
expect_grep "inspect: /dev/null" "$work/inspect.out" '^5 chr .* cloexec yes O_RDWR'
expect_grep "inspect: a directory" "$work/inspect.out" '^6 dir '

run inspect_missing "${client[@]}" inspect "$work/no-such-file"
expect_status "inspect of a missing file" 2 inspect_missing
expect_grep "it names the file and the reason" "$work/inspect_missing.err" 'no-such-file: cannot make this FD: No such file or directory'

# ---- echo ----

run echo "${client[@]}" echo --tag e1 "$root/file" pipe:w socket
expect_status "echo of 3 FDs" 0 echo
expect_grep "echo answers the tag" "$work/echo.out" '^tag "e1"$'
expect_grep "echo returns 3 FDs" "$work/echo.out" '^fds 3$'
expect_grep "echo returns the very file sent" "$work/echo.out" "^0 regular +[0-9]+:$file_ino cloexec yes .* same-file yes\$"
expect_grep "echo returns the very pipe sent" "$work/echo.out" '^1 fifo .* cloexec yes .* same-file yes$'
expect_grep "echo returns the very socket sent" "$work/echo.out" '^2 socket .* cloexec yes .* same-file yes$'

# ---- record and last-recorded ----

run record "${client[@]}" record --tag r1 pipe:r memfd:x
expect_status "record of 2 FDs" 0 record
expect_grep "lastRecorded after record answers its tag" "$work/record.out" '^tag "r1"$'
expect_grep "lastRecorded after record reports 2 FDs" "$work/record.out" '^fds 2$'
run last "${client[@]}" last-recorded
expect_status "last-recorded on a new connection" 0 last
expect_grep "it is empty: tag \"\"" "$work/last.out" '^tag ""$'
expect_grep "it is empty: no FDs" "$work/last.out" '^fds 0$'

# ---- open ----

run open_good "${client[@]}" open file
expect_status "open file" 0 open_good
expect_grep "open answers the path" "$work/open_good.out" '^path "file"$'
expect_grep "open sends a read-only regular file with FD_CLOEXEC" "$work/open_good.out" \
	"^fd regular +[0-9]+:$file_ino cloexec yes O_RDONLY"
expect_grep "open: the content read through the FD" "$work/open_good.out" \
	'^31 bytes "known content of the test file\\n"$'
run open_inlink "${client[@]}" open inlink
expect_status "open of a symlink staying inside the root" 0 open_inlink
expect_grep "open follows it to the file" "$work/open_inlink.out" '^25 bytes "a file in a subdirectory\\n"$'
run open_bytes "${client[@]}" open sub/inner --bytes 6
expect_status "open sub/inner --bytes 6" 0 open_bytes
expect_grep "open --bytes 6 reads 6 bytes" "$work/open_bytes.out" '^6 bytes "a file"$'

# open_fails NAME PATH ERRNO WHAT
open_fails() {
	run "$1" timeout $((10 * slow)) "${client[@]}" open "$2"
	expect_status "open $2 ($4)" 1 "$1"
	expect_grep "open $2 fails with $3" "$work/$1.err" "^rfd-client: error: open: .*\\(errno $3\\)\$"
}
open_fails open_escape "../x" EXDEV "an escape"
open_fails open_absolute "$root/file" EXDEV "an absolute path"
open_fails open_link link EXDEV "an absolute symlink pointing outside"
open_fails open_uplink uplink EXDEV "a relative symlink pointing outside"
open_fails open_missing missing ENOENT "a missing file"
open_fails open_dir sub EINVAL "a directory"
start=$(date +%s%N)
open_fails open_fifo fifo EINVAL "a FIFO"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
if [ "$elapsed_ms" -lt $((2000 * slow)) ]; then
	pass "open of a FIFO fails fast (${elapsed_ms} ms)"
else
	fail "open of a FIFO fails fast (${elapsed_ms} ms)"
fi

# ---- whoami ----

run whoami "${client[@]}" whoami
expect_status "whoami" 0 whoami
expect_grep "whoami prints the credentials the server took from the socket" "$work/whoami.out" \
	"^pid [0-9]+ uid $(id -u) gid $(id -g) pidPinned (true|false)\$"
run whoami_extra "${client[@]}" whoami extra
expect_status "whoami with an argument" 2 whoami_extra

# ---- stream ----

run stream "${client[@]}" stream --credits 2 3 2
expect_status "stream of 3 items of 2 FDs, 2 credits at a time" 0 stream
expect_grep "stream: each item's FDs are those its report describes" "$work/stream.out" \
	'^1 fifo .* reported-file yes eof yes$'
expect_grep "stream: it completes after 3 items" "$work/stream.out" '^complete: 3 items$'
run stream_negative client_tool --socket "$socket" stream -1 1
expect_status "stream with a negative COUNT" 2 stream_negative
expect_grep "stream: a negative COUNT is out of range, not an option" "$work/stream_negative.err" \
	'COUNT -1: not a number from 0 to 2147483647'
run stream_credits client_tool --socket "$socket" stream --credits 0 1 1
expect_status "stream --credits 0" 2 stream_credits
expect_grep "stream: --credits gives its range" "$work/stream_credits.err" \
	'--credits 0: not a number from 1 to 2147483646'
run stream_many "${client[@]}" stream 10001 1
expect_status "stream of 10001 items" 1 stream_many
expect_grep "stream: the server refuses a COUNT above 10000 (SVC-STREAM-2)" \
	"$work/stream_many.err" 'answered error 0x204: count must be 0 to 10000'

# ---- sink ----

run sink "${client[@]}" sink --tag s1 pipe:w none dev:null "$root/file"
expect_status "sink of 4 items, 3 with an FD" 0 sink
expect_grep "sink: the server accepts the extension sink" "$work/sink.out" 'extension sink accepted$'
expect_grep "sink: each item is sent" "$work/sink.out" '^item 3 "[^"]*/file" fds 1$'
expect_grep "sink: the final report answers the tag" "$work/sink.out" '^tag "s1"$'
expect_grep "sink: the final report lists the 3 FDs" "$work/sink.out" '^fds 3$'
expect_grep "sink: the pipe write end is reported first" "$work/sink.out" '^0 fifo .* O_WRONLY'
expect_grep "sink: then /dev/null" "$work/sink.out" '^1 chr .* O_RDWR'
expect_grep "sink: then the file" "$work/sink.out" "^2 regular +[0-9]+:$file_ino "
expect_grep "sink: the server closed the pipe write end" "$work/sink.out" \
	'^item 0 reported-file yes closed-by-server yes$'
expect_grep "sink: the file is reported in its place" "$work/sink.out" \
	'^item 3 reported-file yes closed-by-server unknown$'

run sink_no_offer "${client[@]}" --offer none sink pipe:w
expect_status "sink with an FD, the extension not offered" 1 sink_no_offer
expect_grep "sink: the first response accepts nothing unoffered" "$work/sink_no_offer.out" \
	'extension sink not accepted$'
expect_grep "sink: the item's FD is refused" "$work/sink_no_offer.err" \
	'item 0 \(pipe:w\) not sent: the server did not accept the extension sink'

run sink_plain "${client[@]}" --offer exception sink --tag plain none none
expect_status "sink of 2 items without FDs, sink not offered" 0 sink_plain
expect_grep "sink without FDs: an empty report" "$work/sink_plain.out" '^fds 0$'

run client_bad_offer client_tool --socket "$socket" --offer sink,bogus sink
expect_status "rfd-client --offer with an unknown name" 2 client_bad_offer
expect_grep "rfd-client names the bad --offer" "$work/client_bad_offer.err" '--offer sink,bogus'

# ---- demo ----

run demo "${client[@]}" demo --open file
expect_status "demo" 0 demo
expect_grep "demo: all checks passed" "$work/demo.out" '^demo: all checks passed'
expect_grep "demo: the server closed the pipe write end it inspected" "$work/demo.out" \
	'ok +inspect: the server closed the pipe write end'
expect_grep "demo: echo returned the same open files" "$work/demo.out" \
	'ok +echo: the sealed memfd came back as the same open file'
expect_grep "demo: a table of what each side saw" "$work/demo.out" \
	'socket pair end +server +socket '

# ---- The server leaked no FD ----

fds_after=$(settled_fds "$server_fds_pid")
if [ "$fds_after" -eq "$fds_before" ]; then
	pass "the server has $fds_after FDs open, as before the clients ran"
else
	fail "the server has $fds_after FDs open, $fds_before before the clients ran"
	ls -l "/proc/$server_fds_pid/fd" | sed 's/^/     | /'
fi

# ---- Shutdown ----

stop_server TERM "$server_pid"
if [ "$status" -eq 0 ]; then
	pass "rfd-server exits 0 on SIGTERM"
else
	fail "rfd-server exits $status on SIGTERM, want 0" "$work/server.log"
fi
if [ -e "$socket" ]; then
	fail "rfd-server removed its socket file"
else
	pass "rfd-server removed its socket file"
fi
expect_grep "rfd-server logged its calls at debug level" "$work/server.log" 'debug: connection [0-9]+: inspect "t1": 7 FDs'

# ---- A server without a root: open fails with EACCES; SIGINT stops it too ----

"${wrapper[@]}" "$server_bin" --socket "$socket" --trace 2>"$work/noroot.log" &
noroot_pid=$!
started_pids+=("$noroot_pid")
if wait_ready "$socket" "$noroot_pid"; then
	pass "rfd-server without --root accepts connections"
else
	fail "rfd-server without --root accepts connections" "$work/noroot.log"
	exit 1
fi
open_fails open_noroot file EACCES "no root directory"
expect_grep "--trace logs the frames" "$work/noroot.log" 'info: frame < REQUEST_RESPONSE'
stop_server INT "$noroot_pid"
if [ "$status" -eq 0 ] && [ ! -e "$socket" ]; then
	pass "rfd-server exits 0 on SIGINT and removes its socket"
else
	fail "rfd-server exits $status on SIGINT (socket left: $([ -e "$socket" ] && echo yes || echo no))" \
		"$work/noroot.log"
fi

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
