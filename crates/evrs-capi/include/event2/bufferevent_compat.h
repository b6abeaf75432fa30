/* evrs: libevent 2.1 compatible API -- libevent 1.x bufferevent functions. */
#ifndef EVRS_EVENT2_BUFFEREVENT_COMPAT_H
#define EVRS_EVENT2_BUFFEREVENT_COMPAT_H

#include <event2/visibility.h>
#include <event2/event-config.h>

#include <event2/util.h>
#include <event2/bufferevent.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1.x names of the callback types. */
#define evbuffercb bufferevent_data_cb
#define everrorcb bufferevent_event_cb

/* Creates a socket bufferevent on the current base of event_init();
 * use bufferevent_base_set() to move it. */
EVENT2_EXPORT_SYMBOL
struct bufferevent *bufferevent_new(evutil_socket_t fd,
    evbuffercb readcb, evbuffercb writecb, everrorcb errorcb, void *cbarg);

/* Sets the read and write timeouts in whole seconds (0: none). */
EVENT2_EXPORT_SYMBOL
void bufferevent_settimeout(struct bufferevent *bufev,
    int timeout_read, int timeout_write);

/* 1.x names of the BEV_EVENT_* bits. */
#define EVBUFFER_READ BEV_EVENT_READING
#define EVBUFFER_WRITE BEV_EVENT_WRITING
#define EVBUFFER_EOF BEV_EVENT_EOF
#define EVBUFFER_ERROR BEV_EVENT_ERROR
#define EVBUFFER_TIMEOUT BEV_EVENT_TIMEOUT

/* 1.x accessors of the input and output buffers. */
#define EVBUFFER_INPUT(x) bufferevent_get_input(x)
#define EVBUFFER_OUTPUT(x) bufferevent_get_output(x)

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_BUFFEREVENT_COMPAT_H */
