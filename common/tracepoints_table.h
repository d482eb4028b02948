/* What user space knows about each tracepoint: names, group, argument count. */
#ifndef EBPF_EXTRACTOR_TRACEPOINTS_TABLE_H
#define EBPF_EXTRACTOR_TRACEPOINTS_TABLE_H

#include <stddef.h>
#include "tracepoints.h"

struct tracepoint_info {
	const char *provider;  /* "net" */
	const char *name;      /* "inbound_message" */
	const char *event;     /* "net:inbound_message" */
	const char *program;   /* BPF program name in extractor.bpf.c */
	enum tracepoint_group group;
	int arg_count;
};

/* Indexed by enum tracepoint_id; entry TP_NONE has NULL names. */
extern const struct tracepoint_info tracepoint_table[TP_COUNT];

extern const char *const group_names[GROUP_COUNT];        /* "p2pmsg", ... */
extern const unsigned group_default_ring_pages[GROUP_COUNT];

/* TP_NONE when unknown. */
enum tracepoint_id tracepoint_find(const char *provider, const char *name);
/* -1 when unknown. */
int group_find(const char *name);

#endif
