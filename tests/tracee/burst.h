/* The block burst: what a node does when a full block connects, while P2P
 * traffic goes on. See SCENARIO_BURST_* in scenario.h. */
#ifndef EBPF_TRACEE_BURST_H
#define EBPF_TRACEE_BURST_H

#include <stdint.h>

#include "fire.h"

/* The tracepoints the burst fires. */
tp_mask burst_mask(void);

/* Runs the burst; adds what fired per tracepoint to fired. 0, or -errno. */
int burst_run(uint64_t fired[TP_COUNT]);

#endif
