/* Bitcoin Core's tracepoint macros (src/util/trace.h), for C.
 *
 * As in Core: every probe has a 2-byte semaphore in section ".probes" that a
 * tracer increments when it attaches (the uprobe's ref_ctr_offset), and the
 * probe site is reached only while that semaphore is nonzero, so arguments
 * are prepared only when someone listens.
 *
 * Build variants (compile definitions):
 *   TRACEE_NO_WALLET  no coin_selection probes (Core built with the wallet off)
 *   TRACEE_NO_PROBES  no probes, no semaphores, no .note.stapsdt at all
 *   TRACEE_SIB_SPEC   mempool:added's vsize gets a SIB argument spec (node.c)
 */
#ifndef EBPF_TRACEE_PROBES_H
#define EBPF_TRACEE_PROBES_H

#include <stdbool.h>

#include "tracepoints.h"

#ifndef TRACEE_NO_PROBES
#define TRACEE_HAS_PROBES 1
#endif
#if defined(TRACEE_HAS_PROBES) && !defined(TRACEE_NO_WALLET)
#define TRACEE_HAS_WALLET 1
#endif

#ifdef TRACEE_HAS_PROBES

/* Ask sys/sdt.h for STAP_PROBEV and for the semaphore address in each note. */
#define SDT_USE_VARIADIC 1
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

#define TRACEPOINT_SEMAPHORE(context, event) \
	unsigned short context##_##event##_semaphore __attribute__((section(".probes")))
#define TRACEPOINT_SEMAPHORE_DECL(context, event) \
	extern unsigned short context##_##event##_semaphore

#define TRACEPOINT_ACTIVE(context, event) (context##_##event##_semaphore > 0)

/* Core's TRACEPOINT, as an expression that says whether the probe site was
 * reached (the tracee counts what it really fired). */
#define TRACEPOINT(context, event, ...)                                      \
	({                                                                    \
		bool tracepoint_fired_ = false;                               \
		if (TRACEPOINT_ACTIVE(context, event)) {                      \
			STAP_PROBEV(context, event, __VA_ARGS__);             \
			tracepoint_fired_ = true;                             \
		}                                                             \
		tracepoint_fired_;                                            \
	})

#else /* no probes: the code around the sites stays, the sites go */

/* Takes the arguments, so the code around each site stays the same. */
static inline void tracepoint_discard(int unused, ...)
{
}

#define TRACEPOINT_SEMAPHORE_DECL(context, event) struct tracee_unused_##context##_##event
#define TRACEPOINT_ACTIVE(context, event) false
#define TRACEPOINT(context, event, ...) (tracepoint_discard(0, __VA_ARGS__), false)

#endif

TRACEPOINT_SEMAPHORE_DECL(net, inbound_message);
TRACEPOINT_SEMAPHORE_DECL(net, outbound_message);
TRACEPOINT_SEMAPHORE_DECL(net, inbound_connection);
TRACEPOINT_SEMAPHORE_DECL(net, outbound_connection);
TRACEPOINT_SEMAPHORE_DECL(net, closed_connection);
TRACEPOINT_SEMAPHORE_DECL(net, evicted_inbound_connection);
TRACEPOINT_SEMAPHORE_DECL(net, misbehaving_connection);
TRACEPOINT_SEMAPHORE_DECL(validation, block_connected);
TRACEPOINT_SEMAPHORE_DECL(utxocache, flush);
TRACEPOINT_SEMAPHORE_DECL(utxocache, add);
TRACEPOINT_SEMAPHORE_DECL(utxocache, spent);
TRACEPOINT_SEMAPHORE_DECL(utxocache, uncache);
TRACEPOINT_SEMAPHORE_DECL(coin_selection, selected_coins);
TRACEPOINT_SEMAPHORE_DECL(coin_selection, normal_create_tx_internal);
TRACEPOINT_SEMAPHORE_DECL(coin_selection, attempting_aps_create_tx);
TRACEPOINT_SEMAPHORE_DECL(coin_selection, aps_create_tx_internal);
TRACEPOINT_SEMAPHORE_DECL(mempool, added);
TRACEPOINT_SEMAPHORE_DECL(mempool, removed);
TRACEPOINT_SEMAPHORE_DECL(mempool, replaced);
TRACEPOINT_SEMAPHORE_DECL(mempool, rejected);

/* The semaphore of tp in this build, NULL when this build lacks the probe. */
volatile unsigned short *probe_semaphore(enum tracepoint_id tp);

#endif
