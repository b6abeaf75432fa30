/* evrs: libevent 2.1 compatible API -- portability helpers (evutil_*). */
#ifndef EVRS_EVENT2_UTIL_H
#define EVRS_EVENT2_UTIL_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Fixed-width integer names (macros, as in libevent) ---------------- */

#define ev_uint64_t uint64_t
#define ev_int64_t int64_t
#define ev_uint32_t uint32_t
#define ev_int32_t int32_t
#define ev_uint16_t uint16_t
#define ev_int16_t int16_t
#define ev_uint8_t uint8_t
#define ev_int8_t int8_t
#define ev_uintptr_t uintptr_t
#define ev_intptr_t intptr_t
#define ev_ssize_t ssize_t
/* File offsets are always 64-bit, whatever _FILE_OFFSET_BITS says. */
#define ev_off_t ev_int64_t
#define ev_socklen_t socklen_t

/* Limits of the types above. */
#define EV_UINT64_MAX UINT64_MAX
#define EV_INT64_MAX INT64_MAX
#define EV_INT64_MIN INT64_MIN
#define EV_UINT32_MAX UINT32_MAX
#define EV_INT32_MAX INT32_MAX
#define EV_INT32_MIN INT32_MIN
#define EV_UINT16_MAX UINT16_MAX
#define EV_INT16_MAX INT16_MAX
#define EV_INT16_MIN INT16_MIN
#define EV_UINT8_MAX UINT8_MAX
#define EV_INT8_MAX INT8_MAX
#define EV_INT8_MIN INT8_MIN
#define EV_SIZE_MAX EV_UINT64_MAX
#define EV_SSIZE_MAX EV_INT64_MAX
#define EV_SSIZE_MIN ((-EV_SSIZE_MAX) - 1)

/* ---- Sockets ------------------------------------------------------------ */

/* A socket handle: a plain file descriptor on POSIX systems. */
#define evutil_socket_t int
/* The value no valid socket has. */
#define EVUTIL_INVALID_SOCKET -1

/* The last socket error of this thread, and a way to set it. */
#define EVUTIL_SOCKET_ERROR() (errno)
#define EVUTIL_SET_SOCKET_ERROR(errcode) \
	do { errno = (errcode); } while (0)
/* The pending error of a given socket (errno on POSIX). */
#define evutil_socket_geterror(sock) (errno)
/* A readable string for a socket error code (needs <string.h>). */
#define evutil_socket_error_to_string(errcode) (strerror(errcode))

/* Creates a connected pair of sockets (socketpair(2), emulated elsewhere). */
EVENT2_EXPORT_SYMBOL
int evutil_socketpair(int d, int type, int protocol, evutil_socket_t sv[2]);
/* Puts a socket in non-blocking mode. */
EVENT2_EXPORT_SYMBOL
int evutil_make_socket_nonblocking(evutil_socket_t sock);
/* Lets a listening socket's address be reused right after it is closed. */
EVENT2_EXPORT_SYMBOL
int evutil_make_listen_socket_reuseable(evutil_socket_t sock);
/* Lets several sockets listen on the same port (SO_REUSEPORT). */
EVENT2_EXPORT_SYMBOL
int evutil_make_listen_socket_reuseable_port(evutil_socket_t sock);
/* Makes an AF_INET6 listening socket accept IPv6 only. */
EVENT2_EXPORT_SYMBOL
int evutil_make_listen_socket_ipv6only(evutil_socket_t sock);
/* Marks a socket close-on-exec. */
EVENT2_EXPORT_SYMBOL
int evutil_make_socket_closeonexec(evutil_socket_t sock);
/* Closes a socket. */
EVENT2_EXPORT_SYMBOL
int evutil_closesocket(evutil_socket_t sock);
#define EVUTIL_CLOSESOCKET(s) evutil_closesocket(s)
/* Defers accept() until data arrives, where the platform supports it. */
EVENT2_EXPORT_SYMBOL
int evutil_make_tcp_listen_socket_deferred(evutil_socket_t sock);

/* ---- Time --------------------------------------------------------------- */

/* struct timeval arithmetic: vvp = tvp + uvp, vvp = tvp - uvp. */
#define evutil_timeradd(tvp, uvp, vvp) \
	do { \
		(vvp)->tv_sec = (tvp)->tv_sec + (uvp)->tv_sec; \
		(vvp)->tv_usec = (tvp)->tv_usec + (uvp)->tv_usec; \
		if ((vvp)->tv_usec >= 1000000) { \
			(vvp)->tv_sec++; \
			(vvp)->tv_usec -= 1000000; \
		} \
	} while (0)
#define evutil_timersub(tvp, uvp, vvp) \
	do { \
		(vvp)->tv_sec = (tvp)->tv_sec - (uvp)->tv_sec; \
		(vvp)->tv_usec = (tvp)->tv_usec - (uvp)->tv_usec; \
		if ((vvp)->tv_usec < 0) { \
			(vvp)->tv_sec--; \
			(vvp)->tv_usec += 1000000; \
		} \
	} while (0)
/* Sets a timeval to zero / tests it for non-zero. */
#define evutil_timerclear(tvp) ((tvp)->tv_sec = (tvp)->tv_usec = 0)
#define evutil_timerisset(tvp) ((tvp)->tv_sec || (tvp)->tv_usec)
/* Compares two timevals with the relational operator cmp (<, <=, ==, ...). */
#define evutil_timercmp(tvp, uvp, cmp) \
	(((tvp)->tv_sec == (uvp)->tv_sec) \
	 ? ((tvp)->tv_usec cmp (uvp)->tv_usec) \
	 : ((tvp)->tv_sec cmp (uvp)->tv_sec))

/* gettimeofday(2). */
#define evutil_gettimeofday(tv, tz) gettimeofday((tv), (tz))

/* Formats tm (UTC) as an RFC 1123 date into date; returns the length. */
EVENT2_EXPORT_SYMBOL
int evutil_date_rfc1123(char *date, const size_t datelen, const struct tm *tm);

/* A monotonic clock usable outside any event_base. */
struct evutil_monotonic_timer;

/* Flags for evutil_configure_monotonic_time(). */
#define EV_MONOT_PRECISE 1
#define EV_MONOT_FALLBACK 2

/* Allocates a monotonic timer. */
EVENT2_EXPORT_SYMBOL
struct evutil_monotonic_timer *evutil_monotonic_timer_new(void);
/* Frees a monotonic timer. */
EVENT2_EXPORT_SYMBOL
void evutil_monotonic_timer_free(struct evutil_monotonic_timer *timer);
/* Chooses the clock of a monotonic timer from EV_MONOT_* flags. */
EVENT2_EXPORT_SYMBOL
int evutil_configure_monotonic_time(struct evutil_monotonic_timer *timer,
    int flags);
/* Reads a monotonic timer into tp. */
EVENT2_EXPORT_SYMBOL
int evutil_gettime_monotonic(struct evutil_monotonic_timer *timer,
    struct timeval *tp);

/* ---- Strings and numbers ------------------------------------------------ */

/* offsetof(). */
#define evutil_offsetof(type, field) offsetof(type, field)

/* strtoll(3). */
EVENT2_EXPORT_SYMBOL
ev_int64_t evutil_strtoll(const char *s, char **endptr, int base);
/* snprintf(3) with C99 return value semantics everywhere. */
EVENT2_EXPORT_SYMBOL
int evutil_snprintf(char *buf, size_t buflen, const char *format, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 4)))
#endif
	;
/* vsnprintf(3) with C99 return value semantics everywhere. */
EVENT2_EXPORT_SYMBOL
int evutil_vsnprintf(char *buf, size_t buflen, const char *format, va_list ap)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 0)))
#endif
	;
/* Locale-independent ASCII strcasecmp / strncasecmp. */
EVENT2_EXPORT_SYMBOL
int evutil_ascii_strcasecmp(const char *str1, const char *str2);
EVENT2_EXPORT_SYMBOL
int evutil_ascii_strncasecmp(const char *str1, const char *str2, size_t n);

/* ---- Addresses ---------------------------------------------------------- */

/* inet_ntop(3). */
EVENT2_EXPORT_SYMBOL
const char *evutil_inet_ntop(int af, const void *src, char *dst, size_t len);
/* inet_pton(3) that also accepts an IPv6 "%scope" suffix (into indexp). */
EVENT2_EXPORT_SYMBOL
int evutil_inet_pton_scope(int af, const char *src, void *dst,
    unsigned *indexp);
/* inet_pton(3). */
EVENT2_EXPORT_SYMBOL
int evutil_inet_pton(int af, const char *src, void *dst);
/* Parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port" into out (*outlen in/out). */
EVENT2_EXPORT_SYMBOL
int evutil_parse_sockaddr_port(const char *str, struct sockaddr *out,
    int *outlen);
/* Orders two sockaddrs: family, address, then port unless include_port is 0. */
EVENT2_EXPORT_SYMBOL
int evutil_sockaddr_cmp(const struct sockaddr *sa1,
    const struct sockaddr *sa2, int include_port);

/* The system's struct addrinfo under libevent's name. */
#define evutil_addrinfo addrinfo

/* Error codes of evutil_getaddrinfo(): the system's where it has them. */
#ifdef EAI_ADDRFAMILY
#define EVUTIL_EAI_ADDRFAMILY EAI_ADDRFAMILY
#else
#define EVUTIL_EAI_ADDRFAMILY (-901)
#endif
#ifdef EAI_AGAIN
#define EVUTIL_EAI_AGAIN EAI_AGAIN
#else
#define EVUTIL_EAI_AGAIN (-902)
#endif
#ifdef EAI_BADFLAGS
#define EVUTIL_EAI_BADFLAGS EAI_BADFLAGS
#else
#define EVUTIL_EAI_BADFLAGS (-903)
#endif
#ifdef EAI_FAIL
#define EVUTIL_EAI_FAIL EAI_FAIL
#else
#define EVUTIL_EAI_FAIL (-904)
#endif
#ifdef EAI_FAMILY
#define EVUTIL_EAI_FAMILY EAI_FAMILY
#else
#define EVUTIL_EAI_FAMILY (-905)
#endif
#ifdef EAI_MEMORY
#define EVUTIL_EAI_MEMORY EAI_MEMORY
#else
#define EVUTIL_EAI_MEMORY (-906)
#endif
#ifdef EAI_NODATA
#define EVUTIL_EAI_NODATA EAI_NODATA
#else
#define EVUTIL_EAI_NODATA (-907)
#endif
#ifdef EAI_NONAME
#define EVUTIL_EAI_NONAME EAI_NONAME
#else
#define EVUTIL_EAI_NONAME (-908)
#endif
#ifdef EAI_SERVICE
#define EVUTIL_EAI_SERVICE EAI_SERVICE
#else
#define EVUTIL_EAI_SERVICE (-909)
#endif
#ifdef EAI_SOCKTYPE
#define EVUTIL_EAI_SOCKTYPE EAI_SOCKTYPE
#else
#define EVUTIL_EAI_SOCKTYPE (-910)
#endif
#ifdef EAI_SYSTEM
#define EVUTIL_EAI_SYSTEM EAI_SYSTEM
#else
#define EVUTIL_EAI_SYSTEM (-911)
#endif
/* A request cancelled through evdns. */
#define EVUTIL_EAI_CANCEL (-90001)

/* evutil_getaddrinfo() hint flags: the system's where it has them. */
#ifdef AI_PASSIVE
#define EVUTIL_AI_PASSIVE AI_PASSIVE
#else
#define EVUTIL_AI_PASSIVE 0x1000
#endif
#ifdef AI_CANONNAME
#define EVUTIL_AI_CANONNAME AI_CANONNAME
#else
#define EVUTIL_AI_CANONNAME 0x2000
#endif
#ifdef AI_NUMERICHOST
#define EVUTIL_AI_NUMERICHOST AI_NUMERICHOST
#else
#define EVUTIL_AI_NUMERICHOST 0x4000
#endif
#ifdef AI_NUMERICSERV
#define EVUTIL_AI_NUMERICSERV AI_NUMERICSERV
#else
#define EVUTIL_AI_NUMERICSERV 0x8000
#endif
#ifdef AI_V4MAPPED
#define EVUTIL_AI_V4MAPPED AI_V4MAPPED
#else
#define EVUTIL_AI_V4MAPPED 0x10000
#endif
#ifdef AI_ALL
#define EVUTIL_AI_ALL AI_ALL
#else
#define EVUTIL_AI_ALL 0x20000
#endif
#ifdef AI_ADDRCONFIG
#define EVUTIL_AI_ADDRCONFIG AI_ADDRCONFIG
#else
#define EVUTIL_AI_ADDRCONFIG 0x40000
#endif

struct evutil_addrinfo;
/* getaddrinfo(3) with consistent behaviour across platforms. */
EVENT2_EXPORT_SYMBOL
int evutil_getaddrinfo(const char *nodename, const char *servname,
    const struct evutil_addrinfo *hints_in, struct evutil_addrinfo **res);
/* Frees a list returned by evutil_getaddrinfo(). */
EVENT2_EXPORT_SYMBOL
void evutil_freeaddrinfo(struct evutil_addrinfo *ai);
/* Describes an EVUTIL_EAI_* error code. */
EVENT2_EXPORT_SYMBOL
const char *evutil_gai_strerror(int err);

/* ---- Random numbers ----------------------------------------------------- */

/* Fills buf with n cryptographically strong random bytes. */
EVENT2_EXPORT_SYMBOL
void evutil_secure_rng_get_bytes(void *buf, size_t n);
/* Seeds the random number generator; 0 on success. */
EVENT2_EXPORT_SYMBOL
int evutil_secure_rng_init(void);
/* Names the device to seed from instead of /dev/urandom. */
EVENT2_EXPORT_SYMBOL
int evutil_secure_rng_set_urandom_device_file(char *fname);
/* Mixes extra entropy into the generator. */
EVENT2_EXPORT_SYMBOL
void evutil_secure_rng_add_bytes(const char *dat, size_t datlen);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_UTIL_H */
