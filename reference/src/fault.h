/* SPDX-License-Identifier: MIT */
/*
 * Deliberate faults, for proving that the conformance harness catches them.
 * They exist only in the test variants built with RFD_FAULTS defined, where
 * the environment variable RFD_FAULT names the one fault to commit; in the
 * library proper every RFD_FAULT() is the constant false and compiles away.
 *
 *   leak_after_mismatch     FDs of a claim of the wrong size are not closed
 *   ignore_ctrunc           MSG_CTRUNC is not treated as lost FDs
 *   skip_seq_check          a claim takes the oldest group of the right size
 *   no_cloexec              FDs are received without MSG_CMSG_CLOEXEC
 *   resend_after_partial    FDs go again with the write after a partial one
 *   keep_fds_at_eof         FDs still queued at close are not closed
 *   keep_control_frame_fds  FDs no message claims stay queued until close
 */
#ifndef RFD_FAULT_H
#define RFD_FAULT_H

#include <stdbool.h>

#ifdef RFD_FAULTS
bool rfd_fault(const char *name);
#define RFD_FAULT(name) rfd_fault(#name)
#else
#define RFD_FAULT(name) false
#endif

#endif
