/* evrs: libevent 2.1 compatible API -- buffered I/O (struct bufferevent). */
#ifndef EVRS_EVENT2_BUFFEREVENT_H
#define EVRS_EVENT2_BUFFEREVENT_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <sys/time.h>
#include <sys/types.h>

#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct evbuffer;
struct evdns_base;
struct sockaddr;

/* An fd (or a filter, or one end of a pair) with an input and an output
 * evbuffer; its public fields are in <event2/bufferevent_struct.h>. */
struct bufferevent;

/* Bits of the what argument of a bufferevent_event_cb. */
#define BEV_EVENT_READING 0x01   /* the error happened while reading */
#define BEV_EVENT_WRITING 0x02   /* the error happened while writing */
#define BEV_EVENT_EOF 0x10       /* end of file */
#define BEV_EVENT_ERROR 0x20     /* error; see EVUTIL_SOCKET_ERROR() */
#define BEV_EVENT_TIMEOUT 0x40   /* a read or write timeout expired */
#define BEV_EVENT_CONNECTED 0x80 /* a connect request finished */

/* Read/write callback: new input passed the low watermark, or output
 * drained below it. */
typedef void (*bufferevent_data_cb)(struct bufferevent *bev, void *ctx);
/* Event callback: what is a set of BEV_EVENT_* bits. */
typedef void (*bufferevent_event_cb)(struct bufferevent *bev, short what,
    void *ctx);

/* Options for creating bufferevents. */
enum bufferevent_options {
	BEV_OPT_CLOSE_ON_FREE = (1 << 0),    /* close the fd when freed */
	BEV_OPT_THREADSAFE = (1 << 1),       /* give it a lock */
	BEV_OPT_DEFER_CALLBACKS = (1 << 2),  /* run callbacks from the loop */
	BEV_OPT_UNLOCK_CALLBACKS = (1 << 3)  /* release the lock around them */
};

/* ---- Socket bufferevents ------------------------------------------------ */

/* Creates a bufferevent on a socket (-1: set it later or connect). */
EVENT2_EXPORT_SYMBOL
struct bufferevent *bufferevent_socket_new(struct event_base *base,
    evutil_socket_t fd, int options);
/* Connects (making a socket if it has none); BEV_EVENT_CONNECTED follows. */
EVENT2_EXPORT_SYMBOL
int bufferevent_socket_connect(struct bufferevent *bev,
    const struct sockaddr *addr, int socklen);
/* Resolves hostname (with evdns_base, or blocking when NULL) and connects. */
EVENT2_EXPORT_SYMBOL
int bufferevent_socket_connect_hostname(struct bufferevent *bev,
    struct evdns_base *evdns_base, int family, const char *hostname,
    int port);
/* The EVUTIL_EAI_* error of the last failed hostname lookup, or 0. */
EVENT2_EXPORT_SYMBOL
int bufferevent_socket_get_dns_error(struct bufferevent *bev);

/* ---- Common operations -------------------------------------------------- */

/* Moves a bufferevent to another base. */
EVENT2_EXPORT_SYMBOL
int bufferevent_base_set(struct event_base *base, struct bufferevent *bufev);
/* The base a bufferevent uses. */
EVENT2_EXPORT_SYMBOL
struct event_base *bufferevent_get_base(struct bufferevent *bev);
/* Sets / reads the priority of the bufferevent's events. */
EVENT2_EXPORT_SYMBOL
int bufferevent_priority_set(struct bufferevent *bufev, int pri);
EVENT2_EXPORT_SYMBOL
int bufferevent_get_priority(const struct bufferevent *bufev);
/* Releases a bufferevent (freed once no callback still uses it). */
EVENT2_EXPORT_SYMBOL
void bufferevent_free(struct bufferevent *bufev);

/* Sets the read, write and event callbacks and their argument. */
EVENT2_EXPORT_SYMBOL
void bufferevent_setcb(struct bufferevent *bufev,
    bufferevent_data_cb readcb, bufferevent_data_cb writecb,
    bufferevent_event_cb eventcb, void *cbarg);
/* Reads the callbacks back (NULL outputs are skipped). */
EVENT2_EXPORT_SYMBOL
void bufferevent_getcb(struct bufferevent *bufev,
    bufferevent_data_cb *readcb_ptr, bufferevent_data_cb *writecb_ptr,
    bufferevent_event_cb *eventcb_ptr, void **cbarg_ptr);

/* Replaces / reads the fd of a socket bufferevent. */
EVENT2_EXPORT_SYMBOL
int bufferevent_setfd(struct bufferevent *bufev, evutil_socket_t fd);
EVENT2_EXPORT_SYMBOL
evutil_socket_t bufferevent_getfd(struct bufferevent *bufev);
/* The bufferevent a filter wraps, or NULL. */
EVENT2_EXPORT_SYMBOL
struct bufferevent *bufferevent_get_underlying(struct bufferevent *bufev);

/* Queues size bytes for writing. */
EVENT2_EXPORT_SYMBOL
int bufferevent_write(struct bufferevent *bufev, const void *data,
    size_t size);
/* Queues all of buf for writing (buf is emptied). */
EVENT2_EXPORT_SYMBOL
int bufferevent_write_buffer(struct bufferevent *bufev, struct evbuffer *buf);
/* Takes up to size bytes of input; returns the count. */
EVENT2_EXPORT_SYMBOL
size_t bufferevent_read(struct bufferevent *bufev, void *data, size_t size);
/* Moves all input into buf. */
EVENT2_EXPORT_SYMBOL
int bufferevent_read_buffer(struct bufferevent *bufev, struct evbuffer *buf);
/* The input and output buffers. */
EVENT2_EXPORT_SYMBOL
struct evbuffer *bufferevent_get_input(struct bufferevent *bufev);
EVENT2_EXPORT_SYMBOL
struct evbuffer *bufferevent_get_output(struct bufferevent *bufev);

/* Enables / disables EV_READ and EV_WRITE; reads the enabled set. */
EVENT2_EXPORT_SYMBOL
int bufferevent_enable(struct bufferevent *bufev, short event);
EVENT2_EXPORT_SYMBOL
int bufferevent_disable(struct bufferevent *bufev, short event);
EVENT2_EXPORT_SYMBOL
short bufferevent_get_enabled(struct bufferevent *bufev);

/* Sets the read and write timeouts (NULL: none). */
EVENT2_EXPORT_SYMBOL
int bufferevent_set_timeouts(struct bufferevent *bufev,
    const struct timeval *timeout_read, const struct timeval *timeout_write);
/* Sets the watermarks of EV_READ and/or EV_WRITE (highmark 0: unlimited). */
EVENT2_EXPORT_SYMBOL
void bufferevent_setwatermark(struct bufferevent *bufev, short events,
    size_t lowmark, size_t highmark);
/* Reads the watermarks of exactly one of EV_READ / EV_WRITE. */
EVENT2_EXPORT_SYMBOL
int bufferevent_getwatermark(struct bufferevent *bufev, short events,
    size_t *lowmark, size_t *highmark);

/* Acquires / releases the lock of a BEV_OPT_THREADSAFE bufferevent. */
EVENT2_EXPORT_SYMBOL
void bufferevent_lock(struct bufferevent *bufev);
EVENT2_EXPORT_SYMBOL
void bufferevent_unlock(struct bufferevent *bufev);
/* Adds / drops a reference; decref returns 1 if that freed it. */
EVENT2_EXPORT_SYMBOL
void bufferevent_incref(struct bufferevent *bufev);
EVENT2_EXPORT_SYMBOL
int bufferevent_decref(struct bufferevent *bufev);

/* How hard bufferevent_flush() and filters should push data through. */
enum bufferevent_flush_mode {
	BEV_NORMAL = 0,  /* ordinary operation */
	BEV_FLUSH = 1,   /* move out everything possible */
	BEV_FINISHED = 2 /* and the stream ends afterwards */
};

/* Forces data through (for filters); -1 error, 0 nothing, 1 something. */
EVENT2_EXPORT_SYMBOL
int bufferevent_flush(struct bufferevent *bufev, short iotype,
    enum bufferevent_flush_mode mode);

/* Options for bufferevent_trigger() and bufferevent_trigger_event(). */
enum bufferevent_trigger_options {
	BEV_TRIG_IGNORE_WATERMARKS = (1 << 16),        /* run regardless */
	BEV_TRIG_DEFER_CALLBACKS = BEV_OPT_DEFER_CALLBACKS /* from the loop */
};

/* Runs the read and/or write callback (iotype EV_READ/EV_WRITE). */
EVENT2_EXPORT_SYMBOL
void bufferevent_trigger(struct bufferevent *bufev, short iotype,
    int options);
/* Runs the event callback with what. */
EVENT2_EXPORT_SYMBOL
void bufferevent_trigger_event(struct bufferevent *bufev, short what,
    int options);

/* ---- Filters ------------------------------------------------------------ */

/* Results of a bufferevent_filter_cb. */
enum bufferevent_filter_result {
	BEV_OK = 0,        /* produced output */
	BEV_NEED_MORE = 1, /* needs more input first */
	BEV_ERROR = 2      /* the stream is broken */
};

/* Transforms bytes from src into dst, at most dst_limit (-1: no limit). */
typedef enum bufferevent_filter_result (*bufferevent_filter_cb)(
    struct evbuffer *src, struct evbuffer *dst, ev_ssize_t dst_limit,
    enum bufferevent_flush_mode mode, void *ctx);

/* Wraps underlying with an input and an output filter. */
EVENT2_EXPORT_SYMBOL
struct bufferevent *bufferevent_filter_new(struct bufferevent *underlying,
    bufferevent_filter_cb input_filter, bufferevent_filter_cb output_filter,
    int options, void (*free_context)(void *), void *ctx);

/* ---- Pairs -------------------------------------------------------------- */

/* Creates two bufferevents connected to each other in memory. */
EVENT2_EXPORT_SYMBOL
int bufferevent_pair_new(struct event_base *base, int options,
    struct bufferevent *pair[2]);
/* The other end of a pair, or NULL. */
EVENT2_EXPORT_SYMBOL
struct bufferevent *bufferevent_pair_get_partner(struct bufferevent *bev);

/* ---- Rate limiting ------------------------------------------------------ */

/* A token bucket configuration (opaque). */
struct ev_token_bucket_cfg;
/* Bufferevents sharing one budget (opaque). */
struct bufferevent_rate_limit_group;

/* Largest rate or burst a bucket accepts. */
#define EV_RATE_LIMIT_MAX EV_SSIZE_MAX

/* Makes a bucket configuration; tick_len NULL means one second. */
EVENT2_EXPORT_SYMBOL
struct ev_token_bucket_cfg *ev_token_bucket_cfg_new(
    size_t read_rate, size_t read_burst,
    size_t write_rate, size_t write_burst,
    const struct timeval *tick_len);
/* Frees a bucket configuration no bufferevent uses any more. */
EVENT2_EXPORT_SYMBOL
void ev_token_bucket_cfg_free(struct ev_token_bucket_cfg *cfg);
/* Applies (or with NULL removes) a rate limit. */
EVENT2_EXPORT_SYMBOL
int bufferevent_set_rate_limit(struct bufferevent *bev,
    struct ev_token_bucket_cfg *cfg);

/* Creates a group limited by cfg. */
EVENT2_EXPORT_SYMBOL
struct bufferevent_rate_limit_group *bufferevent_rate_limit_group_new(
    struct event_base *base, const struct ev_token_bucket_cfg *cfg);
/* Changes a group's limits. */
EVENT2_EXPORT_SYMBOL
int bufferevent_rate_limit_group_set_cfg(
    struct bufferevent_rate_limit_group *group,
    const struct ev_token_bucket_cfg *cfg);
/* Sets the smallest share one member may get per tick. */
EVENT2_EXPORT_SYMBOL
int bufferevent_rate_limit_group_set_min_share(
    struct bufferevent_rate_limit_group *group, size_t share);
/* Frees a group (its members leave it). */
EVENT2_EXPORT_SYMBOL
void bufferevent_rate_limit_group_free(
    struct bufferevent_rate_limit_group *group);
/* Adds a bufferevent to a group / removes it from its group. */
EVENT2_EXPORT_SYMBOL
int bufferevent_add_to_rate_limit_group(struct bufferevent *bev,
    struct bufferevent_rate_limit_group *g);
EVENT2_EXPORT_SYMBOL
int bufferevent_remove_from_rate_limit_group(struct bufferevent *bev);

/* Sets / reads the most bytes one read or write call may move. */
EVENT2_EXPORT_SYMBOL
int bufferevent_set_max_single_read(struct bufferevent *bev, size_t size);
EVENT2_EXPORT_SYMBOL
int bufferevent_set_max_single_write(struct bufferevent *bev, size_t size);
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_max_single_read(struct bufferevent *bev);
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_max_single_write(struct bufferevent *bev);

/* Tokens left in the bufferevent's own buckets. */
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_read_limit(struct bufferevent *bev);
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_write_limit(struct bufferevent *bev);
/* Bytes it may move now, all limits considered. */
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_max_to_read(struct bufferevent *bev);
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_get_max_to_write(struct bufferevent *bev);
/* Its current bucket configuration, or NULL. */
EVENT2_EXPORT_SYMBOL
const struct ev_token_bucket_cfg *bufferevent_get_token_bucket_cfg(
    const struct bufferevent *bev);

/* Tokens left in a group's buckets. */
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_rate_limit_group_get_read_limit(
    struct bufferevent_rate_limit_group *grp);
EVENT2_EXPORT_SYMBOL
ev_ssize_t bufferevent_rate_limit_group_get_write_limit(
    struct bufferevent_rate_limit_group *grp);

/* Takes decr tokens from a bufferevent's buckets (negative adds). */
EVENT2_EXPORT_SYMBOL
int bufferevent_decrement_read_limit(struct bufferevent *bev,
    ev_ssize_t decr);
EVENT2_EXPORT_SYMBOL
int bufferevent_decrement_write_limit(struct bufferevent *bev,
    ev_ssize_t decr);
/* Takes decr tokens from a group's buckets (negative adds). */
EVENT2_EXPORT_SYMBOL
int bufferevent_rate_limit_group_decrement_read(
    struct bufferevent_rate_limit_group *grp, ev_ssize_t decr);
EVENT2_EXPORT_SYMBOL
int bufferevent_rate_limit_group_decrement_write(
    struct bufferevent_rate_limit_group *grp, ev_ssize_t decr);

/* Bytes read and written by a group's members since the last reset. */
EVENT2_EXPORT_SYMBOL
void bufferevent_rate_limit_group_get_totals(
    struct bufferevent_rate_limit_group *grp,
    ev_uint64_t *total_read_out, ev_uint64_t *total_written_out);
/* Zeroes those totals. */
EVENT2_EXPORT_SYMBOL
void bufferevent_rate_limit_group_reset_totals(
    struct bufferevent_rate_limit_group *grp);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_BUFFEREVENT_H */
