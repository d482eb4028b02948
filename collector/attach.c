#include "attach.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch_plan.h"
#include "log.h"
#include "tracepoints_table.h"
#include "uprobe_multi.h"
#include "usdt_args.h"
#include "usdt_notes.h"
#include "usdt_spec.h"

/* Spec ids of one attachment: half the map, alternating by generation. */
#define SPEC_IDS_PER_GENERATION (USDT_MAX_SPEC_CNT / 2)

void attachment_init(struct attachment *a)
{
	memset(a, 0, sizeof(*a));
	a->binary_fd = -1;
	for (int tp = 0; tp < TP_COUNT; tp++)
		a->link_fds[tp] = -1;
}

int attachment_count(const struct attachment *a)
{
	return __builtin_popcount(a->attached);
}

void attachment_detach(struct attachment *a)
{
	for (int tp = 0; tp < TP_COUNT; tp++) {
		if (a->link_fds[tp] >= 0)
			close(a->link_fds[tp]);
		bpf_link__destroy(a->perf_links[tp]);
	}
	if (a->binary_fd >= 0)
		close(a->binary_fd);
	enum attach_mode mode = a->mode;
	attachment_init(a);
	a->mode = mode;
}

/* How the user turns each group on or off (for messages). */
static const struct {
	const char *flag;
	bool on_by_default;
} group_flags[GROUP_COUNT] = {
	[GROUP_P2PMSG] = { "--no-p2pmsg-tracepoints", true },
	[GROUP_CONNECTION] = { "--no-connection-tracepoints", true },
	[GROUP_MEMPOOL] = { "--no-mempool-tracepoints", true },
	[GROUP_VALIDATION] = { "--no-validation-tracepoints", true },
	[GROUP_UTXOCACHE] = { "--utxocache-tracepoints", false },
	[GROUP_COIN_SELECTION] = { "--coin-selection-tracepoints", false },
};

/* "add --no-mempool-tracepoints to run without group mempool" */
static const char *group_off_hint(const struct tracepoint_info *info, char *buf, size_t len)
{
	enum tracepoint_group g = info->group;
	snprintf(buf, len, "%s %s to run without group %s",
		 group_flags[g].on_by_default ? "add" : "leave out", group_flags[g].flag,
		 group_names[g]);
	return buf;
}

static void missing_probe_error(const char *path, const struct tracepoint_info *info,
				char err[ATTACH_ERROR_LEN])
{
	char hint[128];
	snprintf(err, ATTACH_ERROR_LEN, "%s has no probe %s (group %s): %s, or use a bitcoind that has it",
		 path, info->event, group_names[info->group], group_off_hint(info, hint, sizeof(hint)));
}

/* Every probe of the enabled groups is in the notes, and every argument
 * spec of theirs is one we can read: the errors a user can fix, found
 * before anything is loaded, created or attached. Also builds each
 * enabled tracepoint's fetch plan into plans[] when not NULL (the others
 * are left zero: no plan). */
static int check_probes(const char *path, const struct usdt_notes *notes,
			const bool group_enabled[GROUP_COUNT], struct fetch_plan plans[TP_COUNT],
			char err[ATTACH_ERROR_LEN])
{
	if (plans)
		memset(plans, 0, TP_COUNT * sizeof(*plans));
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct tracepoint_info *info = &tracepoint_table[tp];
		if (!group_enabled[info->group])
			continue;
		struct fetch_plan plan;
		char why[ATTACH_ERROR_LEN], hint[128];
		int sites = fetch_plan_of_probe(notes, info->provider, info->name, info->arg_count,
						&plan, why, sizeof(why));
		if (sites < 0) {
			/* "PATH: <why>; <hint>", cut to fit */
			size_t n = (size_t)snprintf(err, ATTACH_ERROR_LEN, "%s: ", path);
			if (n < ATTACH_ERROR_LEN)
				n += (size_t)snprintf(err + n, ATTACH_ERROR_LEN - n, "%.*s",
						      (int)(ATTACH_ERROR_LEN - n), why);
			if (n < ATTACH_ERROR_LEN)
				snprintf(err + n, ATTACH_ERROR_LEN - n, "; %s",
					 group_off_hint(info, hint, sizeof(hint)));
			return -1;
		}
		if (plans)
			plans[tp] = plan;
		if (sites == 0) {
			missing_probe_error(path, info, err);
			return -1;
		}
	}
	return 0;
}

int attachment_check_binary(const char *path, const bool group_enabled[GROUP_COUNT],
			    struct fetch_plan plans[TP_COUNT], char err[ATTACH_ERROR_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		snprintf(err, ATTACH_ERROR_LEN, "cannot open bitcoind binary %s: %s%s", path,
			 strerror(e),
			 e == EACCES ? " (the collector must be able to read it, and to search its "
				       "directories)"
				     : "");
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, ATTACH_ERROR_LEN, "bitcoind binary %s is not a regular file", path);
		close(fd);
		return -1;
	}
	struct usdt_notes notes;
	int rc = usdt_notes_read(fd, path, &notes, err, ATTACH_ERROR_LEN) < 0 ? -1 : 0;
	if (rc == 0) {
		rc = check_probes(path, &notes, group_enabled, plans, err);
		usdt_notes_free(&notes);
	}
	close(fd);
	return rc;
}

/* Before tp goes live on a file whose specs are not those its loaded plan
 * was built from (an upgrade; .rodata cannot change): the program must
 * read tp's arguments through the spec map. */
static void plan_check(const struct loaded_plans *loaded, enum tracepoint_id tp,
		       const struct fetch_plan *built, const char *path)
{
	if (!loaded || !loaded->plans[tp].valid || loaded->off[tp] ||
	    fetch_plan_equal(&loaded->plans[tp], built))
		return;
	__atomic_store_n(&loaded->off[tp], 1, __ATOMIC_SEQ_CST);
	log_info("%s: %s has other argument specs than when the collector started: reading "
		 "them the generic way until the collector restarts",
		 path, tracepoint_table[tp].event);
}

/* Every probe site of one tracepoint: checked, its spec written into the
 * spec map, one uprobe-multi link for all of them. */
static int attach_multi_one(struct attachment *a, struct bpf_object *obj, const char *path,
			    const struct usdt_notes *notes, enum tracepoint_id tp,
			    unsigned *next_spec, unsigned spec_end,
			    const struct loaded_plans *loaded, char err[ATTACH_ERROR_LEN])
{
	struct fetch_plan plan;
	const struct tracepoint_info *info = &tracepoint_table[tp];
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, info->program);
	struct bpf_map *specs = bpf_object__find_map_by_name(obj, "__bpf_usdt_specs");
	if (!prog || !specs) {
		snprintf(err, ATTACH_ERROR_LEN, "BPF object lacks program %s or the USDT spec map",
			 info->program);
		return -1;
	}
	uint64_t offsets[16], ref_ctrs[16], cookies[16];
	uint32_t count = 0;
	for (size_t i = 0; i < notes->count; i++) {
		const struct usdt_probe *p = &notes->probes[i];
		if (strcmp(p->provider, info->provider) || strcmp(p->name, info->name))
			continue;
		if (count == 16 || *next_spec >= spec_end) {
			snprintf(err, ATTACH_ERROR_LEN, "%s: %s has too many probe sites", path,
				 info->event);
			return -1;
		}
		if (usdt_probe_site_check(a->binary_fd, path, p, err, ATTACH_ERROR_LEN) < 0)
			return -1;
		int id = (int)(*next_spec)++;
		struct usdt_spec spec;
		if (usdt_spec_parse(info->provider, info->name, p->args, info->arg_count,
				    (uint64_t)id, &spec, err, ATTACH_ERROR_LEN) < 0)
			return -1;
		if (bpf_map_update_elem(bpf_map__fd(specs), &id, &spec, BPF_ANY) < 0) {
			snprintf(err, ATTACH_ERROR_LEN, "writing the USDT spec of %s: %s", info->event,
				 strerror(errno));
			return -1;
		}
		fetch_plan_add_site(&plan, count, &spec);
		offsets[count] = p->file_offset;
		ref_ctrs[count] = p->semaphore_offset;
		cookies[count] = (uint64_t)id;
		count++;
	}
	if (count == 0) {
		missing_probe_error(path, info, err);
		return -1;
	}
	/* A write between reading the notes and attaching would put the
	 * probes on bytes we never checked. */
	if (usdt_notes_unchanged(a->binary_fd, path, notes, err, ATTACH_ERROR_LEN) < 0)
		return -1;
	plan_check(loaded, tp, &plan, path);
	int fd = uprobe_multi_link_create(bpf_program__fd(prog), a->binary_fd, offsets, ref_ctrs,
					  cookies, count, 0, err, ATTACH_ERROR_LEN);
	if (fd < 0)
		return -1;
	a->link_fds[tp] = fd;
	return 0;
}

static int attach_multi(struct attachment *a, struct bpf_object *obj, const char *path,
			const bool group_enabled[GROUP_COUNT], unsigned generation,
			const struct loaded_plans *loaded, char err[ATTACH_ERROR_LEN])
{
	if (usdt_spec_map_check(bpf_object__find_map_by_name(obj, "__bpf_usdt_specs"),
				USDT_MAX_SPEC_CNT, err, ATTACH_ERROR_LEN) < 0)
		return -1;
	struct usdt_notes notes;
	if (usdt_notes_read(a->binary_fd, path, &notes, err, ATTACH_ERROR_LEN) < 0)
		return -1;
	unsigned next_spec = (generation % 2) * SPEC_IDS_PER_GENERATION;
	unsigned spec_end = next_spec + SPEC_IDS_PER_GENERATION;
	int rc = 0;
	for (int tp = 1; tp < TP_COUNT && rc == 0; tp++) {
		if (!group_enabled[tracepoint_table[tp].group])
			continue;
		rc = attach_multi_one(a, obj, path, &notes, (enum tracepoint_id)tp, &next_spec,
				      spec_end, loaded, err);
		if (rc == 0)
			a->attached |= 1u << tp;
	}
	usdt_notes_free(&notes);
	return rc;
}

static int attach_perf(struct attachment *a, struct bpf_object *obj, const char *path,
		       const bool group_enabled[GROUP_COUNT], const struct loaded_plans *loaded,
		       char err[ATTACH_ERROR_LEN])
{
	/* libbpf reads the notes itself; we read them too, only to name a
	 * missing probe or a spec it cannot read clearly, instead of libbpf's
	 * -ENOENT (and its own log lines). */
	struct usdt_notes notes;
	if (usdt_notes_read(a->binary_fd, path, &notes, err, ATTACH_ERROR_LEN) < 0)
		return -1;
	struct fetch_plan plans[TP_COUNT];
	int rc = check_probes(path, &notes, group_enabled, plans, err);
	for (int tp = 1; tp < TP_COUNT && rc == 0; tp++) {
		const struct tracepoint_info *info = &tracepoint_table[tp];
		if (!group_enabled[info->group])
			continue;
		plan_check(loaded, (enum tracepoint_id)tp, &plans[tp], path);
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, info->program);
		struct bpf_link *link =
			prog ? bpf_program__attach_usdt(prog, -1, path, info->provider, info->name, NULL)
			     : NULL;
		if (!link) {
			int e = errno;
			snprintf(err, ATTACH_ERROR_LEN, "attaching %s to %s: %s%s", info->event, path,
				 strerror(e),
				 e == EPERM || e == EACCES
					 ? " (perf attach mode needs CAP_SYS_ADMIN while attaching)"
					 : "");
			rc = -1;
			break;
		}
		a->perf_links[tp] = link;
		a->attached |= 1u << tp;
	}
	usdt_notes_free(&notes);
	return rc;
}

int attachment_attach(struct attachment *a, struct bpf_object *obj, enum attach_mode mode,
		      const char *path, const bool group_enabled[GROUP_COUNT],
		      unsigned generation, const struct loaded_plans *loaded,
		      char err[ATTACH_ERROR_LEN])
{
	attachment_init(a);
	a->mode = mode;
	a->binary_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (a->binary_fd < 0) {
		snprintf(err, ATTACH_ERROR_LEN, "cannot open bitcoind binary %s: %s", path,
			 strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(a->binary_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, ATTACH_ERROR_LEN, "bitcoind binary %s is not a regular file", path);
		attachment_detach(a);
		return -1;
	}
	a->dev = st.st_dev;
	a->ino = st.st_ino;
	int rc = mode == ATTACH_PERF
			 ? attach_perf(a, obj, path, group_enabled, loaded, err)
			 : attach_multi(a, obj, path, group_enabled, generation, loaded, err);
	if (rc < 0)
		attachment_detach(a);
	return rc;
}

int list_tracepoints(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("cannot open bitcoind binary %s: %s", path, strerror(errno));
		return -1;
	}
	char err[ATTACH_ERROR_LEN];
	struct usdt_notes notes;
	if (usdt_notes_read(fd, path, &notes, err, sizeof(err)) < 0) {
		log_error("%s", err);
		close(fd);
		return -1;
	}
	printf("%s: %zu USDT probes\n", path, notes.count);
	for (size_t i = 0; i < notes.count; i++) {
		const struct usdt_probe *p = &notes.probes[i];
		enum tracepoint_id tp = tracepoint_find(p->provider, p->name);
		char event[160];
		snprintf(event, sizeof(event), "%s:%s", p->provider, p->name);
		printf("  %-40s group %-15s offset 0x%-8llx semaphore 0x%-8llx args %s\n", event,
		       tp == TP_NONE ? "(unknown)" : group_names[tracepoint_table[tp].group],
		       (unsigned long long)p->file_offset, (unsigned long long)p->semaphore_offset,
		       p->args);
	}
	usdt_notes_free(&notes);
	close(fd);
	return 0;
}
