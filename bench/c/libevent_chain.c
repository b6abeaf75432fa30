/* libevent's pipechain as a library (one instance per process), for the in-process A/B in
 * src/bin/pipechain_ab.rs: the same ring and callback as libevent_bench.c, driven by calls
 * from Rust instead of its own main. */
#include <event2/event.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static struct event_base *base;
static struct event **evs;
static int *rd, *wr;
static size_t ring_n;
static int ring_duplex;
static uint64_t reads, writes_left;

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    size_t i = (size_t)(uintptr_t)arg;
    char buf[1]; /* one byte per callback, as in libevent's bench.c and the other peers */
    ssize_t r = read(fd, buf, sizeof buf);
    if (r <= 0)
        return;
    reads += (uint64_t)r;
    uint64_t k = (uint64_t)r < writes_left ? (uint64_t)r : writes_left;
    if (k > 0) {
        writes_left -= k;
        if (write(wr[i + 1 == ring_n ? 0 : i + 1], buf, k) < 0)
            abort();
    }
}

/* Builds the ring and one persistent read event per element; 0 on success. Pairs layout: a
 * socketpair per element. Duplex (n even): n/2 socketpairs, each carrying two elements, one
 * per direction (as Ring in src/common.rs). */
int evrs_ab_libevent_new(size_t n, int duplex)
{
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    rd = calloc(n, sizeof *rd);
    wr = calloc(n, sizeof *wr);
    evs = calloc(n, sizeof *evs);
    if (!base || !rd || !wr || !evs)
        return -1;
    ring_n = n;
    ring_duplex = duplex;
    size_t pairs = duplex ? n / 2 : n;
    for (size_t i = 0; i < pairs; i++) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
            return -1;
        if (duplex) {
            rd[i] = fds[1];
            wr[i] = fds[0];
            rd[i + pairs] = fds[0];
            wr[i + pairs] = fds[1];
        } else {
            rd[i] = fds[0];
            wr[i] = fds[1];
        }
    }
    for (size_t i = 0; i < n; i++) {
        evs[i] = event_new(base, rd[i], EV_READ | EV_PERSIST, read_cb, (void *)(uintptr_t)i);
        if (!evs[i] || event_add(evs[i], NULL) != 0)
            return -1;
    }
    return 0;
}

/* One run: inject `active` bytes, forward `writes` more, dispatch until all are read. */
int evrs_ab_libevent_run(size_t active, size_t writes)
{
    size_t space = ring_n / (active ? active : 1);
    if (space == 0)
        space = 1;
    reads = 0;
    writes_left = writes;
    for (size_t k = 0; k < active; k++)
        if (write(wr[(k * space) % ring_n], "e", 1) < 0)
            return -1;
    while (reads < active + writes)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            return -1;
    return 0;
}

/* Frees the ring, its events and the base (so a new chain can be built). */
void evrs_ab_libevent_free(void)
{
    for (size_t i = 0; i < ring_n; i++) {
        if (evs[i])
            event_free(evs[i]);
        close(rd[i]); /* in the duplex layout every fd is some element's read end */
        if (!ring_duplex)
            close(wr[i]);
    }
    free(evs);
    free(rd);
    free(wr);
    event_base_free(base);
    evs = NULL;
    rd = wr = NULL;
    base = NULL;
    ring_n = 0;
}
