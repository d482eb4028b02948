/* The slow paths of mp_write.h. */
#include "mp_write.h"

#include <stdlib.h>

#define MP_MIN_ALLOC 4096

bool mp_grow(struct mp_buf *b, size_t need)
{
	if (b->failed)
		return false;
	if (b->alloc >= need)
		return true;
	/* double, so that a map built piece by piece grows in few steps; a
	 * caller that knows the final size (a P2P payload) asks for it at once */
	size_t alloc = b->alloc > MP_MIN_ALLOC / 2 ? b->alloc * 2 : MP_MIN_ALLOC;
	if (alloc < need)
		alloc = need;
	char *p = realloc(b->data, alloc);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->alloc = alloc;
	return true;
}

void mp_free(struct mp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->size = b->alloc = 0;
	b->failed = false;
}
