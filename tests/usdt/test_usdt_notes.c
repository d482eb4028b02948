/* collector/usdt_notes.c on the test tracee (built here with sys/sdt.h,
 * semaphores in .probes), checked against `readelf -n` and against the
 * section and program headers read here with <elf.h> alone. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "usdt_notes.h"

/* ---- independent view of the file ---- */

struct raw_elf {
	unsigned char *buf;
	size_t size;
	Elf64_Ehdr *eh;
	Elf64_Shdr *sh;
	Elf64_Phdr *ph;
	const char *shstr;
};

static struct raw_elf raw_load(const char *path)
{
	struct raw_elf r = { 0 };
	FILE *f = fopen(path, "rb");
	cr_assert(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	r.size = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	r.buf = malloc(r.size);
	cr_assert(r.buf && fread(r.buf, 1, r.size, f) == r.size);
	fclose(f);
	r.eh = (Elf64_Ehdr *)r.buf;
	r.sh = (Elf64_Shdr *)(r.buf + r.eh->e_shoff);
	r.ph = (Elf64_Phdr *)(r.buf + r.eh->e_phoff);
	r.shstr = (const char *)r.buf + r.sh[r.eh->e_shstrndx].sh_offset;
	return r;
}

static const Elf64_Shdr *raw_section(const struct raw_elf *r, const char *name)
{
	for (int i = 0; i < r->eh->e_shnum; i++)
		if (strcmp(r->shstr + r->sh[i].sh_name, name) == 0)
			return &r->sh[i];
	return NULL;
}

/* One stapsdt entry as `readelf -n` prints it. */
struct readelf_note {
	char provider[64], name[64], args[256];
	unsigned long long loc, base, sem;
};

static size_t readelf_notes(const char *path, struct readelf_note *out, size_t max)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "readelf -n '%s'", path);
	FILE *p = popen(cmd, "r");
	cr_assert(p);
	char line[1024];
	size_t n = 0;
	bool in_stapsdt = false;
	while (fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = '\0';
		if (strstr(line, "Displaying notes found in:"))
			in_stapsdt = strstr(line, ".note.stapsdt") != NULL;
		if (!in_stapsdt)
			continue;
		const char *s = line + strspn(line, " \t");
		if (sscanf(s, "Provider: %63s", out[n].provider) == 1)
			continue;
		if (sscanf(s, "Name: %63s", out[n].name) == 1)
			continue;
		if (sscanf(s, "Location: %llx, Base: %llx, Semaphore: %llx", &out[n].loc, &out[n].base,
			   &out[n].sem) == 3) {
			out[n].args[0] = '\0';
			n++; /* Arguments follows, for entry n-1 */
			cr_assert(n < max);
			continue;
		}
		if (strncmp(s, "Arguments: ", 11) == 0 && n > 0)
			snprintf(out[n - 1].args, sizeof(out[n - 1].args), "%s", s + 11);
	}
	pclose(p);
	return n;
}

static int open_ro(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	return fd;
}

/* A private copy of the tracee, for patching. */
static char *copy_tracee(char *dir_template)
{
	cr_assert(mkdtemp(dir_template));
	static char path[512];
	snprintf(path, sizeof(path), "%s/tracee", dir_template);
	char cmd[1200];
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", USDT_TRACEE, path);
	cr_assert_eq(system(cmd), 0);
	return path;
}

static void patch(const char *path, uint64_t off, const void *bytes, size_t len)
{
	int fd = open(path, O_WRONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, bytes, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void cleanup_dir(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
}

/* ---- tests ---- */

static void check_matches_readelf_and_headers(const char *path, bool pie)
{
	struct readelf_note expected[32];
	size_t n = readelf_notes(path, expected, 32);
	cr_assert_eq(n, 4, "readelf found %zu stapsdt notes", n);

	int fd = open_ro(path);
	struct usdt_notes notes;
	char err[512] = "";
	cr_assert_eq(usdt_notes_read(fd, path, &notes, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(notes.count, n);

	struct raw_elf r = raw_load(path);
	cr_assert_eq(r.eh->e_type, pie ? ET_DYN : ET_EXEC);
	const Elf64_Shdr *probes = raw_section(&r, ".probes");
	const Elf64_Shdr *base = raw_section(&r, ".stapsdt.base");
	cr_assert(probes && base);

	for (size_t i = 0; i < n; i++) {
		const struct usdt_probe *p = &notes.probes[i];
		cr_expect_str_eq(p->provider, expected[i].provider);
		cr_expect_str_eq(p->name, expected[i].name);
		cr_expect_str_eq(p->args, expected[i].args);
		/* not prelinked: the note's base is .stapsdt.base's address */
		cr_expect_eq(expected[i].base, base->sh_addr);
		cr_expect_eq(p->base_address, expected[i].base);
		cr_expect_eq(p->address, expected[i].loc);
		cr_expect_eq(p->semaphore_address, expected[i].sem);

		/* file offset via the executable PT_LOAD holding the address */
		uint64_t off = 0;
		bool found = false;
		for (int k = 0; k < r.eh->e_phnum; k++) {
			const Elf64_Phdr *ph = &r.ph[k];
			if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && p->address >= ph->p_vaddr &&
			    p->address < ph->p_vaddr + ph->p_filesz) {
				off = p->address - ph->p_vaddr + ph->p_offset;
				found = true;
			}
		}
		cr_assert(found);
		cr_expect_eq(p->file_offset, off);
		if (!pie) /* code at 0x401000 from offset 0x1000: a wrong conversion shows */
			cr_expect_neq(p->file_offset, p->address);
		cr_expect_eq(r.buf[p->file_offset], 0x90, "%s:%s byte 0x%02x", p->provider, p->name,
			     r.buf[p->file_offset]);

		if (strcmp(p->name, "nosem") == 0) {
			cr_expect_eq(p->semaphore_address, 0);
			cr_expect_eq(p->semaphore_offset, 0);
		} else {
			/* the 2 semaphore bytes lie in .probes, in the file and in memory */
			cr_expect_geq(p->semaphore_offset, probes->sh_offset);
			cr_expect_leq(p->semaphore_offset + 2, probes->sh_offset + probes->sh_size);
			cr_expect_eq(p->semaphore_offset - probes->sh_offset,
				     p->semaphore_address - probes->sh_addr);
			cr_expect_eq(r.buf[p->semaphore_offset], 0);
			cr_expect_eq(r.buf[p->semaphore_offset + 1], 0);
			/* this build maps .probes at a different address than its offset,
			 * so a wrong conversion would show */
			cr_expect_neq(p->semaphore_offset, p->semaphore_address);
		}
		cr_expect_eq(usdt_probe_site_check(fd, path, p, err, sizeof(err)), 0, "%s", err);
	}

	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(notes.ino, st.st_ino);
	cr_expect_eq(notes.dev, st.st_dev);
	cr_expect_eq(usdt_notes_unchanged(fd, path, &notes, err, sizeof(err)), 0, "%s", err);
	usdt_notes_free(&notes);
	cr_expect_eq(notes.count, 0);
	free(r.buf);
	close(fd);
}

Test(usdt_notes, matches_readelf_and_headers_pie)
{
	check_matches_readelf_and_headers(USDT_TRACEE, true);
}

Test(usdt_notes, matches_readelf_and_headers_non_pie)
{
	check_matches_readelf_and_headers(USDT_TRACEE_EXEC, false);
}

Test(usdt_notes, find_probe_sites)
{
	int fd = open_ro(USDT_TRACEE);
	struct usdt_notes notes;
	char err[512] = "";
	cr_assert_eq(usdt_notes_read(fd, USDT_TRACEE, &notes, err, sizeof(err)), 0, "%s", err);
	const struct usdt_probe *a = usdt_notes_find(&notes, "test", "hit", NULL);
	cr_assert(a);
	const struct usdt_probe *b = usdt_notes_find(&notes, "test", "hit", a);
	cr_assert(b);
	cr_expect_neq(a->file_offset, b->file_offset);
	cr_expect_eq(a->semaphore_offset, b->semaphore_offset);
	cr_expect_null(usdt_notes_find(&notes, "test", "hit", b));
	cr_expect_null(usdt_notes_find(&notes, "net", "inbound_message", NULL));
	const struct usdt_probe *args = usdt_notes_find(&notes, "test", "args", NULL);
	cr_assert(args);
	/* gcc -O2 gives "-8@%rax 4@%edx 1@%dil -8@(%rsi) -4@8(%rsi) -4@$5 -4@$-9";
	 * other flags (sanitizers) pick other registers: only the constants are
	 * fixed. The kernel test checks the values whatever the forms. */
	cr_log_info("test:args: %s", args->args);
	cr_expect_eq(strncmp(args->args + strlen(args->args) - 12, "-4@$5 -4@$-9", 12), 0, "%s",
		     args->args);
	usdt_notes_free(&notes);
	close(fd);
}

Test(usdt_notes, no_notes_message)
{
	int fd = open_ro(USDT_NO_NOTES);
	struct usdt_notes notes;
	char err[512] = "";
	cr_expect_eq(usdt_notes_read(fd, "/opt/bitcoin/bin/bitcoind", &notes, err, sizeof(err)),
		     -ENOENT);
	cr_expect_str_eq(err,
			 "/opt/bitcoin/bin/bitcoind: no USDT notes (is bitcoind built with "
			 "-DWITH_USDT=ON?)");
	cr_expect_eq(notes.count, 0);
	cr_expect_null(notes.probes);
	close(fd);
}

Test(usdt_notes, non_elf_refused)
{
	char path[] = "/tmp/usdt-notes-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char text[] = "#!/bin/sh\necho this is not an ELF file\n";
	cr_assert_eq(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	struct usdt_notes notes;
	char err[512] = "";
	cr_expect_eq(usdt_notes_read(fd, path, &notes, err, sizeof(err)), -ENOEXEC);
	char expected[600];
	snprintf(expected, sizeof(expected), "%s: not an ELF file", path);
	cr_expect_str_eq(err, expected);
	close(fd);
	unlink(path);

	/* empty file */
	fd = open_ro("/dev/null");
	cr_expect_eq(usdt_notes_read(fd, "/dev/null", &notes, err, sizeof(err)), -ENOEXEC);
	cr_expect_str_eq(err, "/dev/null: not a regular file");
	close(fd);

	/* a directory */
	fd = open("/", O_RDONLY | O_DIRECTORY);
	cr_expect_eq(usdt_notes_read(fd, "/", &notes, err, sizeof(err)), -ENOEXEC);
	cr_expect_str_eq(err, "/: not a regular file");
	close(fd);

	/* a bad fd */
	cr_expect_eq(usdt_notes_read(-1, "x", &notes, err, sizeof(err)), -EBADF);
	cr_expect_str_eq(err, "x: fstat: Bad file descriptor");
}

Test(usdt_notes, site_check_refuses_a_byte_that_is_not_nop)
{
	char dir[] = "/tmp/usdt-notes-XXXXXX";
	const char *path = copy_tracee(dir);
	int fd = open_ro(path);
	struct usdt_notes notes;
	char err[512] = "";
	cr_assert_eq(usdt_notes_read(fd, path, &notes, err, sizeof(err)), 0, "%s", err);
	const struct usdt_probe *args = usdt_notes_find(&notes, "test", "args", NULL);
	cr_assert(args);
	cr_expect_eq(usdt_probe_site_check(fd, path, args, err, sizeof(err)), 0, "%s", err);

	unsigned char int3 = 0xcc;
	patch(path, args->file_offset, &int3, 1);
	cr_expect_eq(usdt_probe_site_check(fd, path, args, err, sizeof(err)), -EINVAL);
	char expected[1024];
	snprintf(expected, sizeof(expected),
		 "%s: probe test:args: the byte at file offset 0x%llx is 0xcc, not the nop (0x90) "
		 "that sys/sdt.h places at a probe site; refusing to put a uprobe there (was the "
		 "file modified in place?)",
		 path, (unsigned long long)args->file_offset);
	cr_expect_str_eq(err, expected);
	/* the other probes are untouched */
	const struct usdt_probe *hit = usdt_notes_find(&notes, "test", "hit", NULL);
	cr_expect_eq(usdt_probe_site_check(fd, path, hit, err, sizeof(err)), 0, "%s", err);
	/* and the file changed under the notes */
	cr_expect_eq(usdt_notes_unchanged(fd, path, &notes, err, sizeof(err)), -ESTALE);
	cr_expect(strstr(err, "changed after its USDT notes were read"), "%s", err);

	/* a semaphore that is not zero in the file */
	unsigned char one = 1;
	patch(path, hit->semaphore_offset, &one, 1);
	cr_expect_eq(usdt_probe_site_check(fd, path, hit, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "probe test:hit: the semaphore at file offset") &&
			  strstr(err, "holds 0x0001"),
		  "%s", err);

	/* an offset beyond the end of the file */
	struct usdt_probe far = *hit;
	far.file_offset = 1ull << 40;
	cr_expect_eq(usdt_probe_site_check(fd, path, &far, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "beyond the end of the file"), "%s", err);

	usdt_notes_free(&notes);
	close(fd);
	cleanup_dir(dir);
}

Test(usdt_notes, stapsdt_base_adjustment)
{
	/* Pretend prelink moved the binary by 2 bytes: .stapsdt.base's sh_addr
	 * grows by 2, the notes keep the link-time base; every address (probe
	 * and semaphore) then moves by 2 as well. */
	char dir[] = "/tmp/usdt-notes-XXXXXX";
	const char *path = copy_tracee(dir);
	int fd = open_ro(path);
	struct usdt_notes before;
	char err[512] = "";
	cr_assert_eq(usdt_notes_read(fd, path, &before, err, sizeof(err)), 0, "%s", err);

	struct raw_elf r = raw_load(path);
	const Elf64_Shdr *base = raw_section(&r, ".stapsdt.base");
	cr_assert(base);
	uint64_t moved = base->sh_addr + 2;
	patch(path, (uint64_t)((const unsigned char *)&base->sh_addr - r.buf), &moved, sizeof(moved));
	free(r.buf);

	struct usdt_notes after;
	cr_assert_eq(usdt_notes_read(fd, path, &after, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(after.count, before.count);
	for (size_t i = 0; i < after.count; i++) {
		cr_expect_eq(after.probes[i].base_address, before.probes[i].base_address);
		cr_expect_eq(after.probes[i].address, before.probes[i].address + 2);
		cr_expect_eq(after.probes[i].file_offset, before.probes[i].file_offset + 2);
		if (before.probes[i].semaphore_address) {
			cr_expect_eq(after.probes[i].semaphore_address,
				     before.probes[i].semaphore_address + 2);
			cr_expect_eq(after.probes[i].semaphore_offset,
				     before.probes[i].semaphore_offset + 2);
		} else {
			cr_expect_eq(after.probes[i].semaphore_address, 0);
		}
	}
	usdt_notes_free(&before);
	usdt_notes_free(&after);
	close(fd);
	cleanup_dir(dir);
}

Test(usdt_notes, malformed_note_refused)
{
	/* Cut the provider string's NUL and everything after it out of the
	 * first note's descriptor by overwriting them with 'x'. */
	char dir[] = "/tmp/usdt-notes-XXXXXX";
	const char *path = copy_tracee(dir);
	struct raw_elf r = raw_load(path);
	const Elf64_Shdr *ns = raw_section(&r, ".note.stapsdt");
	cr_assert(ns);
	const Elf64_Nhdr *nh = (const Elf64_Nhdr *)(r.buf + ns->sh_offset);
	uint64_t desc = ns->sh_offset + sizeof(*nh) + ((nh->n_namesz + 3) & ~3u);
	size_t strings = nh->n_descsz - 24;
	char *xs = malloc(strings);
	memset(xs, 'x', strings);
	patch(path, desc + 24, xs, strings);
	free(xs);
	free(r.buf);

	int fd = open_ro(path);
	struct usdt_notes notes;
	char err[512] = "";
	cr_expect_eq(usdt_notes_read(fd, path, &notes, err, sizeof(err)), -EINVAL);
	char expected[700];
	snprintf(expected, sizeof(expected),
		 "%s: malformed USDT note #0 in .note.stapsdt: provider string is not "
		 "NUL-terminated",
		 path);
	cr_expect_str_eq(err, expected);
	cr_expect_eq(notes.count, 0);
	close(fd);
	cleanup_dir(dir);
}
