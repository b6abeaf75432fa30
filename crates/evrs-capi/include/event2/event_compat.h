/* evrs: libevent 2.1 compatible API -- libevent 1.x event functions. */
#ifndef EVRS_EVENT2_EVENT_COMPAT_H
#define EVRS_EVENT2_EVENT_COMPAT_H

/*
 * The 1.x interface works on one implicit global base, the one made by
 * event_init().  New code should use the event_base_* functions of
 * <event2/event.h> instead.
 */

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <sys/time.h>
#include <sys/types.h>

#include <event2/util.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event;
struct event_base;

/* Creates a base and makes it the global current base. */
EVENT2_EXPORT_SYMBOL
struct event_base *event_init(void);
/* event_base_dispatch() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_dispatch(void);
/* event_base_loop() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_loop(int flags);
/* event_base_loopexit() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_loopexit(const struct timeval *tv);
/* event_base_loopbreak() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_loopbreak(void);
/* event_base_once() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_once(evutil_socket_t fd, short events,
    void (*callback)(evutil_socket_t, short, void *), void *arg,
    const struct timeval *tv);
/* event_base_get_method() of the current base. */
EVENT2_EXPORT_SYMBOL
const char *event_get_method(void);
/* event_base_priority_init() on the current base. */
EVENT2_EXPORT_SYMBOL
int event_priority_init(int npriorities);
/* Assigns an event to the current base (which may be none yet). */
EVENT2_EXPORT_SYMBOL
void event_set(struct event *ev, evutil_socket_t fd, short events,
    void (*callback)(evutil_socket_t, short, void *), void *arg);

/* 1.x names for timer and signal events. */
#define evtimer_set(ev, cb, arg) event_set((ev), -1, 0, (cb), (arg))
#define evsignal_set(ev, x, cb, arg) \
	event_set((ev), (x), EV_SIGNAL | EV_PERSIST, (cb), (arg))

#define timeout_add(ev, tv) event_add((ev), (tv))
#define timeout_set(ev, cb, arg) event_set((ev), -1, 0, (cb), (arg))
#define timeout_del(ev) event_del(ev)
#define timeout_pending(ev, tv) event_pending((ev), EV_TIMEOUT, (tv))
#define timeout_initialized(ev) event_initialized(ev)

#define signal_add(ev, tv) event_add((ev), (tv))
#define signal_set(ev, x, cb, arg) \
	event_set((ev), (x), EV_SIGNAL | EV_PERSIST, (cb), (arg))
#define signal_del(ev) event_del(ev)
#define signal_pending(ev, tv) event_pending((ev), EV_SIGNAL, (tv))
#define signal_initialized(ev) event_initialized(ev)

/* The fd and signal number of an event. */
#ifndef EVENT_FD
#define EVENT_FD(ev) ((int)event_get_fd(ev))
#define EVENT_SIGNAL(ev) event_get_signal(ev)
#endif

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_EVENT_COMPAT_H */
