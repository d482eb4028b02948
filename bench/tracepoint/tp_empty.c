/* tp-bench-empty: the baseline of the tracepoint-cost benchmark. Attaches
 * the do-nothing program bench_empty of bpf/extractor.bpf.c to probes of a
 * binary the way ebpf-collector attaches its real programs (uprobe-multi
 * links through collector_attach: notes read through one open descriptor,
 * probe sites checked, spec map filled with cookie = spec id, one link per
 * tracepoint with its semaphore as ref_ctr_offset), then waits for SIGINT or
 * SIGTERM and detaches.
 *
 *   tp-bench-empty [--ready-file PATH] [--bpf-stats] [--program NAME]
 *                  [--ring-pages N] BINARY PROVIDER:NAME...
 *
 * --program attaches another program of the object instead, e.g.
 * bench_floor_mempool_added (the floor: the arguments copied, nothing
 * else); the fetch plans of the probes named are loaded for it as the
 * collector loads them, and --ring-pages sizes ring_mempool (nobody
 * consumes it: it must hold every event of the measurement).
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
#include "fetch_plan.h"
#include "tp_common.h"
#include "tracepoints_table.h"
#include "uprobe_multi.h"
#include "usdt_args.h"
#include "usdt_notes.h"
#include "usdt_spec.h"

#define MAX_SITES 16

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, ap);
}

/* "mempool:added" into provider (64 bytes) and the name after the colon. */
static const char *split_probe(const char *probe, char provider[64])
{
	const char *colon = strchr(probe, ':');
	if (!colon || colon - probe >= 64) {
		fprintf(stderr, "tp-bench-empty: bad probe name '%s' (PROVIDER:NAME)\n", probe);
		return NULL;
	}
	memcpy(provider, probe, (size_t)(colon - probe));
	provider[colon - probe] = '\0';
	return colon + 1;
}

/* The fetch plan of each probe named, as the collector builds it. */
static int set_plans(struct extractor_bpf *skel, const struct usdt_notes *notes,
		     char *const probes[], int count)
{
	char provider[64], err[512];
	for (int i = 0; i < count; i++) {
		const char *name = split_probe(probes[i], provider);
		enum tracepoint_id tp = name ? tracepoint_find(provider, name) : TP_NONE;
		if (tp == TP_NONE) {
			fprintf(stderr, "tp-bench-empty: %s is no tracepoint of ours\n", probes[i]);
			return -1;
		}
		struct fetch_plan plan;
		int sites = fetch_plan_of_probe(notes, provider, name, -1, &plan, err, sizeof(err));
		if (sites < 0) {
			fprintf(stderr, "tp-bench-empty: %s\n", err);
			return -1;
		}
		memcpy((void *)&skel->rodata->fetch_plans[tp], &plan, sizeof(plan));
	}
	return 0;
}

static int attach_probe(int prog_fd, int specs_fd, int bin_fd, const char *path,
			const struct usdt_notes *notes, const char *probe, int *next_id)
{
	char provider[64], err[512];
	uint64_t offsets[MAX_SITES], ref_ctrs[MAX_SITES], cookies[MAX_SITES];
	uint32_t count = 0;
	const char *name = split_probe(probe, provider);

	if (!name)
		return -1;
	for (const struct usdt_probe *p = usdt_notes_find(notes, provider, name, NULL); p;
	     p = usdt_notes_find(notes, provider, name, p)) {
		struct usdt_spec spec;
		int id = (*next_id)++;

		if (count == MAX_SITES || id >= USDT_MAX_SPEC_CNT) {
			fprintf(stderr, "tp-bench-empty: %s: too many probe sites\n", probe);
			return -1;
		}
		if (usdt_probe_site_check(bin_fd, path, p, err, sizeof(err)) < 0 ||
		    usdt_spec_parse(provider, name, p->args, -1, (uint64_t)id, &spec, err,
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
	const char *ready = NULL, *program = "bench_empty";
	bool stats = false;
	unsigned ring_pages = 1;
	int argi = 1;

	for (; argi < argc && argv[argi][0] == '-'; argi++) {
		if (!strcmp(argv[argi], "--ready-file") && argi + 1 < argc)
			ready = argv[++argi];
		else if (!strcmp(argv[argi], "--bpf-stats"))
			stats = true;
		else if (!strcmp(argv[argi], "--program") && argi + 1 < argc)
			program = argv[++argi];
		else if (!strcmp(argv[argi], "--ring-pages") && argi + 1 < argc)
			ring_pages = (unsigned)strtoul(argv[++argi], NULL, 10);
		else
			break;
	}
	if (argc - argi < 2) {
		fprintf(stderr, "usage: tp-bench-empty [--ready-file PATH] [--bpf-stats] [--program NAME] "
				"[--ring-pages N] BINARY PROVIDER:NAME...\n");
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
	char msg[512];
	int rc = 1, bin_fd = open(path, O_RDONLY | O_CLOEXEC), links[64], nlinks = 0, next_id = 0;
	int stats_fd = -1;
	struct usdt_notes notes = { 0 };
	struct bpf_program *bench = NULL;
	struct extractor_bpf *skel = extractor_bpf__open();
	if (!skel) {
		fprintf(stderr, "tp-bench-empty: opening the BPF object: %s\n", strerror(errno));
		goto out;
	}
	if (bin_fd < 0) {
		fprintf(stderr, "tp-bench-empty: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (usdt_notes_read(bin_fd, path, &notes, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "tp-bench-empty: %s\n", msg);
		goto out;
	}
	struct bpf_map *map;
	bpf_object__for_each_map(map, skel->obj)
		if (bpf_map__type(map) == BPF_MAP_TYPE_RINGBUF)
			bpf_map__set_max_entries(map, (map == skel->maps.ring_mempool ? ring_pages : 1) *
							      RING_PAGE_SIZE);
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, skel->obj) {
		bool wanted = !strcmp(bpf_program__name(prog), program);
		bpf_program__set_autoload(prog, wanted);
		if (wanted)
			bench = prog;
	}
	if (!bench) {
		fprintf(stderr, "tp-bench-empty: the BPF object has no program %s\n", program);
		goto out;
	}
	bpf_program__set_expected_attach_type(bench,
					      (enum bpf_attach_type)EXTRACTOR_BPF_TRACE_UPROBE_MULTI);
	if (set_plans(skel, &notes, &argv[argi], argc - argi) < 0)
		goto out;
	int err = extractor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "tp-bench-empty: loading %s: %s%s\n", program, strerror(-err),
			err == -EPERM || err == -EACCES ? " (needs CAP_BPF and CAP_PERFMON)" : "");
		goto out;
	}
	if (stats && (stats_fd = tp_enable_bpf_stats()) < 0)
		fprintf(stderr, "tp-bench-empty: BPF_ENABLE_STATS: %s\n", strerror(-stats_fd));

	struct bpf_map *specs = bpf_object__find_map_by_name(skel->obj, "__bpf_usdt_specs");
	if (usdt_spec_map_check(specs, USDT_MAX_SPEC_CNT, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "tp-bench-empty: %s\n", msg);
		goto out;
	}
	for (; argi < argc && nlinks < 64; argi++) {
		int fd = attach_probe(bpf_program__fd(bench), bpf_map__fd(specs),
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
