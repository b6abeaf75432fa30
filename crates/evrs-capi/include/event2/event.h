/* evrs: libevent 2.1 compatible API -- event bases, events and the loop. */
#ifndef EVRS_EVENT2_EVENT_H
#define EVRS_EVENT2_EVENT_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <stdio.h>
#include <sys/time.h>
#include <sys/types.h>

#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A dispatch loop and everything registered with it (opaque). */
struct event_base;
/* One event; its layout is in <event2/event_struct.h>. */
struct event;
/* Settings for event_base_new_with_config() (opaque). */
struct event_config;

/* ---- Debugging ---------------------------------------------------------- */

/* Turns on checks for misuse of events; call before creating any event. */
EVENT2_EXPORT_SYMBOL
void event_enable_debug_mode(void);
/* Tells debug mode an event's memory is being released without event_free. */
EVENT2_EXPORT_SYMBOL
void event_debug_unassign(struct event *ev);

/* ---- Event bases -------------------------------------------------------- */

/* Creates an event_base with the default configuration. */
EVENT2_EXPORT_SYMBOL
struct event_base *event_base_new(void);
/* Re-initialises a base's backend in the child after fork(). */
EVENT2_EXPORT_SYMBOL
int event_reinit(struct event_base *base);
/* Runs the loop until no events remain or it is told to stop. */
EVENT2_EXPORT_SYMBOL
int event_base_dispatch(struct event_base *base);
/* Name of the backend a base uses ("epoll", "poll", ...). */
EVENT2_EXPORT_SYMBOL
const char *event_base_get_method(const struct event_base *base);
/* NULL-terminated list of the backends this build supports. */
EVENT2_EXPORT_SYMBOL
const char **event_get_supported_methods(void);
/* Reads the base's monotonic clock. */
EVENT2_EXPORT_SYMBOL
int event_gettime_monotonic(struct event_base *base, struct timeval *tp);

/* Flags for event_base_get_num_events() and event_base_get_max_events(). */
#define EVENT_BASE_COUNT_ACTIVE 1U
#define EVENT_BASE_COUNT_VIRTUAL 2U
#define EVENT_BASE_COUNT_ADDED 4U

/* Counts the base's events of the kinds in flags. */
EVENT2_EXPORT_SYMBOL
int event_base_get_num_events(struct event_base *base, unsigned int flags);
/* Highest count seen for the kinds in flags; clear resets it. */
EVENT2_EXPORT_SYMBOL
int event_base_get_max_events(struct event_base *base, unsigned int flags,
    int clear);

/* ---- Configuration ------------------------------------------------------ */

/* Allocates an empty configuration. */
EVENT2_EXPORT_SYMBOL
struct event_config *event_config_new(void);
/* Frees a configuration. */
EVENT2_EXPORT_SYMBOL
void event_config_free(struct event_config *cfg);
/* Excludes the backend called method. */
EVENT2_EXPORT_SYMBOL
int event_config_avoid_method(struct event_config *cfg, const char *method);

/* Backend capabilities, for event_config_require_features(). */
enum event_method_feature {
	EV_FEATURE_ET = 0x01,
	EV_FEATURE_O1 = 0x02,
	EV_FEATURE_FDS = 0x04,
	EV_FEATURE_EARLY_CLOSE = 0x08
};

/* Options for event_config_set_flag(). */
enum event_base_config_flag {
	EVENT_BASE_FLAG_NOLOCK = 0x01,
	EVENT_BASE_FLAG_IGNORE_ENV = 0x02,
	EVENT_BASE_FLAG_STARTUP_IOCP = 0x04,
	EVENT_BASE_FLAG_NO_CACHE_TIME = 0x08,
	EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST = 0x10,
	EVENT_BASE_FLAG_PRECISE_TIMER = 0x20
};

/* The EV_FEATURE_* bits a base's backend provides. */
EVENT2_EXPORT_SYMBOL
int event_base_get_features(const struct event_base *base);
/* Accepts only backends providing every EV_FEATURE_* bit in feature. */
EVENT2_EXPORT_SYMBOL
int event_config_require_features(struct event_config *cfg, int feature);
/* Adds an EVENT_BASE_FLAG_* option. */
EVENT2_EXPORT_SYMBOL
int event_config_set_flag(struct event_config *cfg, int flag);
/* Hints how many CPUs the base may use (IOCP only). */
EVENT2_EXPORT_SYMBOL
int event_config_set_num_cpus_hint(struct event_config *cfg, int cpus);
/* Bounds the time and callback count between checks for new events. */
EVENT2_EXPORT_SYMBOL
int event_config_set_max_dispatch_interval(struct event_config *cfg,
    const struct timeval *max_interval, int max_callbacks,
    int min_priority);
/* Creates an event_base from a configuration. */
EVENT2_EXPORT_SYMBOL
struct event_base *event_base_new_with_config(const struct event_config *cfg);
/* Frees a base, running pending finalizers. */
EVENT2_EXPORT_SYMBOL
void event_base_free(struct event_base *base);
/* Frees a base without running pending finalizers. */
EVENT2_EXPORT_SYMBOL
void event_base_free_nofinalize(struct event_base *base);

/* ---- Logging ------------------------------------------------------------ */

/* Severities passed to an event_log_cb. */
#define EVENT_LOG_DEBUG 0
#define EVENT_LOG_MSG 1
#define EVENT_LOG_WARN 2
#define EVENT_LOG_ERR 3
/* Older names of the same severities. */
#define _EVENT_LOG_DEBUG EVENT_LOG_DEBUG
#define _EVENT_LOG_MSG EVENT_LOG_MSG
#define _EVENT_LOG_WARN EVENT_LOG_WARN
#define _EVENT_LOG_ERR EVENT_LOG_ERR

/* Receives the library's log messages. */
typedef void (*event_log_cb)(int severity, const char *msg);
/* Replaces the log sink (NULL: stderr). */
EVENT2_EXPORT_SYMBOL
void event_set_log_callback(event_log_cb cb);

/* Called on a fatal error instead of exit(); must not return. */
typedef void (*event_fatal_cb)(int err);
/* Replaces the fatal error handler. */
EVENT2_EXPORT_SYMBOL
void event_set_fatal_callback(event_fatal_cb cb);

/* Arguments for event_enable_debug_logging(). */
#define EVENT_DBG_ALL 0xffffffffu
#define EVENT_DBG_NONE 0
/* Turns debug-level log messages on (EVENT_DBG_ALL) or off. */
EVENT2_EXPORT_SYMBOL
void event_enable_debug_logging(ev_uint32_t which);

/* ---- Running the loop --------------------------------------------------- */

/* Moves an event that is not added to another base. */
EVENT2_EXPORT_SYMBOL
int event_base_set(struct event_base *base, struct event *ev);

/* Flags for event_base_loop(). */
#define EVLOOP_ONCE 0x01
#define EVLOOP_NONBLOCK 0x02
#define EVLOOP_NO_EXIT_ON_EMPTY 0x04

/* Runs the loop; flags are EVLOOP_*.  0 ok, 1 nothing to wait for, -1 error. */
EVENT2_EXPORT_SYMBOL
int event_base_loop(struct event_base *base, int flags);
/* Stops the loop after tv (NULL: now) once active callbacks have run. */
EVENT2_EXPORT_SYMBOL
int event_base_loopexit(struct event_base *base, const struct timeval *tv);
/* Stops the loop right after the current callback. */
EVENT2_EXPORT_SYMBOL
int event_base_loopbreak(struct event_base *base);
/* Makes the loop look for new events after the current callback. */
EVENT2_EXPORT_SYMBOL
int event_base_loopcontinue(struct event_base *base);
/* Whether the last loop ended through event_base_loopexit(). */
EVENT2_EXPORT_SYMBOL
int event_base_got_exit(struct event_base *base);
/* Whether the last loop ended through event_base_loopbreak(). */
EVENT2_EXPORT_SYMBOL
int event_base_got_break(struct event_base *base);

/* ---- Events ------------------------------------------------------------- */

/* What an event waits for and how it behaves. */
#define EV_TIMEOUT 0x01
#define EV_READ 0x02
#define EV_WRITE 0x04
#define EV_SIGNAL 0x08
#define EV_PERSIST 0x10
#define EV_ET 0x20
#define EV_FINALIZE 0x40
#define EV_CLOSED 0x80

/* Timer-only events. */
#define evtimer_assign(ev, b, cb, arg) \
	event_assign((ev), (b), -1, 0, (cb), (arg))
#define evtimer_new(b, cb, arg) event_new((b), -1, 0, (cb), (arg))
#define evtimer_add(ev, tv) event_add((ev), (tv))
#define evtimer_del(ev) event_del(ev)
#define evtimer_pending(ev, tv) event_pending((ev), EV_TIMEOUT, (tv))
#define evtimer_initialized(ev) event_initialized(ev)

/* User-triggered events (no fd, no timeout). */
#define evuser_new(b, cb, arg) event_new((b), -1, 0, (cb), (arg))
#define evuser_del(ev) event_del(ev)
#define evuser_pending(ev, tv) event_pending((ev), 0, (tv))
#define evuser_initialized(ev) event_initialized(ev)
#define evuser_trigger(ev) event_active((ev), 0, 0)

/* Signal events (always persistent). */
#define evsignal_add(ev, tv) event_add((ev), (tv))
#define evsignal_assign(ev, b, x, cb, arg) \
	event_assign((ev), (b), (x), EV_SIGNAL | EV_PERSIST, (cb), (arg))
#define evsignal_new(b, x, cb, arg) \
	event_new((b), (x), EV_SIGNAL | EV_PERSIST, (cb), (arg))
#define evsignal_del(ev) event_del(ev)
#define evsignal_pending(ev, tv) event_pending((ev), EV_SIGNAL, (tv))
#define evsignal_initialized(ev) event_initialized(ev)

/* An event's callback: fd (or signal), the EV_* flags that fired, its arg. */
typedef void (*event_callback_fn)(evutil_socket_t, short, void *);

/* Placeholder arg meaning "the event itself" for event_new(). */
EVENT2_EXPORT_SYMBOL
void *event_self_cbarg(void);
/* Allocates and assigns an event. */
EVENT2_EXPORT_SYMBOL
struct event *event_new(struct event_base *base, evutil_socket_t fd,
    short events, event_callback_fn callback, void *callback_arg);
/* Initialises caller-provided event storage. */
EVENT2_EXPORT_SYMBOL
int event_assign(struct event *ev, struct event_base *base,
    evutil_socket_t fd, short events, event_callback_fn callback,
    void *callback_arg);
/* Deletes and frees an event made by event_new(). */
EVENT2_EXPORT_SYMBOL
void event_free(struct event *ev);

/* Runs once an event finalized with event_finalize() is done. */
typedef void (*event_finalize_callback_fn)(struct event *, void *);
/* Deletes an event without blocking and calls cb when it is finished. */
EVENT2_EXPORT_SYMBOL
int event_finalize(unsigned flags, struct event *ev,
    event_finalize_callback_fn cb);
/* Like event_finalize(), then frees the event. */
EVENT2_EXPORT_SYMBOL
int event_free_finalize(unsigned flags, struct event *ev,
    event_finalize_callback_fn cb);

/* Schedules a one-shot callback without a caller-visible event. */
EVENT2_EXPORT_SYMBOL
int event_base_once(struct event_base *base, evutil_socket_t fd,
    short events, event_callback_fn callback, void *arg,
    const struct timeval *timeout);
/* Makes an event pending, with an optional timeout. */
EVENT2_EXPORT_SYMBOL
int event_add(struct event *ev, const struct timeval *timeout);
/* Removes an event's timeout but keeps its fd/signal interest. */
EVENT2_EXPORT_SYMBOL
int event_remove_timer(struct event *ev);
/* Makes an event non-pending and non-active. */
EVENT2_EXPORT_SYMBOL
int event_del(struct event *ev);
/* event_del() that never waits for a running callback in another thread. */
EVENT2_EXPORT_SYMBOL
int event_del_noblock(struct event *ev);
/* event_del() that always waits for a running callback in another thread. */
EVENT2_EXPORT_SYMBOL
int event_del_block(struct event *ev);
/* Activates an event as if res had happened (ncalls is obsolete). */
EVENT2_EXPORT_SYMBOL
void event_active(struct event *ev, int res, short ncalls);
/* Which of events are pending or active; fills the deadline into tv. */
EVENT2_EXPORT_SYMBOL
int event_pending(const struct event *ev, short events, struct timeval *tv);
/* The event whose callback is running now, or NULL. */
EVENT2_EXPORT_SYMBOL
struct event *event_base_get_running_event(struct event_base *base);
/* Whether ev was assigned (zeroed memory reads as not initialised). */
EVENT2_EXPORT_SYMBOL
int event_initialized(const struct event *ev);

/* The signal number of a signal event. */
#define event_get_signal(ev) ((int)event_get_fd(ev))

/* Accessors for an event's assignment. */
EVENT2_EXPORT_SYMBOL
evutil_socket_t event_get_fd(const struct event *ev);
EVENT2_EXPORT_SYMBOL
struct event_base *event_get_base(const struct event *ev);
EVENT2_EXPORT_SYMBOL
short event_get_events(const struct event *ev);
EVENT2_EXPORT_SYMBOL
event_callback_fn event_get_callback(const struct event *ev);
EVENT2_EXPORT_SYMBOL
void *event_get_callback_arg(const struct event *ev);
EVENT2_EXPORT_SYMBOL
int event_get_priority(const struct event *ev);
/* Reads every field of an assignment at once (NULL outputs are skipped). */
EVENT2_EXPORT_SYMBOL
void event_get_assignment(const struct event *event,
    struct event_base **base_out, evutil_socket_t *fd_out,
    short *events_out, event_callback_fn *callback_out, void **arg_out);

/* sizeof(struct event) in this library. */
EVENT2_EXPORT_SYMBOL
size_t event_get_struct_event_size(void);

/* ---- Versions ----------------------------------------------------------- */

/* Version string and number of the library at run time. */
EVENT2_EXPORT_SYMBOL
const char *event_get_version(void);
EVENT2_EXPORT_SYMBOL
ev_uint32_t event_get_version_number(void);

/* Version of these headers. */
#define LIBEVENT_VERSION EVENT__VERSION
#define LIBEVENT_VERSION_NUMBER EVENT__NUMERIC_VERSION

/* ---- Priorities --------------------------------------------------------- */

/* Most priority levels a base can have. */
#define EVENT_MAX_PRIORITIES 256

/* Sets the number of priority levels (0 is most urgent). */
EVENT2_EXPORT_SYMBOL
int event_base_priority_init(struct event_base *base, int npriorities);
/* The number of priority levels. */
EVENT2_EXPORT_SYMBOL
int event_base_get_npriorities(struct event_base *eb);
/* Sets an event's priority. */
EVENT2_EXPORT_SYMBOL
int event_priority_set(struct event *ev, int priority);

/* ---- Miscellaneous ------------------------------------------------------ */

/* Returns a timeval to use for many timeouts of the same duration. */
EVENT2_EXPORT_SYMBOL
const struct timeval *event_base_init_common_timeout(struct event_base *base,
    const struct timeval *duration);

/* Defined because event_set_mem_functions() is available. */
#define EVENT_SET_MEM_FUNCTIONS_IMPLEMENTED
/* Replaces the allocator; call before any other function. */
EVENT2_EXPORT_SYMBOL
void event_set_mem_functions(void *(*malloc_fn)(size_t sz),
    void *(*realloc_fn)(void *ptr, size_t sz),
    void (*free_fn)(void *ptr));

/* Writes a description of every event of a base to output. */
EVENT2_EXPORT_SYMBOL
void event_base_dump_events(struct event_base *base, FILE *output);
/* Activates the events of fd for the EV_* flags in events. */
EVENT2_EXPORT_SYMBOL
void event_base_active_by_fd(struct event_base *base, evutil_socket_t fd,
    short events);
/* Activates the events of signal sig. */
EVENT2_EXPORT_SYMBOL
void event_base_active_by_signal(struct event_base *base, int sig);

/* Visitor for event_base_foreach_event(); non-zero stops the walk. */
typedef int (*event_base_foreach_event_cb)(const struct event_base *,
    const struct event *, void *);
/* Calls fn for every added or active event of a base. */
EVENT2_EXPORT_SYMBOL
int event_base_foreach_event(struct event_base *base,
    event_base_foreach_event_cb fn, void *arg);

/* The base's cached time (or the current time when nothing is cached). */
EVENT2_EXPORT_SYMBOL
int event_base_gettimeofday_cached(struct event_base *base,
    struct timeval *tv);
/* Refreshes the base's cached time. */
EVENT2_EXPORT_SYMBOL
int event_base_update_cache_time(struct event_base *base);

/* Frees all global state; no library function may be used afterwards. */
EVENT2_EXPORT_SYMBOL
void libevent_global_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_EVENT_H */
