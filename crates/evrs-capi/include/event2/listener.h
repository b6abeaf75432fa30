/* evrs: libevent 2.1 compatible API -- accepting connections. */
#ifndef EVRS_EVENT2_LISTENER_H
#define EVRS_EVENT2_LISTENER_H

#include <event2/visibility.h>
#include <event2/event.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;
/* A listening socket that calls back for each accepted connection (opaque). */
struct evconnlistener;

/* Called with each accepted socket and its peer address. */
typedef void (*evconnlistener_cb)(struct evconnlistener *, evutil_socket_t,
    struct sockaddr *, int socklen, void *);
/* Called when accept() fails. */
typedef void (*evconnlistener_errorcb)(struct evconnlistener *, void *);

/* Options for evconnlistener_new() and evconnlistener_new_bind(). */
#define LEV_OPT_LEAVE_SOCKETS_BLOCKING (1u << 0) /* accepted fds stay blocking */
#define LEV_OPT_CLOSE_ON_FREE (1u << 1)   /* close the listening fd when freed */
#define LEV_OPT_CLOSE_ON_EXEC (1u << 2)   /* accepted fds are close-on-exec */
#define LEV_OPT_REUSEABLE (1u << 3)       /* SO_REUSEADDR */
#define LEV_OPT_THREADSAFE (1u << 4)      /* give the listener a lock */
#define LEV_OPT_DISABLED (1u << 5)        /* start disabled */
#define LEV_OPT_DEFERRED_ACCEPT (1u << 6) /* wake up only when data arrives */
#define LEV_OPT_REUSEABLE_PORT (1u << 7)  /* SO_REUSEPORT */
#define LEV_OPT_BIND_IPV6ONLY (1u << 8)   /* IPV6_V6ONLY */

/* Listens on an existing socket (backlog < 0: it already listens). */
EVENT2_EXPORT_SYMBOL
struct evconnlistener *evconnlistener_new(struct event_base *base,
    evconnlistener_cb cb, void *ptr, unsigned flags, int backlog,
    evutil_socket_t fd);
/* Makes a socket, binds it to sa and listens on it. */
EVENT2_EXPORT_SYMBOL
struct evconnlistener *evconnlistener_new_bind(struct event_base *base,
    evconnlistener_cb cb, void *ptr, unsigned flags, int backlog,
    const struct sockaddr *sa, int socklen);
/* Stops listening and frees the listener. */
EVENT2_EXPORT_SYMBOL
void evconnlistener_free(struct evconnlistener *lev);
/* Resumes / pauses accepting. */
EVENT2_EXPORT_SYMBOL
int evconnlistener_enable(struct evconnlistener *lev);
EVENT2_EXPORT_SYMBOL
int evconnlistener_disable(struct evconnlistener *lev);
/* The base the listener uses. */
EVENT2_EXPORT_SYMBOL
struct event_base *evconnlistener_get_base(struct evconnlistener *lev);
/* The listening socket. */
EVENT2_EXPORT_SYMBOL
evutil_socket_t evconnlistener_get_fd(struct evconnlistener *lev);
/* Replaces the accept callback (NULL disables accepting). */
EVENT2_EXPORT_SYMBOL
void evconnlistener_set_cb(struct evconnlistener *lev,
    evconnlistener_cb cb, void *arg);
/* Sets the error callback. */
EVENT2_EXPORT_SYMBOL
void evconnlistener_set_error_cb(struct evconnlistener *lev,
    evconnlistener_errorcb errorcb);

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_LISTENER_H */
