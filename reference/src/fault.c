/* SPDX-License-Identifier: MIT */
#include "fault.h"

#ifdef RFD_FAULTS
#include <stdlib.h>
#include <string.h>

bool
rfd_fault(const char *name)
{
	const char *chosen = getenv("RFD_FAULT");

	return chosen && strcmp(chosen, name) == 0;
}
#endif
