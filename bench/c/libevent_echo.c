/* libevent's echo server as a library, for the in-process A/B in src/bin/echo_ab.rs: an
 * evconnlistener on a listening socket made by the caller, and a stop event on the client's
 * control pipe. Per connection either a socket bufferevent whose read callback moves the
 * input to the output (evbuffer_add_buffer), or (`plain`) a plain persistent read event
 * whose callback reads and writes the socket itself. One instance of each kind may live at
 * once (the harness keeps a group of servers alive together). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

struct server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *stop_ev;
    int plain;
    /* Every live bufferevent (or, plain, every connection's caller-owned event), so `free`
     * can free them (libevent does not do it with the base). Allocated for `cap`
     * connections up front, so it is not part of the per-connection heap. */
    struct bufferevent **bevs;
    struct event *evs;
    size_t cap, accepted;
};

/* [0]: bufferevents, [1]: plain events. */
static struct server servers[2];

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        servers[0].bevs[(uintptr_t)arg] = NULL;
        bufferevent_free(bev);
    }
}

/* A plain connection: read what came and write it back (a short write waits for room;
 * with 64-byte messages it does not happen). `arg` is the connection's event. */
static void plain_read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        event_del(arg);
        evutil_closesocket(fd);
        return;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(fd, buf + off, (size_t)(n - off));
        if (w > 0) {
            off += w;
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            poll(&p, 1, -1);
        } else if (w < 0 && errno != EINTR) {
            return;
        }
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    struct server *s = arg;
    if (s->accepted == s->cap) {
        evutil_closesocket(fd);
        return;
    }
    size_t i = s->accepted;
    if (s->plain) {
        if (event_assign(&s->evs[i], s->base, fd, EV_READ | EV_PERSIST, plain_read_cb, &s->evs[i]) != 0 ||
            event_add(&s->evs[i], NULL) != 0) {
            evutil_closesocket(fd);
            return;
        }
        s->accepted++;
        return;
    }
    struct bufferevent *bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    s->accepted++;
    s->bevs[i] = bev;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, (void *)(uintptr_t)i);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(((struct server *)arg)->base); /* the caller reads the pipe */
}

/* Builds server `plain` (0: bufferevents, 1: plain events) on `listen_fd` (listening,
 * non-blocking; owned from here on) for up to `cap` connections, stopping `serve` when
 * `stop_fd` is readable. 0 on success. */
int evrs_echo_libevent_new(int listen_fd, int stop_fd, size_t cap, int plain)
{
    struct server *s = &servers[plain ? 1 : 0];
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    s->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    s->plain = plain ? 1 : 0;
    s->bevs = calloc(cap ? cap : 1, sizeof *s->bevs);
    s->evs = s->plain ? calloc(cap ? cap : 1, sizeof *s->evs) : NULL;
    if (!s->base || !s->bevs || (s->plain && !s->evs))
        return -1;
    s->cap = cap;
    s->accepted = 0;
    /* backlog 0: the socket already listens. */
    s->listener = evconnlistener_new(s->base, accept_cb, s, LEV_OPT_CLOSE_ON_FREE, 0, listen_fd);
    s->stop_ev = event_new(s->base, stop_fd, EV_READ | EV_PERSIST, stop_cb, s);
    if (!s->listener || !s->stop_ev || event_add(s->stop_ev, NULL) != 0)
        return -1;
    return 0;
}

/* Runs server `plain`'s loop until `total` connections have been accepted. */
int evrs_echo_libevent_accept_until(int plain, size_t total)
{
    struct server *s = &servers[plain ? 1 : 0];
    while (s->accepted < total)
        if (event_base_loop(s->base, EVLOOP_ONCE) < 0)
            return -1;
    return 0;
}

/* Serves until the stop fd is readable. */
int evrs_echo_libevent_serve(int plain)
{
    return event_base_loop(servers[plain ? 1 : 0].base, 0) < 0 ? -1 : 0;
}

/* Frees server `plain`'s connections, listener and base. */
void evrs_echo_libevent_free(int plain)
{
    struct server *s = &servers[plain ? 1 : 0];
    for (size_t i = 0; i < s->accepted; i++) {
        if (s->bevs[i])
            bufferevent_free(s->bevs[i]);
        if (s->plain && event_pending(&s->evs[i], EV_READ, NULL)) {
            evutil_socket_t fd = event_get_fd(&s->evs[i]);
            event_del(&s->evs[i]);
            evutil_closesocket(fd);
        }
    }
    free(s->bevs);
    free(s->evs);
    evconnlistener_free(s->listener);
    event_free(s->stop_ev);
    event_base_free(s->base);
    *s = (struct server){0};
}
