/* tp-bench-empty: the baseline of the tracepoint-cost benchmark. Attaches
 * the do-nothing program bench_empty of bpf/extractor.bpf.c to probes of a
 * binary the way ebpf-collector attaches its real programs (uprobe-multi
 * links through collector_attach: notes read through one open descriptor,
 * probe sites checked, spec map filled with cookie = spec id, one link per
 * tracepoint with its semaphore as ref_ctr_offset), then waits for SIGINT or
 * SIGTERM and detaches.
 *
 *   tp-bench-empty [--ready-file PATH] [--bpf-stats] BINARY PROVIDER:NAME...
 *
 * The program is loaded from the same skeleton as the collector's, with the
 * same expected attach type (BPF_TRACE_UPROBE_MULTI, 48), and nothing else
 * is loaded (autoload off for every other program; rings shrunk to a page),
 * so the only difference from the collector's attachment is the program
 * body.
 *
 * --bpf-stats holds BPF_ENABLE_STATS while attached, so the kernel counts
 * the program's runs and run time (run.sh reads them from
 * /proc/PID/fdinfo); it costs two clock reads per run, so it is for the
 * profiling pass only, never for the timed comparison.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf_shared.h"
#include "extractor.skel.h"
#include "tp_common.h"
#include "uprobe_multi.h"
#include "usdt_args.h"
#include "usdt_notes.h"
#include "usdt_spec.h"

#define MAX_SITES 16

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

static int attach_probe(int prog_fd, int specs_fd, int bin_fd, const char *path,
			const struct usdt_notes *notes, const char *probe, int *next_id)
{
	char provider[64], err[512];
	const char *colon = strchr(probe, ':');
	uint64_t offsets[MAX_SITES], ref_ctrs[MAX_SITES], cookies[MAX_SITES];
	uint32_t count = 0;

	if (!colon || (size_t)(colon - probe) >= sizeof(provider)) {
		fprintf(stderr, "tp-bench-empty: bad probe name '%s' (PROVIDER:NAME)\n", probe);
		return -1;
	}
	memcpy(provider, probe, (size_t)(colon - probe));
	provider[colon - probe] = '\0';
	for (const struct usdt_probe *p = usdt_notes_find(notes, provider, colon + 1, NULL); p;
	     p = usdt_notes_find(notes, provider, colon + 1, p)) {
		struct usdt_spec spec;
		int id = (*next_id)++;

		if (count == MAX_SITES || id >= USDT_MAX_SPEC_CNT) {
			fprintf(stderr, "tp-bench-empty: %s: too many probe sites\n", probe);
			return -1;
		}
		if (usdt_probe_site_check(bin_fd, path, p, err, sizeof(err)) < 0 ||
		    usdt_spec_parse(provider, colon + 1, p->args, -1, (uint64_t)id, &spec, err,
				    sizeof(err)) < 0) {
			fprintf(stderr, "tp-bench-empty: %s\n", err);
			return -1;
		}
		if (bpf_map_update_elem(specs_fd, &id, &spec, BPF_ANY) < 0) {
			fprintf(stderr, "tp-bench-empty: writing the spec of %s: %s\n", probe,
				strerror(errno));
			return -1;
		}
		offsets[count] = p->file_offset;
		ref_ctrs[count] = p->semaphore_offset;
		cookies[count] = (uint64_t)id;
		count++;
	}
	if (count == 0) {
		fprintf(stderr, "tp-bench-empty: %s has no probe %s\n", path, probe);
		return -1;
	}
	int fd = uprobe_multi_link_create(prog_fd, bin_fd, offsets, ref_ctrs, cookies, count, 0,
					  err, sizeof(err));
	if (fd < 0)
		fprintf(stderr, "tp-bench-empty: %s\n", err);
	return fd;
}

int main(int argc, char **argv)
{
	const char *ready = NULL;
	bool stats = false;
	int argi = 1;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (!strcmp(argv[argi], "--ready-file") && argi + 1 < argc)
			ready = argv[++argi];
		else if (!strcmp(argv[argi], "--bpf-stats"))
			stats = true;
		else
			break;
	}
	if (argc - argi < 2) {
		fprintf(stderr, "usage: tp-bench-empty [--ready-file PATH] [--bpf-stats] BINARY "
				"PROVIDER:NAME...\n");
		return 2;
	}
	const char *path = argv[argi++];

	/* Block the stop signals first: sigwait below. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	libbpf_set_print(quiet_print);
	struct extractor_bpf *skel = extractor_bpf__open();
	if (!skel) {
		fprintf(stderr, "tp-bench-empty: opening the BPF object: %s\n", strerror(errno));
		return 1;
	}
	struct bpf_map *map;
	bpf_object__for_each_map(map, skel->obj)
		if (bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF)
			bpf_map__set_max_entries(map, RING_PAGE_SIZE); /* unused here */
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, prog == skel->progs.bench_empty);
	bpf_program__set_expected_attach_type(skel->progs.bench_empty,
					      (enum bpf_attach_type)EXTRACTOR_BPF_TRACE_UPROBE_MULTI);
	int err = extractor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "tp-bench-empty: loading bench_empty: %s%s\n", strerror(-err),
			err == -EPERM || err == -EACCES ? " (needs CAP_BPF and CAP_PERFMON)" : "");
		extractor_bpf__destroy(skel);
		return 1;
	}
	int stats_fd = -1;
	if (stats && (stats_fd = tp_enable_bpf_stats()) < 0)
		fprintf(stderr, "tp-bench-empty: BPF_ENABLE_STATS: %s\n", strerror(-stats_fd));

	char msg[512];
	int rc = 1, bin_fd = open(path, O_RDONLY | O_CLOEXEC), links[64], nlinks = 0, next_id = 0;
	struct usdt_notes notes = { 0 };
	struct bpf_map *specs = bpf_object__find_map_by_name(skel->obj, "__bpf_usdt_specs");
	if (bin_fd < 0) {
		fprintf(stderr, "tp-bench-empty: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (usdt_spec_map_check(specs, USDT_MAX_SPEC_CNT, msg, sizeof(msg)) < 0 ||
	    usdt_notes_read(bin_fd, path, &notes, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "tp-bench-empty: %s\n", msg);
		goto out;
	}
	for (; argi < argc && nlinks < 64; argi++) {
		int fd = attach_probe(bpf_program__fd(skel->progs.bench_empty), bpf_map__fd(specs),
				      bin_fd, path, &notes, argv[argi], &next_id);
		if (fd < 0)
			goto out;
		links[nlinks++] = fd;
	}
	if (ready && tp_write_file(ready, "ready\n") < 0) {
		fprintf(stderr, "tp-bench-empty: writing %s: %s\n", ready, strerror(errno));
		goto out;
	}
	int sig;
	sigwait(&mask, &sig);
	rc = 0;
out:
	for (int i = 0; i < nlinks; i++)
		close(links[i]);
	if (stats_fd >= 0)
		close(stats_fd);
	usdt_notes_free(&notes);
	if (bin_fd >= 0)
		close(bin_fd);
	extractor_bpf__destroy(skel);
	return rc;
}
