/* evrs: libevent 2.1 compatible API -- locking and threads. */
#ifndef EVRS_EVENT2_THREAD_H
#define EVRS_EVENT2_THREAD_H

/*
 * Bases, buffers and bufferevents get locks only if lock callbacks are
 * installed (usually with evthread_use_pthreads()) before they are made.
 */

#include <event2/visibility.h>
#include <event2/event-config.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;
struct timeval;

/* Mode bits passed to the lock and unlock callbacks. */
#define EVTHREAD_WRITE 0x04 /* exclusive (read-write locks only) */
#define EVTHREAD_READ 0x08  /* shared (read-write locks only) */
#define EVTHREAD_TRY 0x10   /* fail instead of waiting */

/* Version of struct evthread_lock_callbacks described here. */
#define EVTHREAD_LOCK_API_VERSION 1

/* Lock types passed to the alloc callback. */
#define EVTHREAD_LOCKTYPE_RECURSIVE 1
#define EVTHREAD_LOCKTYPE_READWRITE 2

/* A lock implementation for the library to use. */
struct evthread_lock_callbacks {
	int lock_api_version;         /* EVTHREAD_LOCK_API_VERSION */
	unsigned supported_locktypes; /* EVTHREAD_LOCKTYPE_* bits */
	void *(*alloc)(unsigned locktype);
	void (*free)(void *lock, unsigned locktype);
	int (*lock)(unsigned mode, void *lock);   /* 0 on success */
	int (*unlock)(unsigned mode, void *lock); /* 0 on success */
};

/* Installs lock callbacks (NULL removes them); call before anything else. */
EVENT2_EXPORT_SYMBOL
int evthread_set_lock_callbacks(const struct evthread_lock_callbacks *);

/* Version of struct evthread_condition_callbacks described here. */
#define EVTHREAD_CONDITION_API_VERSION 1

/* A condition variable implementation for the library to use. */
struct evthread_condition_callbacks {
	int condition_api_version; /* EVTHREAD_CONDITION_API_VERSION */
	void *(*alloc_condition)(unsigned condtype);
	void (*free_condition)(void *cond);
	int (*signal_condition)(void *cond, int broadcast);
	/* 0 when signalled, 1 on timeout, -1 on error */
	int (*wait_condition)(void *cond, void *lock,
	    const struct timeval *timeout);
};

/* Installs condition variable callbacks. */
EVENT2_EXPORT_SYMBOL
int evthread_set_condition_callbacks(
    const struct evthread_condition_callbacks *);

/* Installs the function that identifies the calling thread. */
EVENT2_EXPORT_SYMBOL
void evthread_set_id_callback(unsigned long (*id_fn)(void));

/* Installs pthreads-based locks, conditions and thread ids (in
 * libevent_pthreads).  Returns 0 on success. */
EVENT2_EXPORT_SYMBOL
int evthread_use_pthreads(void);
/* Defined because evthread_use_pthreads() is available. */
#define EVTHREAD_USE_PTHREADS_IMPLEMENTED 1

/* Wraps the installed locks with checks for misuse; call right after
 * installing them. */
EVENT2_EXPORT_SYMBOL
void evthread_enable_lock_debugging(void);
/* Misspelt old name of evthread_enable_lock_debugging(). */
EVENT2_EXPORT_SYMBOL
void evthread_enable_lock_debuging(void);

/* Gives a base a way to be woken up from other threads. */
EVENT2_EXPORT_SYMBOL
int evthread_make_base_notifiable(struct event_base *base);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_THREAD_H */
