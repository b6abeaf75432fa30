/* evrs: libevent 2.1 compatible API -- libevent 1.x name for <event2/util.h>. */
#ifndef EVRS_EVUTIL_H
#define EVRS_EVUTIL_H

#include <event2/util.h>

#endif /* EVRS_EVUTIL_H */
