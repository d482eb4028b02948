/* systemd's notification protocol (sd_notify(3)) in a few lines: one
 * datagram to the unix socket named by $NOTIFY_SOCKET. */
#ifndef EBPF_LAUNCHER_NOTIFY_H
#define EBPF_LAUNCHER_NOTIFY_H

/* Takes $NOTIFY_SOCKET and removes it from the environment, so the
 * children never see it. Call once at start. */
void notify_init(void);

/* Sends state ("READY=1\nSTATUS=...") if a socket was named. 0 when sent or
 * none is set, -errno otherwise. An address starting with '@' is in the
 * abstract namespace. */
int notify_send(const char *state);

#endif
