/* libevent 2.1 peer: pipechain and timers through the public event API
 * (event_new / event_add / event_del / event_base_loop). Prints SAMPLE lines. */
#include "common.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>

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

/* ---- xthread: cross-thread activation (evthread_use_pthreads, notifiable base) ---- */

static size_t xt_callbacks; /* loop thread only */
static size_t xt_nprod, xt_k;
static struct event *xt_done_ev;
static atomic_size_t xt_finished;
static pthread_barrier_t xt_start;

static void xt_count_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    xt_callbacks++;
}

static void xt_done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

/* event_active() k times on the producer's own event. libevent coalesces the activation of
 * an event that is already active (it only ORs the result flags), so callbacks <= k. The
 * last producer to finish activates the done event, which is queued behind every earlier
 * activation and loopbreaks. */
static void *xt_producer(void *arg)
{
    struct event *ev = arg;
    pthread_barrier_wait(&xt_start);
    for (size_t i = 0; i < xt_k; i++)
        event_active(ev, EV_READ, 1);
    if (atomic_fetch_add(&xt_finished, 1) + 1 == xt_nprod)
        event_active(xt_done_ev, EV_READ, 1);
    return NULL;
}

static struct event_base *xt_base(void)
{
    /* Only the xthread children turn locking on: the other benchmarks measure the default,
     * lock-free libevent. */
    if (evthread_use_pthreads() != 0)
        die("evthread_use_pthreads");
    struct event_base *b = new_base();
    if (evthread_make_base_notifiable(b) != 0)
        die("evthread_make_base_notifiable");
    return b;
}

static void xthread_tput(const struct params *p)
{
    base = xt_base();
    xt_nprod = p->n ? p->n : 1;
    xt_k = p->writes;
    struct event **evs = malloc(xt_nprod * sizeof *evs);
    pthread_t *th = malloc(xt_nprod * sizeof *th);
    uint64_t *wall = malloc((p->reps + 1) * sizeof *wall);
    uint64_t *cbs = malloc((p->reps + 1) * sizeof *cbs);
    if (!evs || !th || !wall || !cbs)
        die("malloc");
    for (size_t i = 0; i < xt_nprod; i++)
        if (!(evs[i] = event_new(base, -1, 0, xt_count_cb, NULL)))
            die("event_new");
    if (!(xt_done_ev = event_new(base, -1, 0, xt_done_cb, NULL)))
        die("event_new");
    uint64_t total = (uint64_t)xt_nprod * xt_k;
    for (size_t rep = 0; rep < p->warmup + p->reps; rep++) {
        xt_callbacks = 0;
        atomic_store(&xt_finished, 0);
        if (pthread_barrier_init(&xt_start, NULL, (unsigned)xt_nprod + 1) != 0)
            die("pthread_barrier_init");
        for (size_t i = 0; i < xt_nprod; i++)
            if (pthread_create(&th[i], NULL, xt_producer, evs[i]) != 0)
                die("pthread_create");
        pthread_barrier_wait(&xt_start);
        uint64_t t0 = now_ns();
        event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
        uint64_t t1 = now_ns();
        for (size_t i = 0; i < xt_nprod; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&xt_start);
        if (rep >= p->warmup) {
            wall[rep - p->warmup] = t1 - t0;
            cbs[rep - p->warmup] = xt_callbacks;
        }
    }
    const char *label = "libevent/event_active";
    for (size_t i = 0; i < p->reps; i++) {
        uint64_t c = cbs[i] ? cbs[i] : 1;
        sample("xthread_tput", label, p->n, "ps_per_cmd", wall[i] * 1000 / (total ? total : 1));
        sample("xthread_tput", label, p->n, "ps_per_cb", wall[i] * 1000 / c);
        sample("xthread_tput", label, p->n, "cb_per_kcmd", cbs[i] * 1000 / (total ? total : 1));
    }
}

static atomic_uint_fast64_t xt_ping, xt_pong;
static uint64_t xt_warm, xt_reps, *xt_rtt;
static struct event *xt_ping_ev;

static void xt_pong_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    atomic_store_explicit(&xt_pong, atomic_load_explicit(&xt_ping, memory_order_acquire),
                          memory_order_release);
}

static void *xt_pinger(void *arg)
{
    (void)arg;
    for (uint64_t i = 1; i <= xt_warm + xt_reps; i++) {
        uint64_t t0 = now_ns();
        atomic_store_explicit(&xt_ping, i, memory_order_release);
        event_active(xt_ping_ev, EV_READ, 1);
        while (atomic_load_explicit(&xt_pong, memory_order_acquire) != i) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        if (i > xt_warm)
            xt_rtt[i - xt_warm - 1] = now_ns() - t0;
    }
    event_active(xt_done_ev, EV_READ, 1);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void xthread_lat(const struct params *p)
{
    base = xt_base();
    xt_warm = p->warmup;
    xt_reps = p->reps;
    xt_rtt = malloc((p->reps + 1) * sizeof *xt_rtt);
    if (!xt_rtt)
        die("malloc");
    if (!(xt_ping_ev = event_new(base, -1, 0, xt_pong_cb, NULL)) ||
        !(xt_done_ev = event_new(base, -1, 0, xt_done_cb, NULL)))
        die("event_new");
    pthread_t th;
    if (pthread_create(&th, NULL, xt_pinger, NULL) != 0)
        die("pthread_create");
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_join(th, NULL);
    if (!xt_reps)
        return;
    qsort(xt_rtt, xt_reps, sizeof *xt_rtt, cmp_u64);
    const char *label = "libevent/event_active";
    sample("xthread_lat", label, p->n, "rtt_p50_ns", xt_rtt[(size_t)((xt_reps - 1) * 0.5 + 0.5)]);
    sample("xthread_lat", label, p->n, "rtt_p99_ns", xt_rtt[(size_t)((xt_reps - 1) * 0.99 + 0.5)]);
    sample("xthread_lat", label, p->n, "rtt_min_ns", xt_rtt[0]);
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
    else if (!strcmp(p.bench, "xthread_tput"))
        xthread_tput(&p);
    else if (!strcmp(p.bench, "xthread_lat"))
        xthread_lat(&p);
    else {
        fprintf(stderr, "unknown benchmark %s\n", p.bench);
        return 2;
    }
    return 0;
}
