/* The collector's capabilities: CAP_BPF and CAP_PERFMON, plus CAP_SYS_ADMIN
 * only while perf-mode probes are being attached. */
#ifndef EBPF_COLLECTOR_PRIVILEGES_H
#define EBPF_COLLECTOR_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>

/* Empty string when the effective set has CAP_BPF and CAP_PERFMON (and
 * CAP_SYS_ADMIN if need_sys_admin); else the missing ones, "CAP_BPF and
 * CAP_PERFMON". Returns false when something is missing. */
bool privileges_check(bool need_sys_admin, char *missing, size_t len);

/* Keeps CAP_BPF and CAP_PERFMON (permitted and effective) and nothing else:
 * called once every probe is attached, before any event is read. */
int privileges_reduce(char *err, size_t len);

#endif
