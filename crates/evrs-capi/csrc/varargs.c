/* evrs C ABI: the one thing stable Rust cannot do with a va_list is copy it, and formatting
 * into a buffer of the right size needs two passes. This helper does both; the Rust side
 * receives a va_list as an opaque pointer and hands it here. Internal: not exported. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Formats into a malloc'ed, NUL-terminated string; *len gets its length. NULL on failure
 * (bad format or no memory). The caller frees it with free(). */
char *evrs_c_vformat(const char *fmt, va_list ap, size_t *len)
{
    va_list copy;
    char small[256];
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, fmt, copy);
    va_end(copy);
    if (n < 0)
        return NULL;
    char *out = malloc((size_t)n + 1);
    if (!out)
        return NULL;
    if ((size_t)n < sizeof small) {
        for (int i = 0; i <= n; i++)
            out[i] = small[i];
    } else if (vsnprintf(out, (size_t)n + 1, fmt, ap) != n) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}
