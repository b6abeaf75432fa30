/* evrs C ABI test: events, timers, signals, priorities and loops through libevent 2.1's
 * API. Built against Debian's headers and libevent, run against both libraries; the
 * printed lines must be identical. */
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/event_compat.h>
#include <event2/util.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

static struct event_base *base;
static char trace[256];

static void note(const char *s)
{
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    note((const char *)arg);
}

static void test_timer_order(void)
{
    struct event *a = evtimer_new(base, tick, "a"), *b = evtimer_new(base, tick, "b"),
                 *c = evtimer_new(base, tick, "c");
    struct timeval t30 = {0, 30000}, t10 = {0, 10000}, t20 = {0, 20000};
    trace[0] = 0;
    evtimer_add(a, &t30);
    evtimer_add(b, &t10);
    evtimer_add(c, &t20);
    int r = event_base_dispatch(base);
    printf("timer order: %s dispatch %d pending %d\n", trace, r, evtimer_pending(a, NULL));
    event_free(a);
    event_free(b);
    event_free(c);
}

static int rounds;
static void reader(evutil_socket_t fd, short what, void *arg)
{
    struct event *self = arg;
    char buf[16];
    ssize_t n = read(fd, buf, sizeof buf);
    printf("read cb: what 0x%x n %zd flags-pending %d\n", what, n,
           event_pending(self, EV_READ, NULL) != 0);
    if (++rounds == 2)
        event_del(self);
}

static void test_persist_read(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct event *ev = event_new(base, sv[0], EV_READ | EV_PERSIST, reader, event_self_cbarg());
    event_add(ev, NULL);
    printf("persist: pending %d get_fd ok %d events 0x%x\n", event_pending(ev, EV_READ | EV_WRITE, NULL),
           event_get_fd(ev) == sv[0], event_get_events(ev));
    write(sv[1], "x", 1);
    event_base_loop(base, EVLOOP_ONCE);
    write(sv[1], "y", 1);
    event_base_loop(base, EVLOOP_ONCE);
    printf("persist: after del pending %d loop %d\n", event_pending(ev, EV_READ, NULL),
           event_base_loop(base, EVLOOP_NONBLOCK));
    event_free(ev);
    close(sv[0]);
    close(sv[1]);
}

static void prio_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    note((const char *)arg);
}

static void test_priorities(void)
{
    struct event_base *b = event_base_new();
    int pr = event_base_priority_init(b, 3);
    printf("priority_init 3: %d npri %d\n", pr, event_base_get_npriorities(b));
    struct event *lo = event_new(b, -1, 0, prio_cb, "2"), *hi = event_new(b, -1, 0, prio_cb, "0"),
                 *mid = event_new(b, -1, 0, prio_cb, "1");
    printf("default priority %d\n", event_get_priority(mid));
    event_priority_set(lo, 2);
    event_priority_set(hi, 0);
    trace[0] = 0;
    event_active(lo, EV_TIMEOUT, 1);
    event_active(mid, EV_TIMEOUT, 1);
    event_active(hi, EV_TIMEOUT, 1);
    printf("active count %d\n", event_base_get_num_events(b, EVENT_BASE_COUNT_ACTIVE));
    event_base_loop(b, EVLOOP_NONBLOCK);
    printf("priority order: %s\n", trace);
    event_free(lo);
    event_free(hi);
    event_free(mid);
    event_base_free(b);
}

static int sig_calls;
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)arg;
    sig_calls++;
    printf("signal cb: sig %d what 0x%x\n", sig, what);
}

static void test_signal(void)
{
    struct event *ev = evsignal_new(base, SIGUSR1, on_signal, NULL);
    evsignal_add(ev, NULL);
    raise(SIGUSR1);
    event_base_loop(base, EVLOOP_ONCE);
    printf("signal calls %d pending after %d\n", sig_calls, evsignal_pending(ev, NULL));
    event_free(ev);
}

static void once_cb(evutil_socket_t fd, short what, void *arg)
{
    printf("once cb: fd %d what 0x%x arg %s\n", fd, what, (const char *)arg);
}

static void test_once_and_exit(void)
{
    struct timeval t = {0, 5000};
    printf("base_once timer: %d\n", event_base_once(base, -1, EV_TIMEOUT, once_cb, "t", &t));
    printf("base_once bad: %d\n", event_base_once(base, -1, EV_SIGNAL, once_cb, "s", &t));
    event_base_dispatch(base);
    struct timeval ex = {0, 60000};
    struct event *forever = event_new(base, -1, EV_PERSIST, tick, "p");
    struct timeval t5 = {0, 5000};
    event_add(forever, &t5);
    trace[0] = 0;
    event_base_loopexit(base, &ex);
    int r = event_base_dispatch(base);
    int exited = event_base_got_exit(base), broke = event_base_got_break(base);
    printf("loopexit: dispatch %d got_exit %d got_break %d ticks>=2 %d\n", r, exited, broke,
           strlen(trace) >= 2);
    event_free(forever);
}

static void breaker(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    note("B");
    event_base_loopbreak(arg);
}

static void test_break(void)
{
    struct event *a = event_new(base, -1, 0, breaker, base), *b = event_new(base, -1, 0, tick, "x");
    trace[0] = 0;
    event_active(a, EV_TIMEOUT, 1);
    event_active(b, EV_TIMEOUT, 1);
    int r = event_base_dispatch(base);
    printf("loopbreak: %d trace %s got_break %d b-pending-active %d\n", r, trace, event_base_got_break(base),
           event_pending(b, EV_TIMEOUT, NULL) != 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("after second loop trace %s\n", trace);
    event_free(a);
    event_free(b);
}

static void self_free(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct event *self = arg;
    printf("self_free: running is self %d\n", event_base_get_running_event(base) == self);
    event_free(self);
}

static void test_free_in_callback(void)
{
    struct event *ev = event_new(base, -1, 0, self_free, event_self_cbarg());
    event_active(ev, EV_TIMEOUT, 1);
    printf("free in cb: loop %d\n", event_base_loop(base, EVLOOP_NONBLOCK));
    /* (event_base_get_running_event outside a callback crashes libevent 2.1.12; evrs
     * returns NULL, checked by the Rust tests.) */
}

static void test_caller_owned(void)
{
    struct event ev;
    memset(&ev, 0, sizeof ev);
    printf("zeroed initialized %d\n", event_initialized(&ev));
    event_assign(&ev, base, -1, 0, tick, "o");
    struct timeval t = {0, 1000};
    event_add(&ev, &t);
    printf("owned: initialized %d flags 0x%x base ok %d\n", event_initialized(&ev),
           ev.ev_evcallback.evcb_flags, ev.ev_base == base);
    trace[0] = 0;
    event_base_dispatch(base);
    printf("owned fired: %s flags 0x%x\n", trace, ev.ev_evcallback.evcb_flags);
    event_debug_unassign(&ev);
}

/* Re-assigning a pending event: undefined in libevent (2.1.12 spins or corrupts its timer
 * heap); evrs releases the old event, so the old timer never fires. evrs only. */
static void test_reassign_pending(void)
{
    struct event ev;
    memset(&ev, 0, sizeof ev);
    struct timeval t = {0, 1000};
    event_assign(&ev, base, -1, 0, tick, "o");
    event_add(&ev, &t);
    event_assign(&ev, base, -1, 0, tick, "n");
    trace[0] = 0;
    int lr = event_base_dispatch(base);
    printf("reassigned: loop %d trace '%s'\n", lr, trace);
    event_add(&ev, &t);
    event_base_dispatch(base);
    printf("reassigned fired: '%s'\n", trace);
    event_debug_unassign(&ev);
}

static void compat_cb(int fd, short what, void *arg)
{
    (void)fd;
    printf("compat cb what 0x%x arg %s\n", what, (const char *)arg);
}

static void test_compat(void)
{
    struct event_base *old = base;
    struct event_base *b = event_init();
    struct event ev;
    event_set(&ev, -1, 0, compat_cb, "c");
    printf("compat: base is current %d\n", ev.ev_base == b);
    struct timeval t = {0, 1000};
    event_add(&ev, &t);
    printf("compat dispatch %d\n", event_dispatch());
    printf("event_loop empty %d\n", event_loop(EVLOOP_NONBLOCK));
    event_once(-1, EV_TIMEOUT, compat_cb, "once", &t);
    event_dispatch();
    event_set(&ev, -1, 0, compat_cb, "moved");
    int set = event_base_set(old, &ev);
    printf("event_base_set %d base ok %d\n", set, ev.ev_base == old);
    event_add(&ev, &t);
    event_base_dispatch(old);
    event_base_free(b);
}

/* An I/O event on fd -1 is added but never polled; its timeout works. Virtual events (the
 * exported internals libevent's tests use) keep the loop from running out. */
void event_base_add_virtual_(struct event_base *);
void event_base_del_virtual_(struct event_base *);
static void on_fd_minus_one(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    printf("fd -1 event: fd %d what 0x%x\n", (int)fd, what);
}
void event_active_later_(struct event *, int);
static void say(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    printf("  %s ran (what 0x%x)\n", (const char *)arg, what);
}
static struct event *later_a, *later_b;
static void first(evutil_socket_t fd, short what, void *arg)
{
    say(fd, what, arg);
    event_active_later_(later_a, EV_READ);
    event_active(later_b, EV_WRITE, 1);
}
static void test_active_later(void)
{
    /* From a callback: an event_active one runs in the same pass, an active-later one
     * only after the next poll (though in the same loop: it is active work). */
    later_a = event_new(base, -1, 0, say, "later");
    later_b = event_new(base, -1, 0, say, "now");
    struct event *f = event_new(base, -1, 0, first, "first");
    event_active(f, EV_TIMEOUT, 1);
    printf("active_later: first pass:\n");
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("active_later: pending 0x%x; second pass:\n", event_pending(later_a, EV_READ | EV_WRITE | EV_TIMEOUT, NULL));
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_free(later_a);
    event_free(later_b);
    event_free(f);
}

static void test_fd_minus_one_and_virtual(void)
{
    struct event *ev = event_new(base, -1, EV_READ, on_fd_minus_one, NULL);
    struct timeval t = {0, 20 * 1000};
    int added = event_add(ev, &t);
    int pending = event_pending(ev, EV_READ | EV_WRITE | EV_TIMEOUT, NULL);
    printf("fd -1: add %d pending 0x%x added %d\n", added, pending,
           event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED));
    printf("fd -1: loop %d\n", event_base_loop(base, 0));
    event_free(ev);
    event_base_add_virtual_(base);
    int n = event_base_get_num_events(base, EVENT_BASE_COUNT_VIRTUAL);
    printf("virtual: count %d, nonblocking loop %d\n", n, event_base_loop(base, EVLOOP_NONBLOCK));
    event_base_del_virtual_(base);
    n = event_base_get_num_events(base, EVENT_BASE_COUNT_VIRTUAL);
    int max = event_base_get_max_events(base, EVENT_BASE_COUNT_VIRTUAL, 1);
    printf("virtual: count %d max %d, nonblocking loop %d\n", n, max, event_base_loop(base, EVLOOP_NONBLOCK));
}

/* Signals go to one base: the latest to add a signal event or start its loop (libevent's
 * rule on Linux). */
static int switch_hits;
static void switch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evsignal_del((struct event *)arg);
    switch_hits++;
}
static void test_signal_switchbase(void)
{
    struct event ev1, ev2;
    struct event_base *b1 = event_base_new(), *b2 = event_base_new();
    evsignal_assign(&ev1, b1, SIGUSR2, switch_cb, &ev1);
    evsignal_assign(&ev2, b2, SIGUSR2, switch_cb, &ev2);
    evsignal_add(&ev1, NULL);
    evsignal_add(&ev2, NULL);
    raise(SIGUSR2);
    event_base_loop(b1, EVLOOP_NONBLOCK);
    int on1 = switch_hits;
    event_base_loop(b2, EVLOOP_NONBLOCK);
    printf("switchbase: first to base1 %d, to base2 %d\n", on1, switch_hits - on1);
    /* base2's loop (the last to start) kept the signals; its event is gone, so the
     * delivery is lost, and the process survives: base1 still watches. */
    switch_hits = 0;
    raise(SIGUSR2);
    event_base_loop(b1, EVLOOP_NONBLOCK);
    event_base_loop(b2, EVLOOP_NONBLOCK);
    printf("switchbase: second delivered %d, still alive\n", switch_hits);
    event_del(&ev1);
    event_base_free(b1);
    event_base_free(b2);
}

int main(int argc, char **argv)
{
    printf("version %s %x size %zu\n", event_get_version(), event_get_version_number(),
           event_get_struct_event_size());
    base = event_base_new();
    printf("method %s features 0x%x\n", event_base_get_method(base), event_base_get_features(base));
    test_timer_order();
    test_persist_read();
    test_priorities();
    test_signal();
    test_once_and_exit();
    test_break();
    test_free_in_callback();
    test_caller_owned();
    test_fd_minus_one_and_virtual();
    test_active_later();
    test_signal_switchbase();
    if (argc > 1 && !strcmp(argv[1], "evrs-only")) {
        test_reassign_pending();
        /* Events outliving their base: libevent follows the dangling pointer. */
        struct event_base *b2 = event_base_new();
        struct event *orphan = event_new(b2, -1, 0, tick, "x");
        struct timeval t = {0, 1000};
        event_add(orphan, &t);
        event_base_free(b2);
        printf("orphan: del %d add %d pending %d\n", event_del(orphan), event_add(orphan, &t),
               event_pending(orphan, EV_TIMEOUT, NULL));
        event_free(orphan);
    }
    test_compat();
    printf("empty loop: %d\n", event_base_loop(base, 0));
    event_base_free(base);
    printf("done\n");
    return 0;
}
