/* Shared by the C peers: the socketpair ring, the forwarding step, the deadline generator,
 * clocks and the SAMPLE line protocol. Mirrors bench/src/common.rs. */
#ifndef EVRS_BENCH_COMMON_H
#define EVRS_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_BUF 1 /* one byte per callback, as in libevent's bench.c */

struct params {
    const char *bench;
    size_t n, active, writes, reps, warmup;
    int duplex;
};

static int parse_params(int argc, char **argv, struct params *p)
{
    if (argc != 8) {
        fprintf(stderr,
                "usage: %s pipechain|timers_adddel|timers_fire N ACTIVE WRITES REPS WARMUP DUPLEX\n",
                argv[0]);
        return -1;
    }
    p->bench = argv[1];
    p->n = strtoul(argv[2], NULL, 10);
    p->active = strtoul(argv[3], NULL, 10);
    p->writes = strtoul(argv[4], NULL, 10);
    p->reps = strtoul(argv[5], NULL, 10);
    p->warmup = strtoul(argv[6], NULL, 10);
    p->duplex = atoi(argv[7]) != 0;
    return 0;
}

static void sample(const char *bench, const char *peer, size_t n, const char *metric, uint64_t v)
{
    printf("SAMPLE %s %s %zu %s %llu\n", bench, peer, n, metric, (unsigned long long)v);
}

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

/* xorshift64*, same seed and sequence as Rng in common.rs. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_next(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* n deadlines in microseconds, uniform in lo_ms..=hi_ms. */
static uint64_t *deadlines_us(size_t n, uint64_t lo_ms, uint64_t hi_ms)
{
    uint64_t *d = malloc(n * sizeof *d);
    if (!d)
        die("malloc");
    rng_state = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t lo = lo_ms * 1000, hi = hi_ms * 1000;
        d[i] = lo + rng_next() % (hi - lo + 1);
    }
    return d;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ULL +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ULL;
}

static uint64_t user_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000000ULL + (uint64_t)ru.ru_utime.tv_usec * 1000ULL;
}

/* The ring: element i is read at rd[i] and forwards to wr[(i + 1) % n]. Pairs layout: one
 * socketpair per element. Duplex layout: n/2 socketpairs (a, b), element j reads b (fed via
 * a) and element j + n/2 reads a (fed via b). See Ring in common.rs. */
static int *ring_rd, *ring_wr;
static size_t ring_n;
static uint64_t run_reads, run_writes_left;

static void ring_new(size_t n, int duplex)
{
    ring_n = n;
    ring_rd = calloc(n, sizeof(int));
    ring_wr = calloc(n, sizeof(int));
    if (!ring_rd || !ring_wr)
        die("calloc");
    if (duplex && n % 2) {
        fprintf(stderr, "duplex layout needs an even ring size\n");
        exit(1);
    }
    size_t pairs = duplex ? n / 2 : n;
    for (size_t i = 0; i < pairs; i++) {
        int fds[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
            die("socketpair");
        if (duplex) {
            ring_rd[i] = fds[1];
            ring_wr[i] = fds[0];
            ring_rd[i + pairs] = fds[0];
            ring_wr[i + pairs] = fds[1];
        } else {
            ring_rd[i] = fds[0];
            ring_wr[i] = fds[1];
        }
    }
}

static void ring_inject(size_t active, size_t writes)
{
    size_t space = ring_n / (active ? active : 1);
    if (space == 0)
        space = 1;
    run_reads = 0;
    run_writes_left = writes;
    for (size_t k = 0; k < active; k++)
        if (write(ring_wr[(k * space) % ring_n], "e", 1) < 0)
            die("write");
}

/* Read one byte, count it, forward one byte while the budget lasts. */
static inline size_t forward(size_t i)
{
    char buf[READ_BUF];
    ssize_t r = read(ring_rd[i], buf, READ_BUF);
    if (r <= 0)
        return 0;
    run_reads += (uint64_t)r;
    uint64_t k = (uint64_t)r < run_writes_left ? (uint64_t)r : run_writes_left;
    if (k > 0) {
        size_t next = i + 1 == ring_n ? 0 : i + 1;
        run_writes_left -= k;
        if (write(ring_wr[next], buf, k) < 0)
            die("write");
    }
    return (size_t)r;
}

/* Runs warmup + reps pipechain runs via run_one (which returns dispatch ns), then prints. */
static void pipechain_samples(const char *peer, const struct params *p, uint64_t (*run_one)(void))
{
    uint64_t *ns = malloc((p->reps + 1) * sizeof *ns);
    if (!ns)
        die("malloc");
    for (size_t i = 0; i < p->warmup; i++)
        run_one();
    uint64_t u0 = user_ns(), c0 = cpu_ns();
    for (size_t i = 0; i < p->reps; i++)
        ns[i] = run_one();
    uint64_t user = user_ns() - u0, cpu = cpu_ns() - c0;
    sample("pipechain", peer, p->n, "events", p->active + p->writes);
    for (size_t i = 0; i < p->reps; i++)
        sample("pipechain", peer, p->n, "run_ns", ns[i]);
    sample("pipechain", peer, p->n, "user_ns_per_run", user / (p->reps ? p->reps : 1));
    sample("pipechain", peer, p->n, "cpu_ns_per_run", cpu / (p->reps ? p->reps : 1));
    free(ns);
}

#endif
