/* libevent's bufferevent echo server as a library (one instance per process), for the
 * in-process A/B in src/bin/echo_ab.rs: an evconnlistener on a listening socket made by the
 * caller, a socket bufferevent per connection whose read callback moves the input to the
 * output (evbuffer_add_buffer), and a stop event on the client's control pipe. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdint.h>
#include <stdlib.h>

static struct event_base *base;
static struct evconnlistener *listener;
static struct event *stop_ev;
/* Every live bufferevent, so `free` can free them (libevent does not do it with the base).
 * Allocated for `cap` connections up front, so it is not part of the per-connection heap. */
static struct bufferevent **bevs;
static size_t bevs_cap, accepted;

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        bevs[(uintptr_t)arg] = NULL;
        bufferevent_free(bev);
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    (void)arg;
    if (accepted == bevs_cap) {
        evutil_closesocket(fd);
        return;
    }
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    size_t i = accepted++;
    bevs[i] = bev;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, (void *)(uintptr_t)i);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(base); /* the caller reads the pipe */
}

/* Builds the server on `listen_fd` (listening, non-blocking; owned from here on) for up to
 * `cap` connections, stopping `serve` when `stop_fd` is readable. 0 on success. */
int evrs_echo_libevent_new(int listen_fd, int stop_fd, size_t cap)
{
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    bevs = calloc(cap ? cap : 1, sizeof *bevs);
    if (!base || !bevs)
        return -1;
    bevs_cap = cap;
    accepted = 0;
    /* backlog 0: the socket already listens. */
    listener = evconnlistener_new(base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, 0, listen_fd);
    stop_ev = event_new(base, stop_fd, EV_READ | EV_PERSIST, stop_cb, NULL);
    if (!listener || !stop_ev || event_add(stop_ev, NULL) != 0)
        return -1;
    return 0;
}

/* Runs the loop until `total` connections have been accepted. */
int evrs_echo_libevent_accept_until(size_t total)
{
    while (accepted < total)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            return -1;
    return 0;
}

/* Serves until the stop fd is readable. */
int evrs_echo_libevent_serve(void)
{
    return event_base_loop(base, 0) < 0 ? -1 : 0;
}

/* Frees the connections, the listener and the base. */
void evrs_echo_libevent_free(void)
{
    for (size_t i = 0; i < accepted; i++)
        if (bevs[i])
            bufferevent_free(bevs[i]);
    free(bevs);
    bevs = NULL;
    evconnlistener_free(listener);
    event_free(stop_ev);
    event_base_free(base);
    listener = NULL;
    stop_ev = NULL;
    base = NULL;
    accepted = bevs_cap = 0;
}
