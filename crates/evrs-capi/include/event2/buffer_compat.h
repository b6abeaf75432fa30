/* evrs: libevent 2.1 compatible API -- libevent 1.x evbuffer functions. */
#ifndef EVRS_EVENT2_BUFFER_COMPAT_H
#define EVRS_EVENT2_BUFFER_COMPAT_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <sys/types.h>

#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

struct evbuffer;

/* Removes one line ending in any mix of CR/LF (EVBUFFER_EOL_ANY). */
EVENT2_EXPORT_SYMBOL
char *evbuffer_readline(struct evbuffer *buffer);

/* 1.x change callback: the lengths before and after the change. */
typedef void (*evbuffer_cb)(struct evbuffer *buffer, size_t old_len,
    size_t new_len, void *arg);
/* Replaces all change callbacks by cb (NULL: removes them). */
EVENT2_EXPORT_SYMBOL
int evbuffer_setcb(struct evbuffer *buffer, evbuffer_cb cb, void *cbarg);

/* Finds the first occurrence of what and returns a pointer to it, or NULL. */
EVENT2_EXPORT_SYMBOL
unsigned char *evbuffer_find(struct evbuffer *buffer,
    const unsigned char *what, size_t len);

/* 1.x accessors: the length, and all the data made contiguous. */
#define EVBUFFER_LENGTH(x) evbuffer_get_length(x)
#define EVBUFFER_DATA(x) evbuffer_pullup((x), -1)

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_BUFFER_COMPAT_H */
