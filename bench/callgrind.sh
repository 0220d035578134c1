#!/bin/sh
# User-space instructions per round trip (1 FD), rocketfd against the raw
# ping-pong, counted by valgrind's callgrind: steadier than wall time on a
# shared machine.  Kernel work (the syscalls themselves) is not counted.
# Usage: bench/callgrind.sh RFD_BENCH [CALLS]
set -eu
bench=$(cd "$(dirname "$1")" && pwd)/$(basename "$1") # absolute: valgrind runs in a temporary directory
calls=${2:-2000}
warmup=200 # rfd-bench's warm-up calls per point (raw.c, rfd.c)
probe=3    # calls that trace rocketfd's wire size, on their own connection
dir=$(mktemp -d /tmp/rfd-bench-callgrind-XXXXXX)
trap 'rm -rf "$dir"' EXIT

(cd "$dir" && valgrind --tool=callgrind --collect-atstart=no \
	--toggle-collect=call_checked --toggle-collect=pingpong_once \
	--toggle-collect=rfd_server_run --toggle-collect=echo_once \
	"$bench" --only roundtrip --fds 1 --pin one --iterations "$calls" >/dev/null 2>"$dir/valgrind.log")

# The largest inclusive cost of a function over every process's profile
# (forked servers inherit the counts their parent had at fork time).
cost() {
	for f in "$dir"/callgrind.out.*; do
		callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
			awk -v fn=":$1 " 'index($0, fn) { gsub(",", "", $1); print $1 }'
	done | sort -n | tail -1
}

per_call() {
	awk -v total="${1:-0}" -v n="$2" 'BEGIN { printf "%.0f", total / n }'
}

rfd_client=$(per_call "$(cost call_checked)" $((calls + warmup + probe)))
raw_client=$(per_call "$(cost pingpong_once)" $((calls + warmup)))
rfd_server=$(per_call "$(cost rfd_server_run)" $((calls + warmup)))
raw_server=$(per_call "$(cost echo_once)" $((calls + warmup)))
echo "user-space instructions per round trip with 1 FD ($calls calls, callgrind):"
printf '  %-8s %10s %10s\n' "" client server
printf '  %-8s %10s %10s\n' raw "$raw_client" "$raw_server"
printf '  %-8s %10s %10s\n' rocketfd "$rfd_client" "$rfd_server"
