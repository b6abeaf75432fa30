/* libevent 2.1 peer: pipechain and timers through the public event API
 * (event_new / event_add / event_del / event_base_loop). Prints SAMPLE lines. */
#include "common.h"

#include <event2/event.h>

static const char *PEER = "libevent";
static struct event_base *base;
static size_t active, writes;

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    forward((size_t)(uintptr_t)arg);
}

static uint64_t run_one(void)
{
    ring_inject(active, writes);
    uint64_t target = active + writes;
    uint64_t t0 = now_ns();
    while (run_reads < target)
        event_base_loop(base, EVLOOP_ONCE);
    return now_ns() - t0;
}

static struct event_base *new_base(void)
{
    struct event_config *cfg = event_config_new();
    /* Pin epoll (the default anyway) so EVENT_NO* variables cannot change the backend. */
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    struct event_base *b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!b) {
        fprintf(stderr, "event_base_new failed\n");
        exit(1);
    }
    return b;
}

static void pipechain(const struct params *p)
{
    base = new_base();
    ring_new(p->n, p->duplex);
    active = p->active;
    writes = p->writes;
    for (size_t i = 0; i < p->n; i++) {
        struct event *ev =
            event_new(base, ring_rd[i], EV_READ | EV_PERSIST, read_cb, (void *)(uintptr_t)i);
        if (!ev || event_add(ev, NULL) != 0)
            die("event_add");
    }
    pipechain_samples(PEER, p, run_one);
}

static void noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void timers_adddel(const struct params *p)
{
    base = new_base();
    uint64_t *d = deadlines_us(p->n, 1, 1000);
    struct event **ev = malloc(p->n * sizeof *ev);
    if (!ev)
        die("malloc");
    for (size_t i = 0; i < p->n; i++)
        ev[i] = event_new(base, -1, 0, noop_cb, NULL);
    for (size_t rep = 0; rep < p->warmup + p->reps; rep++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < p->n; i++) {
            struct timeval tv = {(time_t)(d[i] / 1000000), (suseconds_t)(d[i] % 1000000)};
            event_add(ev[i], &tv);
        }
        for (size_t i = 0; i < p->n; i++)
            event_del(ev[i]);
        uint64_t ns = now_ns() - t0;
        if (rep >= p->warmup)
            sample("timers_adddel", PEER, p->n, "op_ns", ns / p->n);
    }
}

static size_t fired;

static void count_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    fired++;
}

static void timers_fire(const struct params *p)
{
    uint64_t *d = deadlines_us(p->n, 1, 100);
    struct event **ev = malloc(p->n * sizeof *ev);
    if (!ev)
        die("malloc");
    for (size_t rep = 0; rep < p->warmup + p->reps; rep++) {
        base = new_base();
        fired = 0;
        uint64_t c0 = cpu_ns(), t0 = now_ns();
        for (size_t i = 0; i < p->n; i++) {
            struct timeval tv = {(time_t)(d[i] / 1000000), (suseconds_t)(d[i] % 1000000)};
            ev[i] = event_new(base, -1, 0, count_cb, NULL);
            event_add(ev[i], &tv);
        }
        event_base_dispatch(base);
        uint64_t c1 = cpu_ns(), t1 = now_ns();
        if (fired != p->n) {
            fprintf(stderr, "fired %zu of %zu\n", fired, p->n);
            exit(1);
        }
        if (rep >= p->warmup) {
            sample("timers_fire", PEER, p->n, "cpu_ns", c1 - c0);
            sample("timers_fire", PEER, p->n, "wall_ns", t1 - t0);
        }
        for (size_t i = 0; i < p->n; i++)
            event_free(ev[i]);
        event_base_free(base);
    }
}

int main(int argc, char **argv)
{
    struct params p;
    if (parse_params(argc, argv, &p) != 0)
        return 2;
    if (!strcmp(p.bench, "pipechain"))
        pipechain(&p);
    else if (!strcmp(p.bench, "timers_adddel"))
        timers_adddel(&p);
    else if (!strcmp(p.bench, "timers_fire"))
        timers_fire(&p);
    else {
        fprintf(stderr, "unknown benchmark %s\n", p.bench);
        return 2;
    }
    return 0;
}
