/* evrs: libevent 2.1 compatible API -- symbol visibility markers. */
#ifndef EVRS_EVENT2_VISIBILITY_H
#define EVRS_EVENT2_VISIBILITY_H

#include <event2/event-config.h>

/*
 * libevent tags its public declarations with these.  evrs implements the
 * library in Rust, so for C callers they are always empty; they exist so
 * that code which uses them in its own declarations keeps compiling.
 */
#ifndef EVENT2_EXPORT_SYMBOL
#define EVENT2_EXPORT_SYMBOL
#endif
#ifndef EVENT2_CORE_EXPORT_SYMBOL
#define EVENT2_CORE_EXPORT_SYMBOL EVENT2_EXPORT_SYMBOL
#endif

#endif /* EVRS_EVENT2_VISIBILITY_H */
