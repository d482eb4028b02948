/* A probe without a semaphore (no _SDT_HAS_SEMAPHORES in this file). */
#include <sys/sdt.h>

long fire_nosem(long i);

__attribute__((noinline)) long fire_nosem(long i)
{
	STAP_PROBE1(test, nosem, 7 * i);
	return 1;
}
