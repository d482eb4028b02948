/* The eBPF side of ebpf-extractor: one program per Bitcoin Core USDT
 * tracepoint. Each program reserves a record in its group's ring buffer,
 * copies the tracepoint's arguments into it (record.h) and submits it;
 * nothing else. P2P payloads follow their message record as chunk records
 * (bpf_shared.h).
 *
 * Every argument fetch and every user-memory read is checked: a failure
 * sets RECORD_FLAG_READ_FAILED(arg) and leaves that field zero. The ring
 * does not zero records, and we do not zero them whole either: every
 * header and body field is written, reserved fields are zeroed by the
 * handler (ZERO), hashes and strings on a failed argument, so padding and
 * reserved fields never carry bytes of an earlier record. The bytes of a
 * string buffer after its NUL may (bpf_probe_read_user_str leaves them as
 * they were): zeroing them here cost the traced thread a store per 8 bytes
 * of every buffer, so the collector zeroes them as it copies the record
 * into the queue (collector/sink.c), and the queue never carries them. A
 * string longer than its buffer sets RECORD_FLAG_TRUNCATED(arg). A failed
 * reservation counts one lost event for the tracepoint in drop_counts.
 *
 * Loaded by the collector either for uprobe-multi links (expected attach
 * type BPF_TRACE_UPROBE_MULTI, spec map filled by the collector, cookie =
 * spec id) or for libbpf's bpf_program__attach_usdt (perf uprobes); the
 * code is the same for both.
 */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#include "record.h"
#include "tracepoints.h"
#include "bpf_shared.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* ---- state shared with the collector (skeleton .bss) ---- */

/* 0: every process; else only this tgid (initial pid namespace). */
__u32 filter_tgid = 0;

/* Lost events (failed reservations): [cpu & (DROP_SLOTS-1)][tracepoint]. */
__u64 drop_counts[DROP_SLOTS][TP_COUNT] = {};

/* The same count per tracepoint, all CPUs in one cell: every event record
 * carries its low 32 bits (bpf_shared.h, "drop stamp"), so the collector
 * puts a loss before the first event that came after it. Written only when
 * a reservation fails, so the cache line is shared, not bounced. */
__u64 drop_seq[TP_COUNT] = {};

/* Wake-ups: a ring buffer wakes its reader when the reader had caught up,
 * which at a few thousand events a second is every event, and a wake-up
 * costs the traced thread far more than the event (docs/performance.md).
 * So records are submitted without a wake-up unless the collector said it
 * is going to sleep (reader_sleeping, written by the collector) or a ring
 * is a quarter full; while events flow the collector polls every few ms. */
__u32 reader_sleeping = 0;
/* one cache line per CPU slot, for a full fence on a line nobody shares */
__u64 fence_slots[DROP_SLOTS][8] = {};

/* A quarter of each group's ring size in bytes: more unread data than this
 * forces a wake-up. The collector sets it with the ring size before load
 * (collector/main.c load_bpf()); the defaults match the default sizes.
 * Read-only once loaded, so the verifier sees a constant. */
const volatile __u64 ring_wake_bytes[GROUP_COUNT] = {
	[GROUP_P2PMSG] = RING_PAGES_P2PMSG * RING_PAGE_SIZE / 4,
	[GROUP_CONNECTION] = RING_PAGES_CONNECTION * RING_PAGE_SIZE / 4,
	[GROUP_MEMPOOL] = RING_PAGES_MEMPOOL * RING_PAGE_SIZE / 4,
	[GROUP_VALIDATION] = RING_PAGES_VALIDATION * RING_PAGE_SIZE / 4,
	[GROUP_UTXOCACHE] = RING_PAGES_UTXOCACHE * RING_PAGE_SIZE / 4,
	[GROUP_COIN_SELECTION] = RING_PAGES_COIN_SELECTION * RING_PAGE_SIZE / 4,
};

/* Fetch plans (bpf_shared.h): one per tracepoint, built by the collector
 * from the binary's USDT notes before load; read-only once loaded, so the
 * verifier sees every field as a constant and drops the branches a plan
 * does not take. plan_off[tp] non-zero (written by the collector before it
 * attaches a binary with other specs) sends tp back to the spec map. */
const volatile struct fetch_plan fetch_plans[TP_COUNT] = {};
__u32 plan_off[TP_COUNT] = {};

/* Where a plan's windows are read: per CPU, as a program can be preempted
 * by another thread on its CPU (uprobe programs run with migration, not
 * preemption, disabled), busy says the buffer is in use; the second user
 * falls back to the spec map. */
struct fetch_scratch {
	__u64 busy;
	__u8 data[FETCH_WINDOW_COUNT * FETCH_WINDOW_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fetch_scratch);
} fetch_scratch_map SEC(".maps");

/* ---- ring buffers, one per group ---- */

#define RING(name, pages)                                                      \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                            \
		__uint(max_entries, (pages) * RING_PAGE_SIZE);                 \
	} name SEC(".maps")

RING(ring_p2pmsg, RING_PAGES_P2PMSG);
RING(ring_connection, RING_PAGES_CONNECTION);
RING(ring_mempool, RING_PAGES_MEMPOOL);
RING(ring_validation, RING_PAGES_VALIDATION);
RING(ring_utxocache, RING_PAGES_UTXOCACHE);
RING(ring_coin_selection, RING_PAGES_COIN_SELECTION);

/* ---- common helpers ---- */

static __always_inline void count_drop(__u16 tp)
{
	__u32 slot = bpf_get_smp_processor_id() & (DROP_SLOTS - 1);

	__sync_fetch_and_add(&drop_counts[slot][tp], 1);
	/* after drop_counts: a stamp never runs ahead of their sum */
	__sync_fetch_and_add(&drop_seq[tp], 1);
}

/* Applies the pid filter, then reserves an event record of
 * header + body_size bytes and fills its header (flags are set at submit).
 * The body is not zeroed: every handler writes every field of it, zeroes
 * its reserved fields, and arg_str()/arg_hash() zero a failed argument.
 * NULL when the process is filtered out or the ring is full (counted). */
static __always_inline struct record_header *event_reserve(void *ring, __u32 body_size, __u16 tp)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 want = filter_tgid;
	struct record_header *h;
	__u64 now;

	if (want && (__u32)(pid_tgid >> 32) != want)
		return NULL;
	now = bpf_ktime_get_boot_ns();
	h = bpf_ringbuf_reserve(ring, sizeof(*h) + body_size, 0);
	if (!h) {
		count_drop(tp);
		return NULL;
	}
	h->kind = RECORD_EVENT;
	h->tracepoint = tp;
	h->length = sizeof(*h) + body_size;
	h->time_ns = now;
	h->pid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	/* drops of tp before this event (ring only; the collector zeroes it) */
	h->reserved = (__u32)drop_seq[tp];
	return h;
}

/* Flags for bpf_ringbuf_submit of the last record of an event: a wake-up
 * when the ring holds more than a quarter of its size unread (one
 * bpf_ringbuf_query against ring_wake_bytes), else when the collector said
 * it sleeps. The fence (any atomic is a full barrier), needed only for the
 * second test, orders the reservation's producer position before the load
 * of reader_sleeping; the collector stores reader_sleeping = 1, fences,
 * then checks the producer positions: one of the two sees the other. */
static __always_inline __u64 wake_flags(void *ring, enum tracepoint_group g)
{
	if (bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA) > ring_wake_bytes[g])
		return BPF_RB_FORCE_WAKEUP;
	__sync_fetch_and_add(&fence_slots[bpf_get_smp_processor_id() & (DROP_SLOTS - 1)][0], 1);
	if (*(volatile __u32 *)&reader_sleeping)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void event_submit_ring(void *ring, enum tracepoint_group g,
					      struct record_header *h, __u32 flags)
{
	h->flags = flags;
	bpf_ringbuf_submit(h, wake_flags(ring, g));
}
#define event_submit(h, fl) (args_end(&args_), event_submit_ring(ring_, group_, h, fl))

/* USDT argument i, with the contract of usdt.bpf.h's bpf_usdt_arg() (0, or
 * a negative error with *res = 0) and the same spec map and spec id (the
 * cookie, or the ip map on kernels without cookies), but cheaper: the
 * register is read from the context with a constant offset per register,
 * where bpf_usdt_arg() calls bpf_probe_read_kernel() at a variable one
 * (bench/tracepoint: 274 fewer instructions per mempool:added event, 561
 * per net:inbound_message). The registers are those collector/usdt_args.c
 * can name; any other offset fails. */
static __always_inline int usdt_reg(struct pt_regs *ctx, short off, unsigned long *val)
{
	unsigned long v;

	/* barrier_var: otherwise clang merges the cases into one load at
	 * ctx + off, which the verifier refuses (modified ctx pointer) */
	switch (off) {
#define USDT_REG(r)                                                            \
	case __builtin_offsetof(struct pt_regs, r):                            \
		v = ctx->r;                                                    \
		barrier_var(v);                                                \
		*val = v;                                                      \
		return 0
	USDT_REG(rax);
	USDT_REG(rbx);
	USDT_REG(rcx);
	USDT_REG(rdx);
	USDT_REG(rsi);
	USDT_REG(rdi);
	USDT_REG(rbp);
	USDT_REG(rsp);
	USDT_REG(r8);
	USDT_REG(r9);
	USDT_REG(r10);
	USDT_REG(r11);
	USDT_REG(r12);
	USDT_REG(r13);
	USDT_REG(r14);
	USDT_REG(r15);
	USDT_REG(rip);
#undef USDT_REG
	default:
		return -EINVAL;
	}
}

/* The USDT spec of the tracepoint that fired (the spec id is the cookie,
 * or from the ip map on kernels without cookies), looked up once per
 * event; NULL when there is none, and then every argument fails. */
static __always_inline struct __bpf_usdt_spec *usdt_spec(struct pt_regs *ctx)
{
	int id = __bpf_usdt_spec_id(ctx);

	if (id < 0)
		return NULL;
	return bpf_map_lookup_elem(&__bpf_usdt_specs, &id);
}

/* 1, 2 or 4-byte arguments: clear (or sign-extend) the upper bits. */
static __always_inline long usdt_narrow(unsigned long val, int bitshift, bool is_signed)
{
	val <<= bitshift;
	if (is_signed)
		return ((long)val) >> bitshift;
	return val >> bitshift;
}

/* A BPF-to-BPF call, not inlined (as bpf_usdt_arg is): inlined at every
 * argument, the 17-way register switch made the object six times larger,
 * for no gain bench/tracepoint could tell from noise. spec is from
 * usdt_spec(), once per event. */
static __noinline int usdt_arg(struct pt_regs *ctx, struct __bpf_usdt_spec *spec, __u64 i,
			       long *res)
{
	struct __bpf_usdt_arg_spec *a;
	unsigned long val;

	*res = 0;
	if (!spec)
		return -ESRCH;
	if (i >= BPF_USDT_MAX_ARG_CNT || i >= spec->arg_cnt)
		return -ENOENT;
	a = &spec->args[i];
	switch (a->arg_type) {
	case BPF_USDT_ARG_CONST:
		val = a->val_off;
		break;
	case BPF_USDT_ARG_REG:
		if (usdt_reg(ctx, a->reg_off, &val))
			return -EINVAL;
		break;
	case BPF_USDT_ARG_REG_DEREF:
		if (usdt_reg(ctx, a->reg_off, &val))
			return -EINVAL;
		if (bpf_probe_read_user(&val, sizeof(val), (void *)val + a->val_off))
			return -EFAULT;
		break;
	default:
		return -EINVAL;
	}
	*res = usdt_narrow(val, a->arg_bitshift, a->arg_signed);
	return 0;
}

/* How the arguments of the event being handled are read: by its fetch
 * plan, or (no plan, or the plan's windows could not be read) by the spec
 * map like bpf_usdt_arg(). */
struct args {
	struct pt_regs *ctx;
	struct __bpf_usdt_spec *spec;     /* spec map path: NULL if no spec */
	struct fetch_scratch *scratch;    /* plan path: windows read here */
	bool planned;
};

/* Window w of plan p into the scratch buffer; false when it cannot be read
 * (then the event takes the spec map path: simpler for the verifier than a
 * fallback per argument, and it does not happen with a sane stack). */
static __always_inline bool read_window(struct args *a, const volatile struct fetch_plan *p,
					const __u32 w)
{
	unsigned long base;
	__u32 len = p->windows[w].len;

	if (w >= p->window_count)
		return true;
	if (len > FETCH_WINDOW_MAX || usdt_reg(a->ctx, p->windows[w].reg_off, &base))
		return false;
	return bpf_probe_read_user(a->scratch->data + w * FETCH_WINDOW_MAX, len,
				   (const void *)(base + p->windows[w].off)) == 0;
}

static __always_inline bool read_windows(struct args *a, const volatile struct fetch_plan *p)
{
	__u32 zero = 0;
	struct fetch_scratch *s = bpf_map_lookup_elem(&fetch_scratch_map, &zero);

	if (!s)
		return false;
	if (__sync_fetch_and_add(&s->busy, 1)) {
		__sync_fetch_and_add(&s->busy, -1);
		return false;
	}
	a->scratch = s;
	_Static_assert(FETCH_WINDOW_COUNT == 2, "one call per window");
	return read_window(a, p, 0) && read_window(a, p, 1);
}

static __always_inline void args_begin(struct args *a, struct pt_regs *ctx, const __u16 tp)
{
	const volatile struct fetch_plan *p = &fetch_plans[tp];

	a->ctx = ctx;
	a->spec = NULL;
	a->scratch = NULL;
	a->planned = p->valid && !*(volatile __u32 *)&plan_off[tp];
	if (a->planned && p->window_count && !read_windows(a, p))
		a->planned = false;
	if (!a->planned)
		a->spec = usdt_spec(ctx);
}

/* After the last argument: the scratch buffer is free again. */
static __always_inline void args_end(struct args *a)
{
	if (a->scratch)
		__sync_fetch_and_add(&a->scratch->busy, -1);
}

/* Argument i by plan f (constants for the verifier), with usdt_arg()'s
 * contract. */
static __always_inline int plan_arg(struct args *a, const volatile struct fetch_arg *f, long *res)
{
	unsigned long val;

	*res = 0;
	switch (f->kind) {
	case FETCH_CONST:
		val = f->val_off;
		break;
	case FETCH_REG:
		if (usdt_reg(a->ctx, f->reg_off, &val))
			return -EINVAL;
		break;
	case FETCH_DEREF:
		if (usdt_reg(a->ctx, f->reg_off, &val))
			return -EINVAL;
		if (bpf_probe_read_user(&val, sizeof(val), (void *)val + f->val_off))
			return -EFAULT;
		break;
	case FETCH_WINDOW:
		if (!a->scratch || f->win_off > sizeof(a->scratch->data) - sizeof(val))
			return -EINVAL;
		val = *(__u64 *)(a->scratch->data + f->win_off);
		break;
	default:
		return -ENOENT;
	}
	*res = usdt_narrow(val, f->bitshift, f->is_signed);
	return 0;
}

static __always_inline int fetch_arg(struct args *a, const __u16 tp, const __u32 i, long *res)
{
	if (a->planned && i < FETCH_MAX_ARGS)
		return plan_arg(a, &fetch_plans[tp].args[i], res);
	return usdt_arg(a->ctx, a->spec, i, res);
}

/* Declares hdr (the reserved record), b (its body of struct type), args_
 * (how arguments are read) and flags; returns from the program when
 * nothing was reserved. The body is not zeroed (event_reserve). */
#define EVENT_BEGIN(ring, group, tp, type)                                     \
	__u32 flags = 0;                                                       \
	void *ring_ = &(ring);                                                 \
	const enum tracepoint_group group_ = (group);                          \
	const __u16 tp_ = (tp);                                                \
	struct record_header *hdr = event_reserve(&(ring), sizeof(struct type), tp_); \
	struct args args_;                                                     \
	struct type *b;                                                        \
	if (!hdr)                                                              \
		return 0;                                                      \
	b = (struct type *)(hdr + 1);                                          \
	args_begin(&args_, ctx, tp_)

/* A reserved (padding) field of the body: zero, as the record is not. */
#define ZERO(field) __builtin_memset(&(field), 0, sizeof(field))

/* Integer (or bool, or pointer) argument i; 0 and flagged on failure. */
static __always_inline long arg_int(struct args *a, const __u16 tp, const __u32 i, __u32 *flags)
{
	long v;

	if (fetch_arg(a, tp, i, &v)) {
		*flags |= RECORD_FLAG_READ_FAILED(i);
		return 0; /* fetch_arg set v = 0 too */
	}
	return v;
}

#define ARG_INT(i) arg_int(&args_, tp_, i, &flags)

/* Every hash and string field of record.h starts at a multiple of 8 bytes
 * and is a multiple of 8 bytes long: arg_hash() and arg_str() zero them
 * with 8-byte stores (without the hint, clang stores byte by byte). */
#define ALIGNED8(type, field)                                                  \
	_Static_assert(__builtin_offsetof(struct type, field) % 8 == 0 &&      \
			       sizeof(((struct type *)0)->field) % 8 == 0,     \
		       #type "." #field ": 8-byte aligned and sized")
ALIGNED8(ev_net_message, addr);
ALIGNED8(ev_net_message, conn_type);
ALIGNED8(ev_net_message, msg_type);
ALIGNED8(ev_net_connection, addr);
ALIGNED8(ev_net_connection, conn_type);
ALIGNED8(ev_net_closed, addr);
ALIGNED8(ev_net_closed, conn_type);
ALIGNED8(ev_net_misbehaving, message);
ALIGNED8(ev_block_connected, block_hash);
ALIGNED8(ev_utxocache_coin, txid);
ALIGNED8(ev_selected_coins, wallet);
ALIGNED8(ev_selected_coins, algorithm);
ALIGNED8(ev_normal_create_tx, wallet);
ALIGNED8(ev_attempting_aps, wallet);
ALIGNED8(ev_aps_create_tx, wallet);
ALIGNED8(ev_mempool_added, txid);
ALIGNED8(ev_mempool_removed, txid);
ALIGNED8(ev_mempool_removed, reason);
ALIGNED8(ev_mempool_replaced, replaced_txid);
ALIGNED8(ev_mempool_replaced, replacement_txid);
ALIGNED8(ev_mempool_rejected, txid);
ALIGNED8(ev_mempool_rejected, reason);
_Static_assert(sizeof(struct record_header) % 8 == 0, "bodies start on 8 bytes");
#undef ALIGNED8

/* 32-byte hash argument i, copied as passed (internal byte order). dst is
 * zero when flagged: zeroed here when the argument failed, by the helper
 * when the read did. */
static __always_inline void arg_hash(struct args *a, const __u16 tp, const __u32 i, __u8 *dst,
				     __u32 *flags)
{
	long p;

	if (fetch_arg(a, tp, i, &p)) {
		__builtin_memset(__builtin_assume_aligned(dst, 8), 0, HASH_LEN);
		*flags |= RECORD_FLAG_READ_FAILED(i);
	} else if (bpf_probe_read_user(dst, HASH_LEN, (const void *)p)) {
		*flags |= RECORD_FLAG_READ_FAILED(i);
	}
}

/* NUL-terminated string argument i into dst[size] (size is a constant
 * after inlining). The bytes after the NUL are left as they were (the
 * collector zeroes them); dst is zeroed when the argument fails, by the
 * helper when the read does. bpf_probe_read_user_str returns size both
 * for a string of exactly size-1 bytes and for a longer
 * one (then it stores size-1 bytes and a NUL); in both cases it has read
 * src[size-1], which is the NUL only for the string that fits. If that byte
 * cannot be read again we flag truncation rather than risk a silent cut. */
static __always_inline void arg_str(struct args *a, const __u16 tp, const __u32 i, char *dst,
				    __u32 size, __u32 *flags)
{
	long p, n;
	char last;

	if (fetch_arg(a, tp, i, &p)) {
		__builtin_memset(__builtin_assume_aligned(dst, 8), 0, size);
		goto failed;
	}
	n = bpf_probe_read_user_str(dst, size, (const void *)p);
	if (n < 0)
		goto failed;
	if (n == size &&
	    (bpf_probe_read_user(&last, 1, (const char *)p + size - 1) || last != 0))
		*flags |= RECORD_FLAG_TRUNCATED(i);
	return;
failed:
	*flags |= RECORD_FLAG_READ_FAILED(i);
}

#define ARG_STR(i, field) arg_str(&args_, tp_, i, field, sizeof(field), &flags)
#define ARG_HASH(i, field) arg_hash(&args_, tp_, i, field, &flags)

/* ---- net:inbound_message, net:outbound_message ---- */

struct chunk_ctx {
	const __u8 *src; /* payload in bitcoind (0 if its argument failed) */
	__u64 len;       /* bytes to capture: min(size, P2P_PAYLOAD_MAX) */
	__u64 time_ns;   /* of the message record */
	__u32 pid;
	__u32 tid;
	__u16 tp;
	__u8 dropped;    /* a chunk could not be reserved */
};

/* One chunk of n (<= cls) bytes at offset off, in a record whose data part
 * is cls bytes. Returns 1 (stop the loop) when the ring is full. */
static __always_inline long emit_piece(struct chunk_ctx *c, __u64 off, __u64 n, const __u32 cls)
{
	struct record_header *h;
	struct ev_chunk *ch;
	__u32 flags = 0;

	h = bpf_ringbuf_reserve(&ring_p2pmsg, CHUNK_RECORD_SIZE(cls), 0);
	if (!h) {
		c->dropped = 1;
		return 1;
	}
	ch = (struct ev_chunk *)(h + 1);
	/* zeroes data[0..n) itself on failure */
	if (bpf_probe_read_user(ch->data, n, c->src + off))
		flags = RECORD_FLAG_READ_FAILED(5);
	h->kind = RECORD_CHUNK;
	h->tracepoint = c->tp;
	h->length = CHUNK_RECORD_SIZE(cls);
	h->time_ns = c->time_ns;
	h->pid = c->pid;
	h->tid = c->tid;
	h->flags = flags;
	h->reserved = 0;
	ch->offset = off;
	ch->data_len = n;
	ch->reserved = 0;
	/* every chunk may fill the ring: each one checks */
	bpf_ringbuf_submit(h, wake_flags(&ring_p2pmsg, GROUP_P2PMSG));
	return 0;
}

/* Chunk i of the payload, in the smallest size class that holds it (64,
 * 128, ..., CHUNK_DATA_MAX bytes). Returns 1 when it was the last chunk or
 * the ring is full. */
static __always_inline long emit_chunk_inline(__u32 i, struct chunk_ctx *c)
{
	__u64 off = (__u64)i * CHUNK_DATA_MAX;
	__u64 n;

	if (off >= c->len)
		return 1;
	n = c->len - off;
	if (n > CHUNK_DATA_MAX)
		n = CHUNK_DATA_MAX;
#define CHUNK_CLASS(k)                                                         \
	if (n <= CHUNK_CLASS_SIZE(k))                                          \
		return emit_piece(c, off, n, CHUNK_CLASS_SIZE(k))
	CHUNK_CLASS(0);
	CHUNK_CLASS(1);
	CHUNK_CLASS(2);
	CHUNK_CLASS(3);
	CHUNK_CLASS(4);
	CHUNK_CLASS(5);
	CHUNK_CLASS(6);
	CHUNK_CLASS(7);
	CHUNK_CLASS(8);
#undef CHUNK_CLASS
	_Static_assert(CHUNK_CLASS_COUNT == 10, "one branch per chunk class");
	return emit_piece(c, off, n, CHUNK_CLASS_SIZE(9));
}

/* bpf_loop callback for payloads of more than one chunk */
static long emit_chunk(__u32 i, void *arg)
{
	return emit_chunk_inline(i, arg);
}

/* int64 peer_id, str addr, str conn_type, str msg_type, uint64 size,
 * bytes payload */
static __always_inline int p2p_message(struct pt_regs *ctx, __u16 tp)
{
	EVENT_BEGIN(ring_p2pmsg, GROUP_P2PMSG, tp, ev_net_message);
	struct chunk_ctx c = {};

	(void)ring_;
	(void)group_;

	b->peer_id = ARG_INT(0);
	ARG_STR(1, b->addr);
	ARG_STR(2, b->conn_type);
	ARG_STR(3, b->msg_type);
	b->size = ARG_INT(4);
	/* a failed pointer leaves src 0: every chunk is then flagged and zero,
	 * so the chunk count still follows from size alone */
	c.src = (const __u8 *)ARG_INT(5);
	c.len = b->size;
	if (c.len > P2P_PAYLOAD_MAX) {
		c.len = P2P_PAYLOAD_MAX;
		flags |= RECORD_FLAG_TRUNCATED(5);
	}
	args_end(&args_);
	c.time_ns = hdr->time_ns;
	c.pid = hdr->pid;
	c.tid = hdr->tid;
	c.tp = tp;
	hdr->flags = flags;
	/* with chunks to follow, the last of them decides the wake-up */
	bpf_ringbuf_submit(hdr, c.len ? BPF_RB_NO_WAKEUP : wake_flags(&ring_p2pmsg, GROUP_P2PMSG));

	/* one chunk (most messages): inline, without bpf_loop's calls */
	if (c.len && c.len <= CHUNK_DATA_MAX)
		emit_chunk_inline(0, &c);
	else if (c.len && bpf_loop(p2p_chunk_count(c.len), emit_chunk, &c, 0) < 0)
		c.dropped = 1;
	if (c.dropped)
		count_drop(tp);
	return 0;
}

SEC("usdt")
int handle_net_inbound_message(struct pt_regs *ctx)
{
	return p2p_message(ctx, TP_NET_INBOUND_MESSAGE);
}

SEC("usdt")
int handle_net_outbound_message(struct pt_regs *ctx)
{
	return p2p_message(ctx, TP_NET_OUTBOUND_MESSAGE);
}

/* ---- connections ---- */

/* int64 peer_id, str addr, str conn_type, uint32 network,
 * uint64 existing_connections */
static __always_inline int net_connection(struct pt_regs *ctx, __u16 tp)
{
	EVENT_BEGIN(ring_connection, GROUP_CONNECTION, tp, ev_net_connection);

	ZERO(b->reserved);
	b->peer_id = ARG_INT(0);
	ARG_STR(1, b->addr);
	ARG_STR(2, b->conn_type);
	b->network = ARG_INT(3);
	b->existing_connections = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

/* int64 peer_id, str addr, str conn_type, uint32 network,
 * uint64 time_established */
static __always_inline int net_closed(struct pt_regs *ctx, __u16 tp)
{
	EVENT_BEGIN(ring_connection, GROUP_CONNECTION, tp, ev_net_closed);

	ZERO(b->reserved);
	b->peer_id = ARG_INT(0);
	ARG_STR(1, b->addr);
	ARG_STR(2, b->conn_type);
	b->network = ARG_INT(3);
	b->time_established = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

SEC("usdt")
int handle_net_inbound_connection(struct pt_regs *ctx)
{
	return net_connection(ctx, TP_NET_INBOUND_CONNECTION);
}

SEC("usdt")
int handle_net_outbound_connection(struct pt_regs *ctx)
{
	return net_connection(ctx, TP_NET_OUTBOUND_CONNECTION);
}

SEC("usdt")
int handle_net_closed_connection(struct pt_regs *ctx)
{
	return net_closed(ctx, TP_NET_CLOSED_CONNECTION);
}

SEC("usdt")
int handle_net_evicted_inbound_connection(struct pt_regs *ctx)
{
	return net_closed(ctx, TP_NET_EVICTED_INBOUND_CONNECTION);
}

/* int64 peer_id, str message */
SEC("usdt")
int handle_net_misbehaving_connection(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_connection, GROUP_CONNECTION, TP_NET_MISBEHAVING_CONNECTION, ev_net_misbehaving);

	b->peer_id = ARG_INT(0);
	ARG_STR(1, b->message);
	event_submit(hdr, flags);
	return 0;
}

/* ---- validation ---- */

/* hash32 block_hash, int32 height, uint64 transactions, int32 inputs,
 * uint64 sigops, uint64 duration_ns */
SEC("usdt")
int handle_validation_block_connected(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_validation, GROUP_VALIDATION, TP_VALIDATION_BLOCK_CONNECTED, ev_block_connected);

	ARG_HASH(0, b->block_hash);
	b->height = ARG_INT(1);
	b->transactions = ARG_INT(2);
	b->inputs = ARG_INT(3);
	b->sigops = ARG_INT(4);
	b->duration_ns = ARG_INT(5);
	event_submit(hdr, flags);
	return 0;
}

/* ---- utxocache ---- */

/* int64 duration_us, uint32 mode, uint64 coins, uint64 memory_bytes,
 * bool for_prune */
SEC("usdt")
int handle_utxocache_flush(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_utxocache, GROUP_UTXOCACHE, TP_UTXOCACHE_FLUSH, ev_utxocache_flush);

	ZERO(b->reserved);
	b->duration_us = ARG_INT(0);
	b->mode = ARG_INT(1);
	b->coins = ARG_INT(2);
	b->memory_bytes = ARG_INT(3);
	b->for_prune = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

/* hash32 txid, uint32 vout, uint32 height, int64 value, bool is_coinbase */
static __always_inline int utxocache_coin(struct pt_regs *ctx, __u16 tp)
{
	EVENT_BEGIN(ring_utxocache, GROUP_UTXOCACHE, tp, ev_utxocache_coin);

	ZERO(b->reserved);
	ARG_HASH(0, b->txid);
	b->vout = ARG_INT(1);
	b->height = ARG_INT(2);
	b->value = ARG_INT(3);
	b->is_coinbase = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

SEC("usdt")
int handle_utxocache_add(struct pt_regs *ctx)
{
	return utxocache_coin(ctx, TP_UTXOCACHE_ADD);
}

SEC("usdt")
int handle_utxocache_spent(struct pt_regs *ctx)
{
	return utxocache_coin(ctx, TP_UTXOCACHE_SPENT);
}

SEC("usdt")
int handle_utxocache_uncache(struct pt_regs *ctx)
{
	return utxocache_coin(ctx, TP_UTXOCACHE_UNCACHE);
}

/* ---- coin_selection ---- */

/* str wallet, str algorithm, int64 target, int64 waste, int64 selected_value */
SEC("usdt")
int handle_coin_selection_selected_coins(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_coin_selection, GROUP_COIN_SELECTION, TP_COIN_SELECTION_SELECTED_COINS, ev_selected_coins);

	ARG_STR(0, b->wallet);
	ARG_STR(1, b->algorithm);
	b->target = ARG_INT(2);
	b->waste = ARG_INT(3);
	b->selected_value = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

/* str wallet, bool success, int64 fee, int32 change_pos */
SEC("usdt")
int handle_coin_selection_normal_create_tx_internal(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_coin_selection, GROUP_COIN_SELECTION, TP_COIN_SELECTION_NORMAL_CREATE_TX_INTERNAL,
		    ev_normal_create_tx);

	ZERO(b->reserved);
	ARG_STR(0, b->wallet);
	b->success = ARG_INT(1);
	b->fee = ARG_INT(2);
	b->change_pos = ARG_INT(3);
	event_submit(hdr, flags);
	return 0;
}

/* str wallet */
SEC("usdt")
int handle_coin_selection_attempting_aps_create_tx(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_coin_selection, GROUP_COIN_SELECTION, TP_COIN_SELECTION_ATTEMPTING_APS_CREATE_TX,
		    ev_attempting_aps);

	ARG_STR(0, b->wallet);
	event_submit(hdr, flags);
	return 0;
}

/* str wallet, bool use_aps, bool success, int64 fee, int32 change_pos */
SEC("usdt")
int handle_coin_selection_aps_create_tx_internal(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_coin_selection, GROUP_COIN_SELECTION, TP_COIN_SELECTION_APS_CREATE_TX_INTERNAL,
		    ev_aps_create_tx);

	ZERO(b->reserved);
	ARG_STR(0, b->wallet);
	b->use_aps = ARG_INT(1);
	b->success = ARG_INT(2);
	b->fee = ARG_INT(3);
	b->change_pos = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

/* ---- mempool ---- */

/* hash32 txid, int32 vsize, int64 fee */
SEC("usdt")
int handle_mempool_added(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_mempool, GROUP_MEMPOOL, TP_MEMPOOL_ADDED, ev_mempool_added);

	ZERO(b->reserved);
	ARG_HASH(0, b->txid);
	b->vsize = ARG_INT(1);
	b->fee = ARG_INT(2);
	event_submit(hdr, flags);
	return 0;
}

/* hash32 txid, str reason, int32 vsize, int64 fee, uint64 entry_time */
SEC("usdt")
int handle_mempool_removed(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_mempool, GROUP_MEMPOOL, TP_MEMPOOL_REMOVED, ev_mempool_removed);

	ZERO(b->reserved);
	ARG_HASH(0, b->txid);
	ARG_STR(1, b->reason);
	b->vsize = ARG_INT(2);
	b->fee = ARG_INT(3);
	b->entry_time = ARG_INT(4);
	event_submit(hdr, flags);
	return 0;
}

/* hash32 replaced_txid, int32 replaced_vsize, int64 replaced_fee,
 * uint64 replaced_entry_time, hash32 replacement_id, int32 replacement_vsize,
 * int64 replacement_fee, bool replaced_by_transaction */
SEC("usdt")
int handle_mempool_replaced(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_mempool, GROUP_MEMPOOL, TP_MEMPOOL_REPLACED, ev_mempool_replaced);

	ZERO(b->reserved);
	ARG_HASH(0, b->replaced_txid);
	b->replaced_vsize = ARG_INT(1);
	b->replaced_fee = ARG_INT(2);
	b->replaced_entry_time = ARG_INT(3);
	ARG_HASH(4, b->replacement_txid);
	b->replacement_vsize = ARG_INT(5);
	b->replacement_fee = ARG_INT(6);
	b->replaced_by_transaction = ARG_INT(7);
	event_submit(hdr, flags);
	return 0;
}

/* hash32 txid, str reason */
SEC("usdt")
int handle_mempool_rejected(struct pt_regs *ctx)
{
	EVENT_BEGIN(ring_mempool, GROUP_MEMPOOL, TP_MEMPOOL_REJECTED, ev_mempool_rejected);

	ARG_HASH(0, b->txid);
	ARG_STR(1, b->reason);
	event_submit(hdr, flags);
	return 0;
}

/* ---- benchmark baselines (bench/tracepoint) ---- */

/* The cost of the uprobe alone. */
SEC("usdt")
int bench_empty(struct pt_regs *ctx)
{
	return 0;
}

/* The least any extractor must do for mempool:added: its three arguments
 * (the 32-byte txid and the fee are in bitcoind's memory) copied into a
 * ring record, read by the same fetch plan as handle_mempool_added. No pid
 * filter, timestamp, pid/tid, drop count or wake-up decision, and nobody
 * consumes the ring (tp-bench-empty sizes it for the measurement): the
 * floor under our program. */
SEC("usdt")
int bench_floor_mempool_added(struct pt_regs *ctx)
{
	const __u16 tp_ = TP_MEMPOOL_ADDED;
	struct record_header *hdr;
	struct ev_mempool_added *b;
	struct args args_;
	__u32 flags = 0;

	hdr = bpf_ringbuf_reserve(&ring_mempool, sizeof(*hdr) + sizeof(*b), 0);
	if (!hdr)
		return 0;
	b = (struct ev_mempool_added *)(hdr + 1);
	args_begin(&args_, ctx, tp_);
	ARG_HASH(0, b->txid);
	b->vsize = ARG_INT(1);
	b->fee = ARG_INT(2);
	args_end(&args_);
	hdr->flags = flags;
	bpf_ringbuf_submit(hdr, BPF_RB_NO_WAKEUP);
	return 0;
}
