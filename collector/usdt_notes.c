/* .note.stapsdt reader. Format (SystemTap's UserSpaceProbeImplementation,
 * and libbpf's src/usdt.c for the same facts): each note in the SHT_NOTE
 * section ".note.stapsdt" has name "stapsdt", type 3, and a descriptor of
 * three target-word addresses (probe location, link-time address of the
 * .stapsdt.base section, semaphore or 0) followed by three NUL-terminated
 * strings: provider, name, argument specs. */
#include "usdt_notes.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAPSDT_NOTE_SECTION ".note.stapsdt"
#define STAPSDT_BASE_SECTION ".stapsdt.base"
#define STAPSDT_NOTE_NAME "stapsdt"
#define STAPSDT_NOTE_TYPE 3
#define X86_NOP 0x90

struct load_seg {
	uint64_t vaddr, filesz, offset;
	uint32_t flags;
};

/* Everything read from the ELF headers, owned by one usdt_notes_read call. */
struct elf_layout {
	Elf *elf;
	struct load_seg *segs;
	size_t seg_count;
	size_t shstrndx;
	Elf_Scn *notes_scn;
	bool have_base;
	uint64_t base_addr;
};

static int read_layout(int fd, const char *path, struct elf_layout *l, char *err, size_t errlen)
{
	if (elf_version(EV_CURRENT) == EV_NONE) {
		snprintf(err, errlen, "%s: libelf initialisation failed: %s", path, elf_errmsg(-1));
		return -EINVAL;
	}
	l->elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!l->elf) {
		snprintf(err, errlen, "%s: libelf cannot read the file: %s", path, elf_errmsg(-1));
		return -EIO;
	}
	if (elf_kind(l->elf) != ELF_K_ELF) {
		snprintf(err, errlen, "%s: not an ELF file", path);
		return -ENOEXEC;
	}
	GElf_Ehdr eh;
	if (!gelf_getehdr(l->elf, &eh)) {
		snprintf(err, errlen, "%s: bad ELF header: %s", path, elf_errmsg(-1));
		return -ENOEXEC;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64) {
		snprintf(err, errlen,
			 "%s: not an x86-64 ELF64 file (class %u, data %u, machine %u); the "
			 "extractor reads x86-64 USDT probes only",
			 path, eh.e_ident[EI_CLASS], eh.e_ident[EI_DATA], eh.e_machine);
		return -ENOEXEC;
	}
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
		snprintf(err, errlen, "%s: ELF type %u is not an executable or shared object", path,
			 eh.e_type);
		return -ENOEXEC;
	}

	size_t nph;
	if (elf_getphdrnum(l->elf, &nph) != 0) {
		snprintf(err, errlen, "%s: cannot read the program headers: %s", path, elf_errmsg(-1));
		return -EINVAL;
	}
	l->segs = calloc(nph ? nph : 1, sizeof(*l->segs));
	if (!l->segs) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(l->elf, (int)i, &ph)) {
			snprintf(err, errlen, "%s: cannot read program header %zu: %s", path, i,
				 elf_errmsg(-1));
			return -EINVAL;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		l->segs[l->seg_count++] = (struct load_seg){ .vaddr = ph.p_vaddr,
							     .filesz = ph.p_filesz,
							     .offset = ph.p_offset,
							     .flags = ph.p_flags };
	}

	if (elf_getshdrstrndx(l->elf, &l->shstrndx) != 0) {
		snprintf(err, errlen, "%s: cannot read the section name table: %s", path,
			 elf_errmsg(-1));
		return -EINVAL;
	}
	for (Elf_Scn *scn = elf_nextscn(l->elf, NULL); scn; scn = elf_nextscn(l->elf, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *name = elf_strptr(l->elf, l->shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (strcmp(name, STAPSDT_NOTE_SECTION) == 0 && sh.sh_type == SHT_NOTE && !l->notes_scn)
			l->notes_scn = scn;
		else if (strcmp(name, STAPSDT_BASE_SECTION) == 0) {
			l->have_base = true;
			l->base_addr = sh.sh_addr;
		}
	}
	return 0;
}

static const struct load_seg *find_seg(const struct elf_layout *l, uint64_t addr, uint64_t len)
{
	for (size_t i = 0; i < l->seg_count; i++) {
		const struct load_seg *s = &l->segs[i];
		if (addr >= s->vaddr && addr - s->vaddr <= s->filesz && s->filesz - (addr - s->vaddr) >= len)
			return s;
	}
	return NULL;
}

/* Semaphore address -> file offset through the section that holds it. */
static int semaphore_offset(const struct elf_layout *l, const char *path, const char *probe,
			    uint64_t addr, uint64_t *off, char *err, size_t errlen)
{
	for (Elf_Scn *scn = elf_nextscn(l->elf, NULL); scn; scn = elf_nextscn(l->elf, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (addr < sh.sh_addr || addr - sh.sh_addr >= sh.sh_size || sh.sh_size - (addr - sh.sh_addr) < 2)
			continue;
		const char *name = elf_strptr(l->elf, l->shstrndx, sh.sh_name);
		if (!name)
			name = "?";
		if (sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_WRITE)) {
			snprintf(err, errlen,
				 "%s: probe %s: semaphore at 0x%llx is in section %s, which is %s; a "
				 "uprobe semaphore must be in a writable section stored in the file "
				 "(sys/sdt.h uses .probes)",
				 path, probe, (unsigned long long)addr, name,
				 sh.sh_type == SHT_NOBITS ? "not stored in the file" : "not writable");
			return -EINVAL;
		}
		uint64_t o = addr - sh.sh_addr + sh.sh_offset;
		/* The kernel finds the semaphore through the writable mapping of
		 * that file offset: the PT_LOAD segment must agree. */
		const struct load_seg *seg = find_seg(l, addr, 2);
		if (!seg || !(seg->flags & PF_W) || addr - seg->vaddr + seg->offset != o) {
			snprintf(err, errlen,
				 "%s: probe %s: semaphore at 0x%llx (section %s, file offset 0x%llx) "
				 "is not mapped at that offset by a writable PT_LOAD segment",
				 path, probe, (unsigned long long)addr, name, (unsigned long long)o);
			return -EINVAL;
		}
		*off = o;
		return 0;
	}
	snprintf(err, errlen, "%s: probe %s: semaphore address 0x%llx lies in no allocated section",
		 path, probe, (unsigned long long)addr);
	return -EINVAL;
}

static int add_probe(struct usdt_notes *out, size_t *cap, const struct usdt_probe *p)
{
	if (out->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 32;
		struct usdt_probe *np = realloc(out->probes, ncap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		out->probes = np;
		*cap = ncap;
	}
	out->probes[out->count++] = *p;
	return 0;
}

static void probe_free(struct usdt_probe *p)
{
	free(p->provider);
	free(p->name);
	free(p->args);
}

/* Parses one note descriptor; fills p (strings allocated). */
static int parse_note(const char *path, size_t index, const unsigned char *desc, size_t len,
		      struct usdt_probe *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	uint64_t addrs[3];
	if (len < sizeof(addrs) + 3) {
		snprintf(err, errlen,
			 "%s: malformed USDT note #%zu in " STAPSDT_NOTE_SECTION
			 ": descriptor of %zu bytes is too short",
			 path, index, len);
		return -EINVAL;
	}
	memcpy(addrs, desc, sizeof(addrs));
	const char *s = (const char *)desc + sizeof(addrs);
	const char *end = (const char *)desc + len;
	const char *field[3];
	const char *what[3] = { "provider", "name", "argument" };
	for (int i = 0; i < 3; i++) {
		const char *nul = memchr(s, '\0', (size_t)(end - s));
		if (!nul) {
			snprintf(err, errlen,
				 "%s: malformed USDT note #%zu in " STAPSDT_NOTE_SECTION
				 ": %s string is not NUL-terminated",
				 path, index, what[i]);
			return -EINVAL;
		}
		field[i] = s;
		s = nul + 1;
		if (i < 2 && field[i][0] == '\0') {
			snprintf(err, errlen,
				 "%s: malformed USDT note #%zu in " STAPSDT_NOTE_SECTION ": empty %s",
				 path, index, what[i]);
			return -EINVAL;
		}
	}
	p->provider = strdup(field[0]);
	p->name = strdup(field[1]);
	p->args = strdup(field[2]);
	if (!p->provider || !p->name || !p->args) {
		probe_free(p);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	p->address = addrs[0];
	p->base_address = addrs[1];
	p->semaphore_address = addrs[2];
	return 0;
}

int usdt_notes_read(int fd, const char *path, struct usdt_notes *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: fstat: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		return -ENOEXEC;
	}

	struct elf_layout l = { 0 };
	struct usdt_notes notes = { .dev = st.st_dev, .ino = st.st_ino, .size = st.st_size,
				    .mtime = st.st_mtim };
	size_t cap = 0;
	int rc = read_layout(fd, path, &l, err, errlen);
	if (rc)
		goto out;

	Elf_Data *data = l.notes_scn ? elf_getdata(l.notes_scn, NULL) : NULL;
	if (l.notes_scn && !data && elf_errno() != 0) {
		snprintf(err, errlen, "%s: cannot read " STAPSDT_NOTE_SECTION ": %s", path,
			 elf_errmsg(-1));
		rc = -EINVAL;
		goto out;
	}
	size_t off = 0;
	size_t index = 0;
	while (data && off < data->d_size) {
		GElf_Nhdr nh;
		size_t name_off, desc_off;
		size_t next = gelf_getnote(data, off, &nh, &name_off, &desc_off);
		if (next == 0) {
			snprintf(err, errlen,
				 "%s: malformed USDT note #%zu in " STAPSDT_NOTE_SECTION
				 " (at byte %zu of %zu)",
				 path, index, off, (size_t)data->d_size);
			rc = -EINVAL;
			goto out;
		}
		const char *nm = (const char *)data->d_buf + name_off;
		if (nh.n_type != STAPSDT_NOTE_TYPE || nh.n_namesz != sizeof(STAPSDT_NOTE_NAME) ||
		    memcmp(nm, STAPSDT_NOTE_NAME, sizeof(STAPSDT_NOTE_NAME)) != 0) {
			snprintf(err, errlen,
				 "%s: malformed USDT note #%zu in " STAPSDT_NOTE_SECTION
				 ": name/type is not \"" STAPSDT_NOTE_NAME "\"/%d",
				 path, index, STAPSDT_NOTE_TYPE);
			rc = -EINVAL;
			goto out;
		}
		struct usdt_probe p;
		rc = parse_note(path, index, (const unsigned char *)data->d_buf + desc_off, nh.n_descsz,
				&p, err, errlen);
		if (rc)
			goto out;
		char probe[256];
		snprintf(probe, sizeof(probe), "%s:%s", p.provider, p.name);

		/* prelink adjustment (.stapsdt.base) */
		if (l.have_base && l.base_addr && p.base_address) {
			uint64_t delta = l.base_addr - p.base_address;
			p.address += delta;
			if (p.semaphore_address)
				p.semaphore_address += delta;
		}
		const struct load_seg *seg = find_seg(&l, p.address, 1);
		if (!seg || !(seg->flags & PF_X)) {
			snprintf(err, errlen,
				 "%s: probe %s: location 0x%llx lies in no executable PT_LOAD segment",
				 path, probe, (unsigned long long)p.address);
			probe_free(&p);
			rc = -EINVAL;
			goto out;
		}
		p.file_offset = p.address - seg->vaddr + seg->offset;
		if (p.semaphore_address) {
			rc = semaphore_offset(&l, path, probe, p.semaphore_address,
					      &p.semaphore_offset, err, errlen);
			if (rc) {
				probe_free(&p);
				goto out;
			}
		}
		if (add_probe(&notes, &cap, &p)) {
			probe_free(&p);
			snprintf(err, errlen, "%s: out of memory", path);
			rc = -ENOMEM;
			goto out;
		}
		off = next;
		index++;
	}
	if (notes.count == 0) {
		snprintf(err, errlen, "%s: no USDT notes (is bitcoind built with -DWITH_USDT=ON?)", path);
		rc = -ENOENT;
		goto out;
	}
	*out = notes;
	notes = (struct usdt_notes){ 0 };
	rc = 0;
out:
	usdt_notes_free(&notes);
	free(l.segs);
	if (l.elf)
		elf_end(l.elf);
	return rc;
}

void usdt_notes_free(struct usdt_notes *notes)
{
	if (!notes)
		return;
	for (size_t i = 0; i < notes->count; i++)
		probe_free(&notes->probes[i]);
	free(notes->probes);
	notes->probes = NULL;
	notes->count = 0;
}

const struct usdt_probe *usdt_notes_find(const struct usdt_notes *notes, const char *provider,
					 const char *name, const struct usdt_probe *after)
{
	size_t i = after ? (size_t)(after - notes->probes) + 1 : 0;
	for (; i < notes->count; i++)
		if (strcmp(notes->probes[i].provider, provider) == 0 &&
		    strcmp(notes->probes[i].name, name) == 0)
			return &notes->probes[i];
	return NULL;
}

/* pread exactly len bytes; 0, or a negative errno with a message. */
static int read_exact(int fd, const char *path, const char *what, uint64_t off, void *buf,
		      size_t len, char *err, size_t errlen)
{
	if (off > (uint64_t)INT64_MAX) {
		snprintf(err, errlen, "%s: %s: file offset 0x%llx is out of range", path, what,
			 (unsigned long long)off);
		return -EINVAL;
	}
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			snprintf(err, errlen, "%s: %s: reading %zu bytes at file offset 0x%llx: %s",
				 path, what, len, (unsigned long long)off, strerror(e));
			return -e;
		}
		if (n == 0) {
			snprintf(err, errlen,
				 "%s: %s: file offset 0x%llx is beyond the end of the file (was the "
				 "file truncated?)",
				 path, what, (unsigned long long)off);
			return -EINVAL;
		}
		done += (size_t)n;
	}
	return 0;
}

int usdt_probe_site_check(int fd, const char *path, const struct usdt_probe *p, char *err,
			  size_t errlen)
{
	char what[300];
	snprintf(what, sizeof(what), "probe %s:%s", p->provider, p->name);
	unsigned char byte;
	int rc = read_exact(fd, path, what, p->file_offset, &byte, 1, err, errlen);
	if (rc)
		return rc;
	if (byte != X86_NOP) {
		snprintf(err, errlen,
			 "%s: %s: the byte at file offset 0x%llx is 0x%02x, not the nop (0x90) that "
			 "sys/sdt.h places at a probe site; refusing to put a uprobe there (was the "
			 "file modified in place?)",
			 path, what, (unsigned long long)p->file_offset, byte);
		return -EINVAL;
	}
	if (p->semaphore_address) {
		unsigned char sem[2];
		rc = read_exact(fd, path, what, p->semaphore_offset, sem, 2, err, errlen);
		if (rc)
			return rc;
		if (sem[0] || sem[1]) {
			snprintf(err, errlen,
				 "%s: %s: the semaphore at file offset 0x%llx holds 0x%02x%02x in the "
				 "file, not 0; refusing to let the kernel count there (was the file "
				 "modified in place?)",
				 path, what, (unsigned long long)p->semaphore_offset, sem[1], sem[0]);
			return -EINVAL;
		}
	}
	return 0;
}

int usdt_notes_unchanged(int fd, const char *path, const struct usdt_notes *notes, char *err,
			 size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: fstat: %s", path, strerror(e));
		return -e;
	}
	if (st.st_dev != notes->dev || st.st_ino != notes->ino || st.st_size != notes->size ||
	    st.st_mtim.tv_sec != notes->mtime.tv_sec || st.st_mtim.tv_nsec != notes->mtime.tv_nsec) {
		snprintf(err, errlen,
			 "%s: the file changed after its USDT notes were read (size %lld -> %lld); "
			 "not attaching",
			 path, (long long)notes->size, (long long)st.st_size);
		return -ESTALE;
	}
	return 0;
}
