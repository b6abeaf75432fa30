/* evrs: libevent 2.1 compatible API -- the libevent 1.x all-in-one header. */
#ifndef EVRS_EVENT_H
#define EVRS_EVENT_H

/*
 * Old programs include only <event.h>; it pulls in the core event, buffer,
 * bufferevent and tagging headers together with their 1.x compatibility
 * parts.  New code should include the <event2/...> headers it needs.
 */

#include <event2/event-config.h>

#include <stdarg.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#include <evutil.h>

#include <event2/event_struct.h>
#include <event2/event.h>
#include <event2/event_compat.h>
#include <event2/buffer.h>
#include <event2/buffer_compat.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/bufferevent_compat.h>
#include <event2/tag.h>
#include <event2/tag_compat.h>

#endif /* EVRS_EVENT_H */
