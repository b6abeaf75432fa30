/* evrs C ABI: libevent's variadic functions. Stable Rust cannot define a C-variadic
 * function, so each lives here, in every SONAME library, and forwards its arguments as a
 * va_list to the implementation's va_list function. They hold no state, so a copy per
 * library changes nothing. build-libs.sh defines HAVE_<target> for each target the
 * implementation exports. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

struct evbuffer;

#ifdef HAVE_evbuffer_add_vprintf
int evbuffer_add_vprintf(struct evbuffer *buf, const char *fmt, va_list ap);
int evbuffer_add_printf(struct evbuffer *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = evbuffer_add_vprintf(buf, fmt, ap);
    va_end(ap);
    return r;
}
#endif

#ifdef HAVE_evutil_vsnprintf
int evutil_vsnprintf(char *buf, size_t buflen, const char *fmt, va_list ap);
int evutil_snprintf(char *buf, size_t buflen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = evutil_vsnprintf(buf, buflen, fmt, ap);
    va_end(ap);
    return r;
}
#endif

#ifdef HAVE_event_logv_
void event_logv_(int severity, const char *errstr, const char *fmt, va_list ap);
/* The implementation's fatal path (callback, then exit). libevent has no such symbol, so
 * no forwarder exists: call the implementation's export directly. */
__attribute__((noreturn)) void evrs_event_exit_(int code);

#define LOGV(sev, errstr) do { va_list ap; va_start(ap, fmt); \
    event_logv_((sev), (errstr), fmt, ap); va_end(ap); } while (0)

void event_warn(const char *fmt, ...) { LOGV(2, strerror(errno)); }
void event_warnx(const char *fmt, ...) { LOGV(2, NULL); }
void event_msgx(const char *fmt, ...) { LOGV(1, NULL); }
void event_debugx_(const char *fmt, ...) { LOGV(0, NULL); }
void event_sock_warn(int sock, const char *fmt, ...) { (void)sock; LOGV(2, strerror(errno)); }
void event_err(int eval, const char *fmt, ...) { LOGV(3, strerror(errno)); evrs_event_exit_(eval); }
void event_errx(int eval, const char *fmt, ...) { LOGV(3, NULL); evrs_event_exit_(eval); }
void event_sock_err(int eval, int sock, const char *fmt, ...)
{
    (void)sock;
    LOGV(3, strerror(errno));
    evrs_event_exit_(eval);
}
#endif
