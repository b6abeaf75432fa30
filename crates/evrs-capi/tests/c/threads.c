/* evrs C ABI test: threaded bases (evthread_use_pthreads, custom lock callbacks), run on
 * both libraries. One thread runs the loop; the main thread changes the base meanwhile.
 * Every wait is bounded: alarm() kills a run that hangs. */
#include <event2/event.h>
#include <event2/event_compat.h>
#include <event2/thread.h>
#include <event2/bufferevent.h>
#include <event2/buffer.h>
#include <pthread.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;

/* libevent's exported data, which libevent's own tests read directly: the program gets a
 * copy (a copy relocation) that the library must keep current. */
extern struct evthread_lock_callbacks evthread_lock_fns_;
extern struct event_base *event_global_current_base_;
static pthread_t loop_thread;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void *run_loop(void *arg)
{
    (void)arg;
    int r = event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    pthread_mutex_lock(&mu);
    printf("loop returned %d, got_break %d\n", r, event_base_got_break(base));
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void start_loop(void)
{
    pthread_create(&loop_thread, NULL, run_loop, NULL);
    usleep(50 * 1000); /* let it reach its wait */
}

static void stop_loop(void)
{
    event_base_loopbreak(base);
    pthread_join(loop_thread, NULL);
}

/* ---- a flag the main thread waits on (bounded) --------------------------------------- */
static int flag;
static void set_flag(int v)
{
    pthread_mutex_lock(&mu);
    flag = v;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}
static int wait_flag(int v)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += 5;
    pthread_mutex_lock(&mu);
    while (flag != v)
        if (pthread_cond_timedwait(&cv, &mu, &at) != 0)
            break;
    int ok = flag == v;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* ---- callbacks ------------------------------------------------------------------------ */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)arg;
    printf("timer: what %d, on the loop thread %d\n", what, pthread_equal(pthread_self(), loop_thread) != 0);
    set_flag(1);
}

/* Adds a 10 ms timer from this (not the loop's) thread and waits for it to run there. */
static struct event *timer_from_this_thread(void)
{
    struct event *t = evtimer_new(base, on_timer, NULL);
    struct timeval tv = {0, 10 * 1000};
    set_flag(0);
    evtimer_add(t, &tv);
    printf("timer ran: %d\n", wait_flag(1));
    return t;
}

static int activations;
static void on_active(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    activations++;
    set_flag(activations);
}

static volatile int cb_done, slow_calls;
static void slow(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    slow_calls++;
    cb_done = 0;
    set_flag(100);
    usleep(200 * 1000);
    cb_done = 1;
}

static void del_while_running(const char *name, short extra, int (*del)(struct event *))
{
    struct event *ev = event_new(base, -1, EV_PERSIST | extra, slow, NULL);
    set_flag(0);
    event_active(ev, EV_TIMEOUT, 1);
    if (!wait_flag(100)) {
        printf("%s: the callback never ran\n", name);
        return;
    }
    int r = del(ev);
    printf("%s: returned %d, after the callback %d\n", name, r, cb_done);
    /* Let the callback finish before the memory goes. */
    usleep(250 * 1000);
    event_free(ev);
}

/* event_free_finalize from another thread while the callback runs: it returns at once;
 * the finalizer runs on the loop thread once the callback has returned. */
static volatile int fin_saw_done = -1, fin_on_loop = -1;
static void finalizer(struct event *ev, void *arg)
{
    (void)ev;
    (void)arg;
    fin_saw_done = cb_done;
    fin_on_loop = pthread_equal(pthread_self(), loop_thread) != 0;
    set_flag(200);
}
static void finalize_while_running(void)
{
    struct event *ev = event_new(base, -1, EV_PERSIST | EV_FINALIZE, slow, NULL);
    set_flag(0);
    event_active(ev, EV_TIMEOUT, 1);
    if (!wait_flag(100)) {
        printf("finalize: the callback never ran\n");
        return;
    }
    int r = event_free_finalize(0, ev, finalizer);
    int returned_before = cb_done == 0;
    int ran = wait_flag(200);
    printf("event_free_finalize while running: returned %d at once %d; finalizer ran %d after the callback %d on the loop thread %d\n",
           r, returned_before, ran, fin_saw_done, fin_on_loop);
}

/* event_del of a persistent event that stays ready: it waits for the call running when it
 * was made, not for the next ones (which start at once). */
static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}
static void del_of_a_ready_event(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct event *ev = event_new(base, sv[1], EV_READ | EV_PERSIST, slow, NULL);
    event_add(ev, NULL);
    set_flag(0);
    write(sv[0], "x", 1); /* never read: the event stays ready */
    if (!wait_flag(100)) {
        printf("ready event: the callback never ran\n");
        return;
    }
    int before = slow_calls;
    double t0 = now_ms();
    event_del(ev);
    double waited = now_ms() - t0;
    printf("ready event: event_del waited for one call only %d\n", waited > 100 && waited < 450);
    usleep(350 * 1000);
    printf("ready event: calls after event_del returned %d\n", slow_calls - before);
    event_free(ev);
    close(sv[0]);
    close(sv[1]);
}

/* ---- bufferevent written from another thread ------------------------------------------ */
static void bufferevent_from_another_thread(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_lock(bev);
    bufferevent_write(bev, "hello ", 6);
    evbuffer_add(bufferevent_get_output(bev), "threads", 7);
    bufferevent_unlock(bev);
    char buf[64];
    size_t got = 0;
    struct pollfd p = {sv[1], POLLIN, 0};
    while (got < 13 && poll(&p, 1, 5000) == 1) {
        ssize_t n = read(sv[1], buf + got, sizeof buf - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    printf("bufferevent: peer read %d bytes: %.*s\n", (int)got, (int)got, buf);
    bufferevent_free(bev);
    close(sv[1]);
}

/* ---- a bufferevent's output locked by evbuffer_lock: its bufferevent's lock ------------- */
static struct bufferevent *locked_bev;
static volatile int writer_done;
static void *late_writer(void *arg)
{
    (void)arg;
    bufferevent_write(locked_bev, "x", 1); /* takes the bufferevent's lock */
    writer_done = 1;
    return NULL;
}
static void evbuffer_lock_of_a_bufferevent(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    locked_bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    evbuffer_lock(bufferevent_get_output(locked_bev));
    pthread_t th;
    writer_done = 0;
    pthread_create(&th, NULL, late_writer, NULL);
    usleep(100 * 1000);
    int blocked = !writer_done;
    evbuffer_unlock(bufferevent_get_output(locked_bev));
    pthread_join(th, NULL);
    printf("evbuffer_lock on a bufferevent's output held off its writer: %d, then it wrote: %d\n", blocked, writer_done);
    bufferevent_free(locked_bev);
    close(sv[1]);
}

/* ---- custom lock callbacks ------------------------------------------------------------- */
static int allocs, locks, unlocks;
static void *c_alloc(unsigned t)
{
    pthread_mutexattr_t a;
    pthread_mutex_t *m = malloc(sizeof *m);
    pthread_mutexattr_init(&a);
    if (t & EVTHREAD_LOCKTYPE_RECURSIVE)
        pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(m, &a);
    __atomic_add_fetch(&allocs, 1, __ATOMIC_SEQ_CST);
    return m;
}
static void c_free(void *l, unsigned t)
{
    (void)t;
    pthread_mutex_destroy(l);
    free(l);
}
static int c_lock(unsigned mode, void *l)
{
    __atomic_add_fetch(&locks, 1, __ATOMIC_SEQ_CST);
    return mode & EVTHREAD_TRY ? pthread_mutex_trylock(l) : pthread_mutex_lock(l);
}
static int c_unlock(unsigned mode, void *l)
{
    (void)mode;
    __atomic_add_fetch(&unlocks, 1, __ATOMIC_SEQ_CST);
    return pthread_mutex_unlock(l);
}

/* From another thread: 1 if `lock` is held, 0 if it could be taken (and is given back). */
static void *try_other(void *lock)
{
    if (pthread_mutex_trylock(lock) != 0)
        return (void *)1;
    pthread_mutex_unlock(lock);
    return (void *)0;
}

static unsigned long c_id(void) { return (unsigned long)pthread_self(); }

static void custom_locks(void)
{
    struct evthread_lock_callbacks cbs = {
        EVTHREAD_LOCK_API_VERSION, EVTHREAD_LOCKTYPE_RECURSIVE, c_alloc, c_free, c_lock, c_unlock,
    };
    printf("set_lock_callbacks %d\n", evthread_set_lock_callbacks(&cbs));
    /* (libevent wakes a loop from another thread only if it can tell threads apart.) */
    evthread_set_id_callback(c_id);
    base = event_base_new();
    int before = __atomic_load_n(&locks, __ATOMIC_SEQ_CST);
    start_loop();
    struct event *t = timer_from_this_thread();
    stop_loop();
    int l = __atomic_load_n(&locks, __ATOMIC_SEQ_CST), u = __atomic_load_n(&unlocks, __ATOMIC_SEQ_CST);
    printf("custom locks: allocated %d, used %d, balanced %d\n", allocs > 0, l > before, l == u);

    /* A buffer given one of the program's locks uses it: held through evbuffer_lock, it
     * cannot be taken elsewhere. */
    void *mine = c_alloc(EVTHREAD_LOCKTYPE_RECURSIVE);
    struct evbuffer *buf = evbuffer_new();
    printf("enable_locking with the program's lock %d\n", evbuffer_enable_locking(buf, mine));
    evbuffer_lock(buf);
    evbuffer_add(buf, "abc", 3);
    pthread_t th;
    void *busy = NULL, *free_after = NULL;
    pthread_create(&th, NULL, try_other, mine);
    pthread_join(th, &busy);
    evbuffer_unlock(buf);
    pthread_create(&th, NULL, try_other, mine);
    pthread_join(th, &free_after);
    printf("the buffer holds the program's lock: busy while locked %d, free after %d\n", busy == (void *)1,
           free_after == (void *)0);
    evbuffer_free(buf);
    c_free(mine, EVTHREAD_LOCKTYPE_RECURSIVE);
    event_free(t);
    event_base_free(base);
}

/* ---- evrs only: misuse gets a warning, not a hang or undefined behaviour ----------------- */
static int warnings;
static void on_log(int sev, const char *msg)
{
    if (sev == EVENT_LOG_WARN && strstr(msg, "lock")) {
        warnings++;
        printf("warning: %s\n", msg);
    }
}

static void misuse(void)
{
    evthread_use_pthreads();
    event_set_log_callback(on_log);
    base = event_base_new();
    start_loop();
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_THREADSAFE);
    bufferevent_unlock(bev); /* not held */
    printf("unlock without the lock: warnings %d\n", warnings);

    /* event_del while holding the base's lock twice would deadlock in libevent. */
    struct event *ev = event_new(base, -1, 0, slow, NULL);
    set_flag(0);
    event_active(ev, EV_TIMEOUT, 1);
    if (wait_flag(100)) {
        bufferevent_lock(bev);
        bufferevent_lock(bev);
        int r = event_del(ev);
        bufferevent_unlock(bev);
        bufferevent_unlock(bev);
        printf("event_del holding the lock twice: returned %d, warnings %d\n", r, warnings);
    }
    usleep(250 * 1000);
    bufferevent_write(bev, "ok", 2);
    char buf[4];
    struct pollfd p = {sv[1], POLLIN, 0};
    printf("the base still works: %d\n", poll(&p, 1, 5000) == 1 && read(sv[1], buf, sizeof buf) == 2);
    stop_loop();
    event_free(ev);
    bufferevent_free(bev);
    close(sv[1]);
    event_base_free(base);
}

int main(int argc, char **argv)
{
    alarm(20);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "evrs-only") == 0) {
        misuse();
        printf("done\n");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "custom") == 0) {
        custom_locks();
        printf("done\n");
        return 0;
    }
    printf("use_pthreads %d\n", evthread_use_pthreads());
    printf("the program's evthread_lock_fns_ is current: %d\n", evthread_lock_fns_.lock != NULL && evthread_lock_fns_.alloc != NULL);
    base = event_base_new();
    printf("notifiable %d\n", evthread_make_base_notifiable(base));

    /* An event added from another thread wakes a loop asleep with nothing to wait for. */
    start_loop();
    struct event *t = timer_from_this_thread();

    /* Activations from another thread, one at a time. */
    struct event *a = event_new(base, -1, EV_PERSIST, on_active, NULL);
    set_flag(0);
    int i, ok = 1;
    for (i = 1; i <= 10 && ok; i++) {
        event_active(a, EV_TIMEOUT, 1);
        ok = wait_flag(i);
    }
    printf("activations %d\n", activations);

    /* event_del of an event whose callback runs on the loop thread. */
    del_while_running("event_del", 0, event_del);
    del_while_running("event_del_block", EV_FINALIZE, event_del_block);
    del_while_running("event_del_noblock", 0, event_del_noblock);
    del_while_running("event_del of EV_FINALIZE", EV_FINALIZE, event_del);

    del_of_a_ready_event();
    finalize_while_running();
    evbuffer_lock_of_a_bufferevent();
    bufferevent_from_another_thread();

    /* loopbreak from another thread stops a loop blocked with no timeout. */
    stop_loop();
    event_free(t);
    event_free(a);
    event_base_free(base);
    struct event_base *b = event_init();
    printf("the program's event_global_current_base_ is current: %d\n", b != NULL && event_global_current_base_ == b);
    event_base_free(b);
    printf("done\n");
    return 0;
}
