/* evrs C ABI test: what libevent's own regress tests thread/forking and
 * signal/signal_pipeloss check, through the public API only (those two read private fields
 * of struct event_base, th_notify_fd and sig.ev_signal_pair, so the regress runner excludes
 * them). Run on both libraries.
 *
 *   fork      a threaded, notifiable base with a SIGCHLD event forks; the child calls
 *             event_reinit and drives the base from 10 threads (each arms a timer and waits
 *             for it 20 times, as thread/basic does); the parent's loop ends on SIGCHLD;
 *             then the parent drives its base from threads too.
 *   pipeloss  two bases with signal events, freed: every fd they opened is closed.
 *
 * Every wait is bounded: alarm() kills a run that hangs. */
#include <event2/event.h>
#include <event2/event_compat.h>
#include <event2/event_struct.h>
#include <event2/thread.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NUM_THREADS 10
#define NUM_ITERATIONS 20

struct cond_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fired;
};

static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static int count;

static void wake(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cond_wait *cw = arg;
    pthread_mutex_lock(&cw->mu);
    cw->fired = 1;
    pthread_cond_signal(&cw->cv);
    pthread_mutex_unlock(&cw->mu);
}

/* One thread: a timer of its own on the shared base, armed from this thread and waited
 * for, NUM_ITERATIONS times; the last thread to finish ends the loop. */
static void *worker(void *arg)
{
    struct event_base *base = arg;
    struct cond_wait cw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct event ev;
    evtimer_assign(&ev, base, wake, &cw);
    for (int i = 0; i < NUM_ITERATIONS; i++) {
        struct timeval tv = {0, 3000};
        pthread_mutex_lock(&cw.mu);
        cw.fired = 0;
        if (evtimer_add(&ev, &tv) != 0)
            abort();
        while (!cw.fired)
            pthread_cond_wait(&cw.cv, &cw.mu);
        pthread_mutex_unlock(&cw.mu);
        pthread_mutex_lock(&count_mu);
        ++count;
        pthread_mutex_unlock(&count_mu);
    }
    pthread_mutex_lock(&count_mu);
    if (count >= NUM_THREADS * NUM_ITERATIONS)
        event_base_loopexit(base, NULL);
    pthread_mutex_unlock(&count_mu);
    return NULL;
}

/* Drives `base` from NUM_THREADS threads while this thread runs its loop; 1 if every timer
 * of every thread fired. */
static int threads_on(struct event_base *base)
{
    pthread_t t[NUM_THREADS];
    struct event keep;
    struct timeval far = {1000, 0};
    count = 0;
    evtimer_assign(&keep, base, NULL, NULL);
    event_add(&keep, &far);
    for (int i = 0; i < NUM_THREADS; i++)
        pthread_create(&t[i], NULL, worker, base);
    event_base_dispatch(base);
    for (int i = 0; i < NUM_THREADS; i++)
        pthread_join(t[i], NULL);
    event_del(&keep);
    return count == NUM_THREADS * NUM_ITERATIONS;
}

static int got_sigchld;

static void sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct timeval tv = {0, 100000};
    got_sigchld++;
    event_base_loopexit(arg, &tv);
}

static int fork_test(void)
{
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    printf("notifiable: %d\n", evthread_make_base_notifiable(base));
    struct event *sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, base);
    event_add(sigchld, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child: its base works again after event_reinit, threads and all. */
        if (event_reinit(base) != 0)
            _exit(2);
        int ok = threads_on(base);
        event_free(sigchld);
        event_base_free(base);
        _exit(ok ? 0 : 3);
    }
    int r = event_base_dispatch(base);
    int status = 0;
    printf("parent loop: returned %d, got SIGCHLD %d\n", r, got_sigchld > 0);
    printf("waitpid: %d\n", waitpid(pid, &status, 0) == pid);
    printf("child: exited %d, status %d\n", WIFEXITED(status), WEXITSTATUS(status));
    /* The parent's base is untouched by the child's reinit and threads. */
    printf("parent after the fork, threads: all fired %d\n", threads_on(base));
    event_free(sigchld);
    event_base_free(base);
    return 0;
}

/* Open fds of this process (the directory stream's own included: the same both times). */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void noop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int pipeloss_test(void)
{
    int before = open_fds();
    struct event_base *b1 = event_init();
    struct event *s1 = evsignal_new(b1, SIGUSR1, noop, NULL);
    event_add(s1, NULL);
    struct event_base *b2 = event_init();
    struct event *s2 = evsignal_new(b2, SIGUSR2, noop, NULL);
    event_add(s2, NULL);
    int during = open_fds();
    event_free(s2);
    event_base_free(b2);
    event_free(s1);
    event_base_free(b1);
    printf("bases opened fds: %d\n", during > before);
    printf("fds left open after event_base_free: %d\n", open_fds() - before);
    return 0;
}

int main(int argc, char **argv)
{
    alarm(30);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    int r = 1;
    if (!strcmp(mode, "fork"))
        r = fork_test();
    else if (!strcmp(mode, "pipeloss"))
        r = pipeloss_test();
    printf("done\n");
    return r;
}
