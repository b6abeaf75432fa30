/* evrs: libevent 2.1 compatible API -- the layout of struct event. */
#ifndef EVRS_EVENT2_EVENT_STRUCT_H
#define EVRS_EVENT2_EVENT_STRUCT_H

/*
 * Programs that embed a struct event in their own structures need its
 * size; a few read ev_fd, ev_base, ev_events, ev_res or the flags directly.
 * The layout is libevent 2.1's (128 bytes on LP64) so that such programs
 * keep working; the members are the library's private state otherwise.
 */

#include <event2/event-config.h>

#include <sys/time.h>
#include <sys/types.h>

#include <event2/util.h>
#include <event2/keyvalq_struct.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of ev_evcallback.evcb_flags: where the event is queued. */
#define EVLIST_TIMEOUT 0x01
#define EVLIST_INSERTED 0x02
#define EVLIST_SIGNAL 0x04
#define EVLIST_ACTIVE 0x08
#define EVLIST_INTERNAL 0x10
#define EVLIST_ACTIVE_LATER 0x20
#define EVLIST_FINALIZING 0x40
#define EVLIST_INIT 0x80
#define EVLIST_ALL 0xff

/*
 * BSD <sys/queue.h> style links, defined only when the caller has not
 * included <sys/queue.h>, and withdrawn at the end of this header.
 */
#ifndef TAILQ_ENTRY
#define EVRS_EVENT_DEFINED_TQENTRY_
#define TAILQ_ENTRY(type) \
	struct { \
		struct type *tqe_next;  /* next element */ \
		struct type **tqe_prev; /* link field of the previous element */ \
	}
#endif
#ifndef TAILQ_HEAD
#define EVRS_EVENT_DEFINED_TQHEAD_
#define TAILQ_HEAD(name, type) \
	struct name { \
		struct type *tqh_first; /* first element */ \
		struct type **tqh_last; /* link field of the last element */ \
	}
#endif
#ifndef LIST_ENTRY
#define EVRS_EVENT_DEFINED_LISTENTRY_
#define LIST_ENTRY(type) \
	struct { \
		struct type *le_next;  /* next element */ \
		struct type **le_prev; /* link field of the previous element */ \
	}
#endif
#ifndef LIST_HEAD
#define EVRS_EVENT_DEFINED_LISTHEAD_
#define LIST_HEAD(name, type) \
	struct name { \
		struct type *lh_first; /* first element */ \
	}
#endif

struct event_base;
struct event;

/* The part of an event the loop schedules: queue link, state, callback. */
struct event_callback {
	TAILQ_ENTRY(event_callback) evcb_active_next;
	short evcb_flags;        /* EVLIST_* bits */
	ev_uint8_t evcb_pri;     /* priority; smaller runs first */
	ev_uint8_t evcb_closure; /* how the callback is invoked */
	union {
		void (*evcb_callback)(evutil_socket_t, short, void *);
		void (*evcb_selfcb)(struct event_callback *, void *);
		void (*evcb_evfinalize)(struct event *, void *);
		void (*evcb_cbfinalize)(struct event_callback *, void *);
	} evcb_cb_union;
	void *evcb_arg;
};

struct event {
	struct event_callback ev_evcallback;

	/* Timeout bookkeeping: common-timeout list link or heap index. */
	union {
		TAILQ_ENTRY(event) ev_next_with_common_timeout;
		int min_heap_idx;
	} ev_timeout_pos;
	evutil_socket_t ev_fd;

	struct event_base *ev_base;

	union {
		/* I/O events: per-fd list link and the relative timeout. */
		struct {
			LIST_ENTRY(event) ev_io_next;
			struct timeval ev_timeout;
		} ev_io;
		/* Signal events: per-signal list link and call counters. */
		struct {
			LIST_ENTRY(event) ev_signal_next;
			short ev_ncalls;
			short *ev_pncalls;
		} ev_signal;
	} ev_;

	short ev_events;         /* EV_* flags the event waits for */
	short ev_res;            /* EV_* flags it was activated with */
	struct timeval ev_timeout; /* absolute deadline */
};

/* List heads of events (used by the library and a few old programs). */
TAILQ_HEAD(event_list, event);
LIST_HEAD(event_dlist, event);

#ifdef EVRS_EVENT_DEFINED_TQENTRY_
#undef EVRS_EVENT_DEFINED_TQENTRY_
#undef TAILQ_ENTRY
#endif
#ifdef EVRS_EVENT_DEFINED_TQHEAD_
#undef EVRS_EVENT_DEFINED_TQHEAD_
#undef TAILQ_HEAD
#endif
#ifdef EVRS_EVENT_DEFINED_LISTENTRY_
#undef EVRS_EVENT_DEFINED_LISTENTRY_
#undef LIST_ENTRY
#endif
#ifdef EVRS_EVENT_DEFINED_LISTHEAD_
#undef EVRS_EVENT_DEFINED_LISTHEAD_
#undef LIST_HEAD
#endif

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_EVENT_STRUCT_H */
