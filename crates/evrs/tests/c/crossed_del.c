/* Two libevent bases, each run by its own thread. Event A (base 1) and event B (base 2) are
 * active at once; each callback waits until both run, then event_del()s the other event —
 * whose callback is running on the other thread. With evthread_use_pthreads, libevent's
 * event_del waits for that callback to finish, so each thread waits for the other: a
 * deadlock. An alarm turns the hang into death by SIGALRM, which the Rust test expects.
 * Exit 0 (both callbacks returned) would mean libevent did not deadlock. */
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_barrier_t both;
static struct event *ev_a, *ev_b;

static void on_a(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    pthread_barrier_wait(&both);
    event_del(ev_b); /* B's callback runs on thread 2: waits for it */
}

static void on_b(evutil_socket_t fd, short what, void *arg)
{
    (void)fd; (void)what; (void)arg;
    pthread_barrier_wait(&both);
    event_del(ev_a); /* A's callback runs on thread 1: waits for it */
}

static void *run(void *base)
{
    event_base_dispatch(base);
    return NULL;
}

int main(void)
{
    unsigned seconds = 3;
    if (evthread_use_pthreads() != 0)
        return 2;
    struct event_base *b1 = event_base_new(), *b2 = event_base_new();
    if (!b1 || !b2)
        return 2;
    pthread_barrier_init(&both, NULL, 2);
    ev_a = event_new(b1, -1, 0, on_a, NULL);
    ev_b = event_new(b2, -1, 0, on_b, NULL);
    event_active(ev_a, EV_TIMEOUT, 1);
    event_active(ev_b, EV_TIMEOUT, 1);
    alarm(seconds);
    pthread_t t1, t2;
    pthread_create(&t1, NULL, run, b1);
    pthread_create(&t2, NULL, run, b2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    printf("both callbacks returned\n");
    return 0;
}
