/* Attaching the BPF programs to the probes of one bitcoind binary file.
 *
 * multi: our own USDT attach with uprobe-multi links (kernel 6.6+), needing
 *        only CAP_BPF and CAP_PERFMON: the notes are read, the probe sites
 *        checked and the links created through one open file descriptor, so
 *        a file renamed in between cannot mix two binaries.
 * perf:  libbpf's bpf_program__attach_usdt (perf_event uprobes), which needs
 *        CAP_SYS_ADMIN while attaching.
 * Both attach for every process of the binary (the pid filter is in BPF),
 * so a restarted bitcoind needs no new attach.
 */
#ifndef EBPF_COLLECTOR_ATTACH_H
#define EBPF_COLLECTOR_ATTACH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpf_shared.h"
#include "record.h"
#include "tracepoints.h"

struct bpf_object;
struct bpf_link;


/* The fetch plans the BPF programs were loaded with (their .rodata, one
 * per tracepoint) and the per-tracepoint switch (.bss plan_off) that makes
 * them read a tracepoint's arguments through the spec map instead. */
struct loaded_plans {
	const struct fetch_plan *plans;
	uint32_t *off;
};

#define ATTACH_ERROR_LEN 512

struct attachment {
	enum attach_mode mode;
	int binary_fd; /* -1 when not attached */
	dev_t dev;
	ino_t ino;
	uint32_t attached; /* bit per tracepoint id */
	int link_fds[TP_COUNT];            /* multi mode */
	struct bpf_link *perf_links[TP_COUNT]; /* perf mode */
};

void attachment_init(struct attachment *a);

/* Attaches every tracepoint of the enabled groups to the file at path.
 * generation picks the half of the spec map this attachment's spec ids use,
 * so a new file can be attached before the old links are dropped. When a
 * tracepoint's specs in this file differ from its loaded plan, its
 * plan_off is set before its link is created (loaded may be NULL).
 * 0 on success; -1 with a one-line message in err. */
int attachment_attach(struct attachment *a, struct bpf_object *obj, enum attach_mode mode,
		      const char *path, const bool group_enabled[GROUP_COUNT],
		      unsigned generation, const struct loaded_plans *loaded,
		      char err[ATTACH_ERROR_LEN]);

/* Before anything is loaded or created: path opens, is a regular file with
 * USDT notes, has every probe of the enabled groups, and every argument spec
 * of those probes is one the extractor can read. Fills plans[] (when not
 * NULL) with the fetch plan of every enabled tracepoint, for the BPF
 * object's .rodata. 0, or -1 with a one-line message in err. */
int attachment_check_binary(const char *path, const bool group_enabled[GROUP_COUNT],
			    struct fetch_plan plans[TP_COUNT], char err[ATTACH_ERROR_LEN]);

/* Drops every link at once. */
void attachment_detach(struct attachment *a);

int attachment_count(const struct attachment *a);

/* Prints the binary's probes with their argument specs (--list-tracepoints). */
int list_tracepoints(const char *path);

#endif
