/* evrs: libevent 2.1 compatible API -- byte buffers (struct evbuffer). */
#ifndef EVRS_EVENT2_BUFFER_H
#define EVRS_EVENT2_BUFFER_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <stdarg.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
/* A queue of bytes, stored as a chain of memory blocks (opaque). */
struct evbuffer;

/*
 * A position inside an evbuffer.  Only pos (the offset from the start) is
 * meaningful to callers; internal_ belongs to the library.  It becomes
 * invalid when the buffer is changed.
 */
struct evbuffer_ptr {
	ev_ssize_t pos;
	struct {
		void *chain;
		size_t pos_in_chain;
	} internal_;
};

/* A memory extent for scatter/gather calls: the system's struct iovec. */
#define evbuffer_iovec iovec
/* Marks evbuffer_iovec as the native struct iovec. */
#define EVBUFFER_IOVEC_IS_NATIVE_

/* ---- Creation and locking ----------------------------------------------- */

/* Allocates an empty buffer. */
EVENT2_EXPORT_SYMBOL
struct evbuffer *evbuffer_new(void);
/* Frees a buffer and its contents. */
EVENT2_EXPORT_SYMBOL
void evbuffer_free(struct evbuffer *buf);
/* Makes the buffer thread-safe, with lock (NULL: a new recursive lock). */
EVENT2_EXPORT_SYMBOL
int evbuffer_enable_locking(struct evbuffer *buf, void *lock);
/* Acquires / releases the buffer's lock (no-op if it has none). */
EVENT2_EXPORT_SYMBOL
void evbuffer_lock(struct evbuffer *buf);
EVENT2_EXPORT_SYMBOL
void evbuffer_unlock(struct evbuffer *buf);

/* Promise: data leaves only by fd writes or draining (enables sendfile). */
#define EVBUFFER_FLAG_DRAINS_TO_FD 1

/* Sets / clears EVBUFFER_FLAG_* bits. */
EVENT2_EXPORT_SYMBOL
int evbuffer_set_flags(struct evbuffer *buf, ev_uint64_t flags);
EVENT2_EXPORT_SYMBOL
int evbuffer_clear_flags(struct evbuffer *buf, ev_uint64_t flags);

/* ---- Size and space ----------------------------------------------------- */

/* Number of bytes stored. */
EVENT2_EXPORT_SYMBOL
size_t evbuffer_get_length(const struct evbuffer *buf);
/* Number of bytes stored contiguously in the first block. */
EVENT2_EXPORT_SYMBOL
size_t evbuffer_get_contiguous_space(const struct evbuffer *buf);
/* Makes room for datlen more bytes without further allocation. */
EVENT2_EXPORT_SYMBOL
int evbuffer_expand(struct evbuffer *buf, size_t datlen);
/* Exposes at least size bytes of writable space in up to n_vec extents. */
EVENT2_EXPORT_SYMBOL
int evbuffer_reserve_space(struct evbuffer *buf, ev_ssize_t size,
    struct evbuffer_iovec *vec, int n_vec);
/* Adds the bytes written into space obtained from evbuffer_reserve_space(). */
EVENT2_EXPORT_SYMBOL
int evbuffer_commit_space(struct evbuffer *buf,
    struct evbuffer_iovec *vec, int n_vecs);

/* ---- Adding and removing data ------------------------------------------- */

/* Appends a copy of datlen bytes. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add(struct evbuffer *buf, const void *data, size_t datlen);
/* Moves up to datlen bytes from the front into data; returns the count. */
EVENT2_EXPORT_SYMBOL
int evbuffer_remove(struct evbuffer *buf, void *data, size_t datlen);
/* Copies up to datlen bytes from the front without removing them. */
EVENT2_EXPORT_SYMBOL
ev_ssize_t evbuffer_copyout(struct evbuffer *buf, void *data_out,
    size_t datlen);
/* Like evbuffer_copyout(), starting at pos. */
EVENT2_EXPORT_SYMBOL
ev_ssize_t evbuffer_copyout_from(struct evbuffer *buf,
    const struct evbuffer_ptr *pos, void *data_out, size_t datlen);
/* Moves up to datlen bytes from src to the end of dst. */
EVENT2_EXPORT_SYMBOL
int evbuffer_remove_buffer(struct evbuffer *src, struct evbuffer *dst,
    size_t datlen);

/* Line endings understood by evbuffer_readln() and evbuffer_search_eol(). */
enum evbuffer_eol_style {
	EVBUFFER_EOL_ANY,         /* any run of CR and LF characters */
	EVBUFFER_EOL_CRLF,        /* LF, optionally preceded by CR */
	EVBUFFER_EOL_CRLF_STRICT, /* exactly CR LF */
	EVBUFFER_EOL_LF,          /* exactly LF */
	EVBUFFER_EOL_NUL          /* a NUL byte */
};

/* Removes one line and returns it malloc'd, without its end of line. */
EVENT2_EXPORT_SYMBOL
char *evbuffer_readln(struct evbuffer *buffer, size_t *n_read_out,
    enum evbuffer_eol_style eol_style);
/* Moves all of inbuf to the end of outbuf. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_buffer(struct evbuffer *outbuf, struct evbuffer *inbuf);
/* Appends inbuf's data to outbuf by reference, without copying. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_buffer_reference(struct evbuffer *outbuf,
    struct evbuffer *inbuf);

/* Called when memory added by evbuffer_add_reference() is no longer used. */
typedef void (*evbuffer_ref_cleanup_cb)(const void *data,
    size_t datalen, void *extra);
/* Appends caller-owned memory without copying it. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_reference(struct evbuffer *outbuf, const void *data,
    size_t datlen, evbuffer_ref_cleanup_cb cleanupfn, void *cleanupfn_arg);
/* Appends length bytes of file fd from offset (-1: to the end); closes fd. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_file(struct evbuffer *outbuf, int fd, ev_off_t offset,
    ev_off_t length);

/* A piece of a file that can be added to buffers repeatedly (opaque). */
struct evbuffer_file_segment;

/* Options for evbuffer_file_segment_new(). */
#define EVBUF_FS_CLOSE_ON_FREE 0x01
#define EVBUF_FS_DISABLE_MMAP 0x02
#define EVBUF_FS_DISABLE_SENDFILE 0x04
#define EVBUF_FS_DISABLE_LOCKING 0x08

/* Called when a file segment is released. */
typedef void (*evbuffer_file_segment_cleanup_cb)(
    struct evbuffer_file_segment const *seg, int flags, void *arg);

/* Describes length bytes of fd from offset (-1: to the end). */
EVENT2_EXPORT_SYMBOL
struct evbuffer_file_segment *evbuffer_file_segment_new(
    int fd, ev_off_t offset, ev_off_t length, unsigned flags);
/* Drops the caller's reference to a segment. */
EVENT2_EXPORT_SYMBOL
void evbuffer_file_segment_free(struct evbuffer_file_segment *seg);
/* Sets the function called when the segment is finally released. */
EVENT2_EXPORT_SYMBOL
void evbuffer_file_segment_add_cleanup_cb(struct evbuffer_file_segment *seg,
    evbuffer_file_segment_cleanup_cb cb, void *arg);
/* Appends length bytes of a segment from offset (-1: to its end). */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_file_segment(struct evbuffer *buf,
    struct evbuffer_file_segment *seg, ev_off_t offset, ev_off_t length);

/* Appends printf-formatted text; returns its length or -1. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_printf(struct evbuffer *buf, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* Appends vprintf-formatted text; returns its length or -1. */
EVENT2_EXPORT_SYMBOL
int evbuffer_add_vprintf(struct evbuffer *buf, const char *fmt, va_list ap)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 0)))
#endif
	;

/* Discards len bytes from the front. */
EVENT2_EXPORT_SYMBOL
int evbuffer_drain(struct evbuffer *buf, size_t len);

/* ---- File descriptor I/O ------------------------------------------------ */

/* Writes as much as possible to fd and drains what was written. */
EVENT2_EXPORT_SYMBOL
int evbuffer_write(struct evbuffer *buffer, evutil_socket_t fd);
/* Like evbuffer_write(), at most howmuch bytes (-1: no limit). */
EVENT2_EXPORT_SYMBOL
int evbuffer_write_atmost(struct evbuffer *buffer, evutil_socket_t fd,
    ev_ssize_t howmuch);
/* Reads up to howmuch bytes (-1: a library-chosen amount) from fd. */
EVENT2_EXPORT_SYMBOL
int evbuffer_read(struct evbuffer *buffer, evutil_socket_t fd, int howmuch);

/* ---- Searching ---------------------------------------------------------- */

/* Finds the first occurrence of what at or after start (NULL: the front). */
EVENT2_EXPORT_SYMBOL
struct evbuffer_ptr evbuffer_search(struct evbuffer *buffer,
    const char *what, size_t len, const struct evbuffer_ptr *start);
/* Like evbuffer_search(), with the match ending no later than end. */
EVENT2_EXPORT_SYMBOL
struct evbuffer_ptr evbuffer_search_range(struct evbuffer *buffer,
    const char *what, size_t len, const struct evbuffer_ptr *start,
    const struct evbuffer_ptr *end);

/* How evbuffer_ptr_set() interprets its position argument. */
enum evbuffer_ptr_how {
	EVBUFFER_PTR_SET, /* absolute offset */
	EVBUFFER_PTR_ADD  /* advance by that many bytes */
};

/* Sets or advances ptr; -1 when that is past the end of the buffer. */
EVENT2_EXPORT_SYMBOL
int evbuffer_ptr_set(struct evbuffer *buffer, struct evbuffer_ptr *ptr,
    size_t position, enum evbuffer_ptr_how how);
/* Finds the next end of line at or after start; its length into eol_len_out. */
EVENT2_EXPORT_SYMBOL
struct evbuffer_ptr evbuffer_search_eol(struct evbuffer *buffer,
    struct evbuffer_ptr *start, size_t *eol_len_out,
    enum evbuffer_eol_style eol_style);
/* Describes up to len bytes from start_at as extents without copying. */
EVENT2_EXPORT_SYMBOL
int evbuffer_peek(struct evbuffer *buffer, ev_ssize_t len,
    struct evbuffer_ptr *start_at, struct evbuffer_iovec *vec_out,
    int n_vec);

/* ---- Change callbacks --------------------------------------------------- */

/* What changed in a buffer, for an evbuffer_cb_func. */
struct evbuffer_cb_info {
	size_t orig_size; /* length before the change */
	size_t n_added;   /* bytes added */
	size_t n_deleted; /* bytes removed */
};

/* Called after a buffer's length changed. */
typedef void (*evbuffer_cb_func)(struct evbuffer *buffer,
    const struct evbuffer_cb_info *info, void *arg);

/* A registered change callback (opaque). */
struct evbuffer_cb_entry;

/* Registers a change callback; several may be registered. */
EVENT2_EXPORT_SYMBOL
struct evbuffer_cb_entry *evbuffer_add_cb(struct evbuffer *buffer,
    evbuffer_cb_func cb, void *cbarg);
/* Removes a change callback by its entry. */
EVENT2_EXPORT_SYMBOL
int evbuffer_remove_cb_entry(struct evbuffer *buffer,
    struct evbuffer_cb_entry *ent);
/* Removes a change callback by function and argument. */
EVENT2_EXPORT_SYMBOL
int evbuffer_remove_cb(struct evbuffer *buffer, evbuffer_cb_func cb,
    void *cbarg);

/* The callback is enabled (set by default). */
#define EVBUFFER_CB_ENABLED 1

/* Sets / clears EVBUFFER_CB_* flags of a callback. */
EVENT2_EXPORT_SYMBOL
int evbuffer_cb_set_flags(struct evbuffer *buffer,
    struct evbuffer_cb_entry *cb, ev_uint32_t flags);
EVENT2_EXPORT_SYMBOL
int evbuffer_cb_clear_flags(struct evbuffer *buffer,
    struct evbuffer_cb_entry *cb, ev_uint32_t flags);

/* ---- Other -------------------------------------------------------------- */

/* Makes the first size bytes (-1: all) contiguous; returns a pointer to them. */
EVENT2_EXPORT_SYMBOL
unsigned char *evbuffer_pullup(struct evbuffer *buf, ev_ssize_t size);
/* Inserts a copy of size bytes at the front. */
EVENT2_EXPORT_SYMBOL
int evbuffer_prepend(struct evbuffer *buf, const void *data, size_t size);
/* Moves all of src to the front of dst. */
EVENT2_EXPORT_SYMBOL
int evbuffer_prepend_buffer(struct evbuffer *dst, struct evbuffer *src);
/* Forbids changes at the front (at_front) or back; unfreeze allows them. */
EVENT2_EXPORT_SYMBOL
int evbuffer_freeze(struct evbuffer *buf, int at_front);
EVENT2_EXPORT_SYMBOL
int evbuffer_unfreeze(struct evbuffer *buf, int at_front);
/* Runs the buffer's change callbacks from base's loop instead of inline. */
EVENT2_EXPORT_SYMBOL
int evbuffer_defer_callbacks(struct evbuffer *buffer,
    struct event_base *base);
/* Appends copies of n_vec extents; returns the number of bytes added. */
EVENT2_EXPORT_SYMBOL
size_t evbuffer_add_iovec(struct evbuffer *buffer,
    struct evbuffer_iovec *vec, int n_vec);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_BUFFER_H */
