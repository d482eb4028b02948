/* ebpf-collector: the privileged half. Loads the BPF programs, attaches them
 * to a bitcoind binary, and drains the BPF ring buffers into the
 * shared-memory queue. It parses nothing that came from the network and
 * opens no network socket. */
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "assemble.h"
#include "attach.h"
#include "bpf_shared.h"
#include "extractor.skel.h"
#include "fetch_plan.h"
#include "log.h"
#include "options.h"
#include "privileges.h"
#include "queue.h"
#include "sink.h"
#include "target.h"
#include "tracepoints_table.h"
#include "uprobe_multi.h"
#include "watch.h"

#define EXIT_FATAL 1
#define EXIT_USAGE 2

struct collector {
	const struct collector_options *opts;
	enum attach_mode mode;
	struct extractor_bpf *skel;
	struct ring_buffer *rings;
	struct queue_producer *queue;
	struct sink sink;
	struct assembler assembler;
	struct attachment attached;
	unsigned generation;
	/* Built from the binary's notes at start, loaded into .rodata. */
	struct fetch_plan plans[TP_COUNT];
	/* The attached file was written in place: not attached again until
	 * its writer closes it (or the path names another file). */
	bool rewriting;
	dev_t rewritten_dev;
	ino_t rewritten_ino;
	struct watch watch;
	struct target target;
	int epoll_fd, signal_fd, timer_fd;
	/* Each ring's consumer and producer positions (read-only maps), to
	 * look for records before telling BPF we sleep. */
	const volatile uint64_t *ring_cons[GROUP_COUNT], *ring_prod[GROUP_COUNT];
	bool napping;
	bool stop;
	int exit_code; /* nonzero: stopped for a reason systemd should restart us for */
};

/* What attachment_attach() compares a binary's specs with. */
static struct loaded_plans loaded_plans(struct collector *c)
{
	return (struct loaded_plans){ .plans = (const struct fetch_plan *)c->skel->rodata->fetch_plans,
				      .off = c->skel->bss->plan_off };
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_get_level() < LOG_TRACE)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int libbpf_print_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

/* ---- records from the rings ---- */

static size_t expected_body(enum tracepoint_id tp)
{
	switch (tp) {
	case TP_NET_INBOUND_MESSAGE:
	case TP_NET_OUTBOUND_MESSAGE: return sizeof(struct ev_net_message);
	case TP_NET_INBOUND_CONNECTION:
	case TP_NET_OUTBOUND_CONNECTION: return sizeof(struct ev_net_connection);
	case TP_NET_CLOSED_CONNECTION:
	case TP_NET_EVICTED_INBOUND_CONNECTION: return sizeof(struct ev_net_closed);
	case TP_NET_MISBEHAVING_CONNECTION: return sizeof(struct ev_net_misbehaving);
	case TP_VALIDATION_BLOCK_CONNECTED: return sizeof(struct ev_block_connected);
	case TP_UTXOCACHE_FLUSH: return sizeof(struct ev_utxocache_flush);
	case TP_UTXOCACHE_ADD:
	case TP_UTXOCACHE_SPENT:
	case TP_UTXOCACHE_UNCACHE: return sizeof(struct ev_utxocache_coin);
	case TP_COIN_SELECTION_SELECTED_COINS: return sizeof(struct ev_selected_coins);
	case TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL: return sizeof(struct ev_normal_create_tx);
	case TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX: return sizeof(struct ev_attempting_aps);
	case TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL: return sizeof(struct ev_aps_create_tx);
	case TP_MEMPOOL_ADDED: return sizeof(struct ev_mempool_added);
	case TP_MEMPOOL_REMOVED: return sizeof(struct ev_mempool_removed);
	case TP_MEMPOOL_REPLACED: return sizeof(struct ev_mempool_replaced);
	case TP_MEMPOOL_REJECTED: return sizeof(struct ev_mempool_rejected);
	default: return 0;
	}
}

static bool is_p2p(enum tracepoint_id tp)
{
	return tp == TP_NET_INBOUND_MESSAGE || tp == TP_NET_OUTBOUND_MESSAGE;
}

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct collector *c = ctx;
	const struct record_header *h = data;
	if (size < sizeof(*h) || h->tracepoint == TP_NONE || h->tracepoint >= TP_COUNT) {
		log_warn("ignoring a malformed ring record (%zu bytes)", size);
		return 0;
	}
	enum tracepoint_id tp = h->tracepoint;
	/* Drops of tp before this event: their loss goes into the queue first. */
	if (h->kind == RECORD_EVENT)
		sink_bpf_stamp(&c->sink, tp, h->reserved);
	if (!is_p2p(tp)) {
		size_t length = sizeof(*h) + expected_body(tp);
		if (h->kind != RECORD_EVENT || size < length) {
			log_warn("ignoring a malformed %s record (%zu bytes)",
				 tracepoint_table[tp].event, size);
			return 0;
		}
		sink_event(&c->sink, data, length);
		return 0;
	}
	struct assemble_out out;
	switch (assembler_feed(&c->assembler, data, size, &out)) {
	case ASSEMBLE_COMPLETE: sink_event(&c->sink, out.record, out.length); break;
	case ASSEMBLE_NO_MEMORY:
		log_error("out of memory joining a %s payload", tracepoint_table[tp].event);
		sink_incomplete(&c->sink, tp);
		break;
	default: break;
	}
	if (out.evicted != TP_NONE)
		sink_incomplete(&c->sink, out.evicted);
	return 0;
}

static void read_bpf_drops(struct collector *c, uint64_t totals[TP_COUNT])
{
	memset(totals, 0, TP_COUNT * sizeof(totals[0]));
	int cpus = libbpf_num_possible_cpus();
	int rows = cpus > 0 && (unsigned)cpus < DROP_SLOTS ? cpus : (int)DROP_SLOTS;
	for (int row = 0; row < rows; row++)
		for (int tp = 1; tp < TP_COUNT; tp++)
			totals[tp] += __atomic_load_n(&c->skel->bss->drop_counts[row][tp],
						      __ATOMIC_ACQUIRE);
}

static int drain(struct collector *c)
{
	/* Drops counted before this batch: the events of the batch that came
	 * after them account them first by their drop stamps (sink_bpf_stamp);
	 * the rest came after every event of the batch, so their loss record
	 * goes after it. Drops during the batch wait for the next one: they
	 * may lie before an event still being written. */
	uint64_t drops[TP_COUNT];
	read_bpf_drops(c, drops);
	int n = ring_buffer__consume(c->rings);
	if (n < 0)
		log_warn("reading the BPF rings: %s", strerror(-n));
	sink_bpf_drops(&c->sink, drops);
	sink_report_loss(&c->sink);
	queue_notify(c->queue);
	return n;
}

/* A record reserved (maybe not yet committed) in some ring. */
static bool rings_pending(const struct collector *c)
{
	for (int g = 0; g < GROUP_COUNT; g++)
		if (c->ring_prod[g] && __atomic_load_n(c->ring_prod[g], __ATOMIC_ACQUIRE) !=
					       __atomic_load_n(c->ring_cons[g], __ATOMIC_ACQUIRE))
			return true;
	return false;
}

/* ---- readiness ---- */

static void write_ready_file(const struct collector *c)
{
	const char *path = c->opts->ready_file;
	if (!path)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "we");
	if (!f) {
		log_error("writing ready file %s: %s", tmp, strerror(errno));
		return;
	}
	fprintf(f, "attached %d generation %u pid %d\n", attachment_count(&c->attached),
		c->generation, (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		log_error("writing ready file %s: %s", path, strerror(errno));
}

/* ---- binary upgrades and pid files ---- */

static void update_filter(struct collector *c)
{
	c->skel->bss->filter_tgid = target_filter_tgid(&c->target);
}

static void reattach(struct collector *c)
{
	struct stat st;
	if (stat(c->opts->bitcoind_path, &st) < 0)
		return; /* gone for now; a later event brings the new file */
	bool same_file = c->attached.binary_fd >= 0 && st.st_dev == c->attached.dev &&
			 st.st_ino == c->attached.ino;
	if (same_file)
		return;
	if (c->rewriting && st.st_dev == c->rewritten_dev && st.st_ino == c->rewritten_ino) {
		log_debug("%s is still open for writing: attaching once it is closed",
			  c->opts->bitcoind_path);
		return;
	}
	if (c->mode == ATTACH_PERF) {
		attachment_detach(&c->attached);
		log_error("%s changed; in perf attach mode the collector cannot attach again "
			  "without CAP_SYS_ADMIN: exiting (systemd restarts it)",
			  c->opts->bitcoind_path);
		c->stop = true;
		c->exit_code = EXIT_FATAL;
		return;
	}
	struct attachment next;
	char err[ATTACH_ERROR_LEN];
	struct loaded_plans loaded = loaded_plans(c);
	if (attachment_attach(&next, c->skel->obj, c->mode, c->opts->bitcoind_path,
			      c->opts->group_enabled, c->generation + 1, &loaded, err) < 0) {
		log_warn("cannot attach to the new %s yet: %s", c->opts->bitcoind_path, err);
		return;
	}
	attachment_detach(&c->attached);
	c->attached = next;
	c->generation++;
	c->rewriting = false;
	c->sink.attached = c->attached.attached;
	watch_binary_file(&c->watch, c->opts->bitcoind_path);
	log_info("attached %d tracepoints to %s (inode %lu, generation %u)",
		 attachment_count(&c->attached), c->opts->bitcoind_path,
		 (unsigned long)c->attached.ino, c->generation);
	write_ready_file(c);
}

static void on_watch(struct collector *c)
{
	unsigned change = watch_read(&c->watch);
	if ((change & WATCH_BINARY_WRITTEN) && c->attached.binary_fd >= 0) {
		c->rewriting = true;
		c->rewritten_dev = c->attached.dev;
		c->rewritten_ino = c->attached.ino;
	} else if (change & WATCH_BINARY_WRITTEN) {
		c->rewriting = true; /* written again (the watch stays on that file) */
	}
	/* A close after the last write: the new content is complete, unless
	 * another writer still has the file open (inotify cannot tell). */
	if (change & WATCH_BINARY_CLOSED)
		c->rewriting = false;
	if ((change & WATCH_BINARY_WRITTEN) && c->attached.binary_fd >= 0) {
		/* Never leave a uprobe on a file rewritten in place. */
		attachment_detach(&c->attached);
		c->sink.attached = 0;
		log_warn("%s is being modified in place: its probes are detached (upgrade "
			 "bitcoind by replacing the file, e.g. with install or mv)",
			 c->opts->bitcoind_path);
		write_ready_file(c);
		if (c->mode == ATTACH_PERF) {
			log_error("in perf attach mode the collector cannot attach again without "
				  "CAP_SYS_ADMIN: exiting (systemd restarts it)");
			c->stop = true;
			c->exit_code = EXIT_FATAL;
			return;
		}
	}
	if (change & (WATCH_BINARY_CHANGED | WATCH_BINARY_WRITTEN))
		reattach(c);
	if (change & WATCH_PID_FILE) {
		target_reload_pid_file(&c->target);
		update_filter(c);
	}
}

/* ---- setup ---- */

static int epoll_add(int epoll_fd, int fd, uint32_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };
	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

enum { TAG_RINGS = 1, TAG_SIGNAL, TAG_TIMER, TAG_WATCH };

static struct bpf_map *ring_map(struct extractor_bpf *skel, int group)
{
	static const char *const names[GROUP_COUNT] = {
		[GROUP_P2PMSG] = RING_MAP_NAME_P2PMSG,
		[GROUP_CONNECTION] = RING_MAP_NAME_CONNECTION,
		[GROUP_MEMPOOL] = RING_MAP_NAME_MEMPOOL,
		[GROUP_VALIDATION] = RING_MAP_NAME_VALIDATION,
		[GROUP_UTXOCACHE] = RING_MAP_NAME_UTXOCACHE,
		[GROUP_COIN_SELECTION] = RING_MAP_NAME_COIN_SELECTION,
	};
	return bpf_object__find_map_by_name(skel->obj, names[group]);
}

static void log_plans(const struct collector *c)
{
	for (int tp = 1; tp < TP_COUNT; tp++) {
		const struct fetch_plan *p = &c->plans[tp];
		if (!c->opts->group_enabled[tracepoint_table[tp].group])
			continue;
		if (p->valid)
			log_debug("%s: arguments by fixed plan (%u of them read in %u stack or "
				  "object windows)",
				  tracepoint_table[tp].event, plan_window_args(p), p->window_count);
		else
			log_debug("%s: probe sites with different argument specs: arguments "
				  "through the spec map", tracepoint_table[tp].event);
	}
}

static int load_bpf(struct collector *c)
{
	c->skel = extractor_bpf__open();
	if (!c->skel) {
		log_error("opening the BPF object: %s", strerror(errno));
		return -1;
	}
	for (int g = 0; g < GROUP_COUNT; g++) {
		/* A disabled group's ring still exists: make it one page. */
		unsigned pages = c->opts->group_enabled[g] ? c->opts->ring_pages[g] : 1;
		bpf_map__set_max_entries(ring_map(c->skel, g), pages * RING_PAGE_SIZE);
		/* more unread bytes than this force a wake-up (extractor.bpf.c) */
		c->skel->rodata->ring_wake_bytes[g] = (__u64)pages * RING_PAGE_SIZE / 4;
	}
	memcpy((void *)c->skel->rodata->fetch_plans, c->plans, sizeof(c->plans));
	log_plans(c);
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, c->skel->obj) {
		enum tracepoint_id tp = TP_NONE;
		for (int i = 1; i < TP_COUNT; i++)
			if (strcmp(bpf_program__name(prog), tracepoint_table[i].program) == 0)
				tp = (enum tracepoint_id)i;
		bool wanted = tp != TP_NONE && c->opts->group_enabled[tracepoint_table[tp].group];
		bpf_program__set_autoload(prog, wanted);
		if (wanted && c->mode == ATTACH_MULTI)
			bpf_program__set_expected_attach_type(
				prog, (enum bpf_attach_type)EXTRACTOR_BPF_TRACE_UPROBE_MULTI);
	}
	int err = extractor_bpf__load(c->skel);
	if (err) {
		log_error("loading the BPF programs: %s%s", strerror(-err),
			  err == -EPERM || err == -EACCES ? " (needs CAP_BPF and CAP_PERFMON)" : "");
		return -1;
	}
	return 0;
}

static int open_rings(struct collector *c)
{
	for (int g = 0; g < GROUP_COUNT; g++) {
		if (!c->opts->group_enabled[g])
			continue;
		int fd = bpf_map__fd(ring_map(c->skel, g));
		int err = c->rings ? ring_buffer__add(c->rings, fd, on_ring_record, c) : 0;
		if (!c->rings) {
			c->rings = ring_buffer__new(fd, on_ring_record, c, NULL);
			err = c->rings ? 0 : -errno;
		}
		if (err) {
			log_error("opening the %s ring buffer: %s", group_names[g], strerror(-err));
			return -1;
		}
		long page = sysconf(_SC_PAGESIZE);
		void *cons = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
		void *prod = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, page);
		if (cons == MAP_FAILED || prod == MAP_FAILED) {
			log_error("mapping the %s ring positions: %s", group_names[g], strerror(errno));
			return -1;
		}
		c->ring_cons[g] = cons;
		c->ring_prod[g] = prod;
	}
	if (!c->rings) {
		log_error("every tracepoint group is turned off: nothing to collect");
		return -1;
	}
	return 0;
}

static int open_queue(struct collector *c)
{
	struct queue_producer_options qo = {
		.dir = c->opts->queue_dir,
		.capacity = c->opts->queue_size,
		.group = (gid_t)-1,
	};
	if (c->opts->queue_group) {
		struct group *gr = getgrnam(c->opts->queue_group);
		if (!gr) {
			log_error("--queue-group: no group named '%s'", c->opts->queue_group);
			return -1;
		}
		qo.group = gr->gr_gid;
	}
	char err[QUEUE_ERROR_LEN];
	c->queue = queue_producer_open(&qo, err);
	if (!c->queue) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

static int choose_mode(struct collector *c)
{
	char missing[128];
	/* Both modes need these. Without them the kernel probe below would
	 * only say EPERM, and perf mode is no way out. */
	if (!privileges_check(false, missing, sizeof(missing))) {
		log_error("missing %s: the collector needs CAP_BPF and CAP_PERFMON to load and attach "
			  "its BPF programs; run it as root or grant them (systemd: "
			  "AmbientCapabilities=CAP_BPF CAP_PERFMON)",
			  missing);
		return -1;
	}
	if (c->opts->attach_mode == ATTACH_PERF) {
		c->mode = ATTACH_PERF;
		if (!privileges_check(true, missing, sizeof(missing))) {
			log_error("missing %s: --attach-mode perf attaches perf-event uprobes, which need "
				  "CAP_SYS_ADMIN until every probe is attached (it is dropped then); "
				  "grant it, or use --attach-mode auto on Linux 6.6+, whose uprobe-multi "
				  "links need only CAP_BPF and CAP_PERFMON",
				  missing);
			return -1;
		}
		return 0;
	}
	char err[256];
	int multi = uprobe_multi_supported(err, sizeof(err));
	if (multi == 1) {
		c->mode = ATTACH_MULTI;
		return 0;
	}
	if (c->opts->attach_mode == ATTACH_MULTI) {
		log_error("--attach-mode multi: this kernel cannot create uprobe-multi links (%s)",
			  multi < 0 ? err : "needs Linux 6.6 or later");
		return -1;
	}
	c->mode = ATTACH_PERF;
	if (!privileges_check(true, missing, sizeof(missing))) {
		log_error("missing %s: this kernel has no uprobe-multi links (%s), so the collector "
			  "attaches perf-event uprobes, which need CAP_SYS_ADMIN until every probe is "
			  "attached (it is dropped then); grant it, or run Linux 6.6 or later",
			  missing, multi < 0 ? err : "Linux 6.6+ has them");
		return -1;
	}
	log_info("this kernel has no uprobe-multi links (%s): using perf attach mode, which needs "
		 "CAP_SYS_ADMIN until every probe is attached",
		 multi < 0 ? err : "Linux 6.6+ has them");
	return 0;
}

static int open_loop(struct collector *c)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	c->signal_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->signal_fd < 0 || c->timer_fd < 0 || c->epoll_fd < 0) {
		log_error("setting up the event loop: %s", strerror(errno));
		return -1;
	}
	unsigned ms = c->opts->stats_interval_ms;
	struct itimerspec period = {
		.it_interval = { ms / 1000, (long)(ms % 1000) * 1000000 },
		.it_value = { ms / 1000, (long)(ms % 1000) * 1000000 },
	};
	timerfd_settime(c->timer_fd, 0, &period, NULL);
	if (epoll_add(c->epoll_fd, ring_buffer__epoll_fd(c->rings), TAG_RINGS) ||
	    epoll_add(c->epoll_fd, c->signal_fd, TAG_SIGNAL) ||
	    epoll_add(c->epoll_fd, c->timer_fd, TAG_TIMER) ||
	    epoll_add(c->epoll_fd, c->watch.fd, TAG_WATCH)) {
		log_error("setting up the event loop: %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int setup(struct collector *c)
{
	char err[ATTACH_ERROR_LEN];
	/* What a user can get wrong first, each with its own message, before
	 * anything is loaded or created (a failed start leaves no queue). */
	if (choose_mode(c) < 0)
		return -1;
	if (attachment_check_binary(c->opts->bitcoind_path, c->opts->group_enabled, c->plans, err) <
	    0) {
		log_error("%s", err);
		return -1;
	}
	if (target_init(&c->target, c->opts->bitcoind_path, c->opts->bitcoind_pid,
			c->opts->bitcoind_pid_file, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (load_bpf(c) < 0 || open_queue(c) < 0)
		return -1;
	sink_init(&c->sink, c->queue);
	assembler_init(&c->assembler);
	if (watch_init(&c->watch, c->opts->bitcoind_path, c->opts->bitcoind_pid_file, err,
		       sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	update_filter(c);
	struct loaded_plans loaded = loaded_plans(c);
	if (attachment_attach(&c->attached, c->skel->obj, c->mode, c->opts->bitcoind_path,
			      c->opts->group_enabled, c->generation, &loaded, err) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (privileges_reduce(err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	c->sink.attached = c->attached.attached;
	if (open_rings(c) < 0 || open_loop(c) < 0)
		return -1;
	sink_started(&c->sink, c->mode, target_filter_tgid(&c->target));
	queue_notify(c->queue);
	log_info("attached %d tracepoints to %s (%s mode); queue %s, stream %016llx, next seq %llu",
		 attachment_count(&c->attached), c->opts->bitcoind_path,
		 c->mode == ATTACH_MULTI ? "uprobe-multi" : "perf", c->opts->queue_dir,
		 (unsigned long long)queue_stream_id(c->queue),
		 (unsigned long long)queue_next_seq(c->queue));
	write_ready_file(c);
	return 0;
}

static void run(struct collector *c)
{
	/* While events flow, poll every NAP_MS with reader_sleeping 0 (BPF
	 * submits without waking us, unless a ring is a quarter full); when a
	 * poll finds nothing, say we sleep, fence, and look once more before
	 * sleeping with no timeout (BPF then forces a wake-up). The fence
	 * pairs with the one in BPF's wake_flags(): either BPF sees the flag
	 * or we see its reservation. An event waits at most NAP_MS. */
	enum { NAP_MS = 10 };
	__atomic_store_n(&c->skel->bss->reader_sleeping, 1, __ATOMIC_SEQ_CST);
	while (!c->stop) {
		struct epoll_event events[8];
		int n = epoll_wait(c->epoll_fd, events, 8, c->napping ? NAP_MS : -1);
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait: %s", strerror(errno));
			break;
		}
		if (n == 0 && c->napping && drain(c) == 0) {
			__atomic_store_n(&c->skel->bss->reader_sleeping, 1, __ATOMIC_SEQ_CST);
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (rings_pending(c) || drain(c) > 0)
				__atomic_store_n(&c->skel->bss->reader_sleeping, 0, __ATOMIC_SEQ_CST);
			else
				c->napping = false;
		}
		for (int i = 0; i < n; i++) {
			uint64_t ticks;
			struct signalfd_siginfo si;
			switch (events[i].data.u32) {
			case TAG_RINGS:
				/* woken: nap from now on, BPF need not wake us */
				__atomic_store_n(&c->skel->bss->reader_sleeping, 0, __ATOMIC_SEQ_CST);
				c->napping = true;
				drain(c);
				break;
			case TAG_SIGNAL:
				if (read(c->signal_fd, &si, sizeof(si)) == sizeof(si)) {
					log_info("signal %u: detaching and exiting", si.ssi_signo);
					c->stop = true;
				}
				break;
			case TAG_TIMER:
				if (read(c->timer_fd, &ticks, sizeof(ticks)) > 0) {
					drain(c);
					sink_refresh_clock(&c->sink);
					sink_stats(&c->sink);
					queue_notify(c->queue);
				}
				break;
			case TAG_WATCH: on_watch(c); break;
			}
		}
	}
}

static void shutdown_collector(struct collector *c)
{
	attachment_detach(&c->attached);
	c->sink.attached = 0;
	if (c->rings && c->queue) {
		/* What the probes wrote before the links went is still in the rings. */
		drain(c);
		sink_stats(&c->sink);
		queue_notify(c->queue);
	}
	ring_buffer__free(c->rings);
	extractor_bpf__destroy(c->skel);
	assembler_free(&c->assembler);
	if (c->queue)
		queue_producer_close(c->queue);
	watch_close(&c->watch);
}

int main(int argc, char **argv)
{
	struct collector_options opts;
	switch (options_parse(argc, argv, &opts)) {
	case OPTIONS_EXIT_OK: return 0;
	case OPTIONS_USAGE_ERROR: return EXIT_USAGE;
	case OPTIONS_RUN: break;
	}
	log_init("ebpf-collector", (enum log_level)opts.log_level);
	libbpf_set_print(opts.libbpf_debug ? libbpf_print : libbpf_print_quiet);
	if (opts.list_tracepoints)
		return list_tracepoints(opts.bitcoind_path) == 0 ? 0 : EXIT_FATAL;

	/* A consumer that closes the doorbell must not kill us. */
	signal(SIGPIPE, SIG_IGN);

	struct collector c = { .opts = &opts, .epoll_fd = -1, .signal_fd = -1, .timer_fd = -1 };
	attachment_init(&c.attached);
	c.watch.fd = -1;
	int rc = setup(&c);
	if (rc == 0)
		run(&c);
	shutdown_collector(&c);
	return rc == 0 ? c.exit_code : EXIT_FATAL;
}
