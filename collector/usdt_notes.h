/* Reading the USDT probes of an ELF file (its .note.stapsdt notes) through an
 * already open file descriptor, with libelf.
 *
 * The collector opens the bitcoind binary once and uses that one descriptor
 * for the notes, for the probe-site checks and for the uprobe-multi link
 * (through /proc/self/fd/N, see uprobe_multi.h), so a file renamed over the
 * path in between cannot mix two files. Nothing here uses the path except in
 * messages, and the descriptor's file position is never used (pread only).
 *
 * x86-64 ELF64 executables and shared objects only (ET_EXEC, ET_DYN).
 */
#ifndef EBPF_EXTRACTOR_USDT_NOTES_H
#define EBPF_EXTRACTOR_USDT_NOTES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* One probe site: one stapsdt note. A provider:name pair can have several
 * sites (the compiler may duplicate a probe, e.g. when inlining). */
struct usdt_probe {
	char *provider; /* "net" */
	char *name;     /* "inbound_message" */
	char *args;     /* "-8@%r13 8@%r14 ...", "" when the probe has none */
	/* Virtual address of the probe's nop, with the .stapsdt.base (prelink)
	 * adjustment applied: note address + (sh_addr of .stapsdt.base - note
	 * base), when both the section and the note's base are non-zero. */
	uint64_t address;
	uint64_t base_address; /* the .stapsdt.base address recorded in the note */
	/* File offset of the nop (the uprobe offset): address - p_vaddr +
	 * p_offset of the executable PT_LOAD segment holding it. */
	uint64_t file_offset;
	/* Semaphore (2-byte counter) address, adjusted like address; 0 when the
	 * probe has no semaphore. */
	uint64_t semaphore_address;
	/* File offset of the semaphore (the uprobe ref_ctr_offset): address -
	 * sh_addr + sh_offset of the allocated, writable, file-backed section
	 * holding it (".probes" for sys/sdt.h and Bitcoin Core), cross-checked
	 * against the writable PT_LOAD segment that maps it. 0 when none. */
	uint64_t semaphore_offset;
};

struct usdt_notes {
	struct usdt_probe *probes; /* in note order */
	size_t count;              /* >= 1 after a successful read */
	/* The file the notes were read from (fstat of the descriptor). */
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

/* Reads every stapsdt note of the ELF file open on fd. path is only used in
 * messages. On success returns 0 and fills *out (free with usdt_notes_free).
 * On error returns a negative errno, leaves *out empty and writes a message
 * naming path to err:
 *   -ENOEXEC  not a regular file, not an ELF file, not x86-64 ELF64, or not
 *             an executable/shared object
 *   -ENOENT   no .note.stapsdt section or no stapsdt note in it:
 *             "<path>: no USDT notes (is bitcoind built with -DWITH_USDT=ON?)"
 *   -EINVAL   a malformed note, or an address that lies in no suitable
 *             segment/section (the message names the probe)
 *   -ENOMEM, -EIO and other read errors */
int usdt_notes_read(int fd, const char *path, struct usdt_notes *out, char *err, size_t errlen);

void usdt_notes_free(struct usdt_notes *notes);

/* The next probe site named provider:name after `after` (NULL: the first);
 * NULL when there is none. */
const struct usdt_probe *usdt_notes_find(const struct usdt_notes *notes, const char *provider,
					 const char *name, const struct usdt_probe *after);

/* Checks, by reading the file through fd, that a probe site is what sys/sdt.h
 * put there before a uprobe goes on it (DESIGN non-negotiable 4): the byte at
 * p->file_offset is the x86 nop 0x90, and the semaphore (if any) is a zero
 * 2-byte value in the file. Returns 0, or -EINVAL (wrong bytes, message
 * naming the probe and the byte found) / -EIO etc. with a message. */
int usdt_probe_site_check(int fd, const char *path, const struct usdt_probe *p, char *err,
			  size_t errlen);

/* Checks that the file open on fd is still the one the notes were read from,
 * unmodified as far as fstat can tell (same device, inode, size and mtime).
 * Returns 0, or -ESTALE with a message. Use it right before attaching. */
int usdt_notes_unchanged(int fd, const char *path, const struct usdt_notes *notes, char *err,
			 size_t errlen);

#endif
