/* libev 4 timers for the in-process timer A/B (src/bin/timers_ab.rs): the same two
 * measures as libev_bench.c's timers_adddel and timers_fire, called from Rust with the
 * deadlines the Rust peers use, so every peer runs in one process, turn by turn. */
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>

static void noop_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
}

static size_t fired;

static void count_cb(struct ev_loop *l, ev_timer *w, int revents)
{
    (void)l;
    (void)w;
    (void)revents;
    fired++;
}

/* State of the add+del measure: a loop and n caller-owned watchers, made once. */
static struct ev_loop *adddel_loop;
static ev_timer *adddel_timers;
static size_t adddel_n;

int evrs_ab_libev_adddel_new(size_t n)
{
    adddel_loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    adddel_timers = calloc(n, sizeof *adddel_timers);
    if (!adddel_loop || !adddel_timers)
        return -1;
    adddel_n = n;
    for (size_t i = 0; i < n; i++)
        ev_timer_init(&adddel_timers[i], noop_cb, 0., 0.);
    return 0;
}

/* One round: every watcher started with its timeout (µs), then every one stopped. */
void evrs_ab_libev_adddel_run(const uint64_t *d_us)
{
    for (size_t i = 0; i < adddel_n; i++) {
        ev_timer_set(&adddel_timers[i], (double)d_us[i] * 1e-6, 0.);
        ev_timer_start(adddel_loop, &adddel_timers[i]);
    }
    for (size_t i = 0; i < adddel_n; i++)
        ev_timer_stop(adddel_loop, &adddel_timers[i]);
}

/* Re-arming: every watcher started once (untimed), then per round each one, in the order
 * given, stopped and started again with a new timeout (µs): a timeout pushed back on
 * activity, in no particular order. */
int evrs_ab_libev_rearm_new(size_t n, const uint64_t *d_us)
{
    if (evrs_ab_libev_adddel_new(n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        ev_timer_set(&adddel_timers[i], (double)d_us[i] * 1e-6, 0.);
        ev_timer_start(adddel_loop, &adddel_timers[i]);
    }
    return 0;
}

void evrs_ab_libev_rearm_run(const uint32_t *order, const uint64_t *d_us)
{
    for (size_t i = 0; i < adddel_n; i++) {
        ev_timer *t = &adddel_timers[order[i]];
        ev_timer_stop(adddel_loop, t);
        ev_timer_set(t, (double)d_us[i] * 1e-6, 0.);
        ev_timer_start(adddel_loop, t);
    }
}

void evrs_ab_libev_adddel_free(void)
{
    ev_loop_destroy(adddel_loop);
    free(adddel_timers);
    adddel_loop = NULL;
    adddel_timers = NULL;
}

/* n one-shot timers (µs) on a fresh loop: watchers allocated, started, run until the last
 * fired, loop destroyed. Returns the number that fired. */
size_t evrs_ab_libev_fire(size_t n, const uint64_t *d_us)
{
    struct ev_loop *l = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    ev_timer *t = malloc(n * sizeof *t);
    if (!l || !t)
        return 0;
    fired = 0;
    ev_now_update(l);
    for (size_t i = 0; i < n; i++) {
        ev_timer_init(&t[i], count_cb, (double)d_us[i] * 1e-6, 0.);
        ev_timer_start(l, &t[i]);
    }
    ev_run(l, 0);
    free(t);
    ev_loop_destroy(l);
    return fired;
}
