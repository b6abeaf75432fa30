/* evrs: libevent 2.1 compatible API -- the public part of struct bufferevent. */
#ifndef EVRS_EVENT2_BUFFEREVENT_STRUCT_H
#define EVRS_EVENT2_BUFFEREVENT_STRUCT_H

/*
 * Some programs read bev->input and bev->output directly, so the public
 * head of every bufferevent has libevent 2.1's layout (392 bytes on LP64).
 * Each kind of bufferevent extends it privately; treat the other members
 * as read-only library state and prefer the functions of bufferevent.h.
 */

#include <event2/event-config.h>

#include <sys/time.h>
#include <sys/types.h>

#include <event2/util.h>
#include <event2/event_struct.h>
/* for bufferevent_data_cb and bufferevent_event_cb */
#include <event2/bufferevent.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct evbuffer;
/* The operations of one kind of bufferevent (library-private). */
struct bufferevent_ops;

/* Watermarks of one direction (high 0: unlimited). */
struct event_watermark {
	size_t low;
	size_t high;
};

struct bufferevent {
	struct event_base *ev_base;
	const struct bufferevent_ops *be_ops;

	struct event ev_read;  /* the read event of socket bufferevents */
	struct event ev_write; /* the write event of socket bufferevents */

	struct evbuffer *input;
	struct evbuffer *output;

	struct event_watermark wm_read;
	struct event_watermark wm_write;

	bufferevent_data_cb readcb;
	bufferevent_data_cb writecb;
	bufferevent_event_cb errorcb; /* the event callback */
	void *cbarg;

	struct timeval timeout_read;
	struct timeval timeout_write;

	short enabled; /* EV_READ / EV_WRITE */
};

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_BUFFEREVENT_STRUCT_H */
