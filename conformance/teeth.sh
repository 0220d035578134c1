#!/usr/bin/env bash
# Proof that the harness has teeth: each deliberate fault of the reference's
# test variants must fail the case meant to catch it, and the same variant
# with no fault must pass that case.
# Usage: teeth.sh RFD_CONFORM RFD_SERVER_FAULTY RFD_CLIENT_FAULTY
set -uo pipefail

if [[ $# -ne 3 || ${1:-} == --help ]]; then
	echo "usage: teeth.sh RFD_CONFORM RFD_SERVER_FAULTY RFD_CLIENT_FAULTY"
	[[ ${1:-} == --help ]] && exit 0 || exit 2
fi
conform=$1 server=$2 client=$3

# fault  role  case meant to catch it
checks=(
	"leak_after_mismatch    server err/more-than-claimed"
	"ignore_ctrunc          server err/ctrunc"
	"skip_seq_check         server err/seq-ahead"
	"no_cloexec             server fd/inspect-1"
	"resend_after_partial   server fd/sent-once"
	"keep_fds_at_eof        server err/vanish-mid-frame"
	"keep_control_frame_fds server fd/orphans"
	"keep_fds_at_eof        server frame/bad-length"
	"keep_control_frame_fds server frame/ext-ignored"
	"skip_seq_check         server claim/head-newer"
	"leak_after_mismatch    server claim/record-failed"
	"leak_after_mismatch    server stream/claim-mismatch"
	"resend_after_partial   client client/echo-large"
	"no_cloexec             client client/echo-2"
	"ignore_ctrunc          client client/ctrunc"
	"keep_control_frame_fds client client/orphan-fds"
	"leak_after_mismatch    client client/bad-count"
	"skip_seq_check         client client/bad-seq"
	"keep_fds_at_eof        client client/eof-with-fds"
	"skip_seq_check         client client/stream-bad-seq"
	"no_cloexec             client client/stream-3x2"
)

failures=0
for check in "${checks[@]}"; do
	read -r fault role case <<<"$check"
	target=$server
	[[ $role == client ]] && target=$client

	"$conform" "$role" --no-color --case "$case" --cmd "env RFD_FAULT=$fault $target" >/tmp/teeth.$$ 2>&1
	status=$?
	if [[ $status -eq 1 ]]; then
		echo "ok   $fault is caught by $role case $case"
	else
		echo "FAIL $fault is NOT caught by $role case $case (exit $status)"
		sed 's/^/     /' /tmp/teeth.$$
		failures=$((failures + 1))
	fi

	"$conform" "$role" --no-color --case "$case" --cmd "$target" >/tmp/teeth.$$ 2>&1
	status=$?
	if [[ $status -eq 0 ]]; then
		echo "ok   without the fault, $role case $case passes"
	else
		echo "FAIL without the fault, $role case $case fails (exit $status)"
		sed 's/^/     /' /tmp/teeth.$$
		failures=$((failures + 1))
	fi
done
rm -f /tmp/teeth.$$
echo "$(( ${#checks[@]} * 2 - failures )) passed, $failures failed"
[[ $failures -eq 0 ]]
