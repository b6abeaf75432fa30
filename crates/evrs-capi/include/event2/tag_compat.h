/* evrs: libevent 2.1 compatible API -- libevent 1.x tagging names. */
#ifndef EVRS_EVENT2_TAG_COMPAT_H
#define EVRS_EVENT2_TAG_COMPAT_H

#include <event2/tag.h>

/* 1.x names of the integer encoders. */
#define encode_int(evbuf, number) evtag_encode_int((evbuf), (number))
#define encode_int64(evbuf, number) evtag_encode_int64((evbuf), (number))

#endif /* EVRS_EVENT2_TAG_COMPAT_H */
