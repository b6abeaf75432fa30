/* libev 4 peer: pipechain (ev_io) and timers (ev_timer) on an epoll loop.
 * Prints SAMPLE lines. */
#include "common.h"

#include <ev.h>

/* "libev", or "libev-uring" with EVRS_BENCH_LIBEV_BACKEND=io_uring (libev's io_uring
 * backend, EVBACKEND_IOURING, instead of epoll). */
static const char *PEER = "libev";
static unsigned backend = EVBACKEND_EPOLL;
static struct ev_loop *loop;
static size_t active, writes;

static void read_cb(struct ev_loop *l, ev_io *w, int revents)
{
    (void)l;
    (void)revents;
    forward((size_t)(uintptr_t)w->data);
}

static uint64_t run_one(void)
{
    ring_inject(active, writes);
    uint64_t target = active + writes;
    uint64_t t0 = now_ns();
    while (run_reads < target)
        ev_run(loop, EVRUN_ONCE);
    return now_ns() - t0;
}

static struct ev_loop *new_loop(void)
{
    struct ev_loop *l = ev_loop_new(backend | EVFLAG_NOENV);
    if (!l) {
        fprintf(stderr, "ev_loop_new failed (backend %#x)\n", backend);
        exit(1);
    }
    return l;
}

static void pipechain(const struct params *p)
{
    loop = new_loop();
    ring_new(p->n, p->duplex);
    active = p->active;
    writes = p->writes;
    ev_io *io = calloc(p->n, sizeof *io);
    if (!io)
        die("calloc");
    for (size_t i = 0; i < p->n; i++) {
        ev_io_init(&io[i], read_cb, ring_rd[i], EV_READ);
        io[i].data = (void *)(uintptr_t)i;
        ev_io_start(loop, &io[i]);
    }
    pipechain_samples(PEER, p, run_one);
}

static void noop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

static void timers_adddel(const struct params *p)
{
    loop = new_loop();
    uint64_t *d = deadlines_us(p->n, 1, 1000);
    ev_timer *t = calloc(p->n, sizeof *t);
    if (!t)
        die("calloc");
    for (size_t i = 0; i < p->n; i++)
        ev_timer_init(&t[i], noop_cb, 0., 0.);
    for (size_t rep = 0; rep < p->warmup + p->reps; rep++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < p->n; i++) {
            ev_timer_set(&t[i], (double)d[i] * 1e-6, 0.);
            ev_timer_start(loop, &t[i]);
        }
        for (size_t i = 0; i < p->n; i++)
            ev_timer_stop(loop, &t[i]);
        uint64_t ns = now_ns() - t0;
        if (rep >= p->warmup)
            sample("timers_adddel", PEER, p->n, "op_ns", ns / p->n);
    }
}

static size_t fired;

static void count_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
    fired++;
}

static void timers_fire(const struct params *p)
{
    uint64_t *d = deadlines_us(p->n, 1, 100);
    for (size_t rep = 0; rep < p->warmup + p->reps; rep++) {
        loop = new_loop();
        fired = 0;
        uint64_t c0 = cpu_ns(), t0 = now_ns();
        /* libev watchers live in user memory; allocating them is part of the run here,
         * as event_new is for libevent. */
        ev_timer *t = malloc(p->n * sizeof *t);
        if (!t)
            die("malloc");
        ev_now_update(loop);
        for (size_t i = 0; i < p->n; i++) {
            ev_timer_init(&t[i], count_cb, (double)d[i] * 1e-6, 0.);
            ev_timer_start(loop, &t[i]);
        }
        ev_run(loop, 0);
        uint64_t c1 = cpu_ns(), t1 = now_ns();
        if (fired != p->n) {
            fprintf(stderr, "fired %zu of %zu\n", fired, p->n);
            exit(1);
        }
        if (rep >= p->warmup) {
            sample("timers_fire", PEER, p->n, "cpu_ns", c1 - c0);
            sample("timers_fire", PEER, p->n, "wall_ns", t1 - t0);
        }
        free(t);
        ev_loop_destroy(loop);
    }
}

int main(int argc, char **argv)
{
    const char *b = getenv("EVRS_BENCH_LIBEV_BACKEND");
    if (b && strcmp(b, "io_uring") == 0) {
        backend = EVBACKEND_IOURING;
        PEER = "libev-uring";
    }
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
