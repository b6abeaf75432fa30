/* evrs C ABI test: libevent 2.1's exported internal "event callback" functions
 * (event_callback_*_, event_deferred_cb_*_) on struct event_callback memory, and on the
 * callback inside a struct event. Built against Debian's headers and libevent, run against
 * both libraries; the printed lines must be identical. */
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/event_compat.h>
#include <stdio.h>
#include <string.h>

/* Not in the public headers: libevent's defer-internal.h / event-internal.h. */
typedef void (*deferred_cb_fn)(struct event_callback *, void *);
void event_deferred_cb_init_(struct event_callback *, ev_uint8_t, deferred_cb_fn, void *);
void event_deferred_cb_set_priority_(struct event_callback *, ev_uint8_t);
void event_deferred_cb_cancel_(struct event_base *, struct event_callback *);
int event_deferred_cb_schedule_(struct event_base *, struct event_callback *);
void event_callback_init_(struct event_base *, struct event_callback *);
int event_callback_activate_(struct event_base *, struct event_callback *);
int event_callback_activate_nolock_(struct event_base *, struct event_callback *);
int event_callback_activate_later_nolock_(struct event_base *, struct event_callback *);
int event_callback_cancel_(struct event_base *, struct event_callback *);
int event_callback_cancel_nolock_(struct event_base *, struct event_callback *, int);
void event_callback_finalize_(struct event_base *, unsigned, struct event_callback *, deferred_cb_fn);
void event_callback_finalize_nolock_(struct event_base *, unsigned, struct event_callback *, deferred_cb_fn);
int event_callback_finalize_many_(struct event_base *, int, struct event_callback **, deferred_cb_fn);

static char trace[512];

static void note(const char *s)
{
    strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

/* The queue bits of evcb_flags: ACTIVE 0x08, ACTIVE_LATER 0x20, FINALIZING 0x40. */
static int qflags(const struct event_callback *cb)
{
    return cb->evcb_flags & 0x68;
}

static void named(struct event_callback *cb, void *arg)
{
    (void)cb;
    note((const char *)arg);
}

static void fin(struct event_callback *cb, void *arg)
{
    (void)cb;
    note("F(");
    note((const char *)arg);
    note(")");
}

static void test_schedule(struct event_base *base)
{
    struct event_callback cb;
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "a");
    int f0 = qflags(&cb), closure = cb.evcb_closure;
    int r1 = event_deferred_cb_schedule_(base, &cb);
    int f1 = qflags(&cb);
    int r2 = event_deferred_cb_schedule_(base, &cb);
    int d = event_base_dispatch(base);
    int f2 = qflags(&cb);
    printf("schedule: closure %d flags 0x%x, 1st %d flags 0x%x, 2nd %d; dispatch %d ran '%s' flags 0x%x\n",
           closure, f0, r1, f1, r2, d, trace, f2);
    /* Once run, it can be scheduled again without initializing it. */
    trace[0] = 0;
    int r3 = event_deferred_cb_schedule_(base, &cb);
    event_base_dispatch(base);
    printf("again: %d ran '%s'\n", r3, trace);
}

static void test_activate_cancel(struct event_base *base)
{
    struct event_callback cb;
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "b");
    int a1 = event_callback_activate_(base, &cb);
    int a2 = event_callback_activate_(base, &cb);
    int a3 = event_callback_activate_nolock_(base, &cb);
    int l1 = event_callback_activate_later_nolock_(base, &cb);
    int f1 = qflags(&cb);
    int c1 = event_callback_cancel_(base, &cb);
    int f2 = qflags(&cb);
    int c2 = event_callback_cancel_(base, &cb);
    int d = event_base_dispatch(base);
    printf("activate: %d %d %d later %d flags 0x%x; cancel %d flags 0x%x, again %d; dispatch %d ran '%s'\n",
           a1, a2, a3, l1, f1, c1, f2, c2, d, trace);

    /* Active later: activating it moves it to the active queue (0). */
    trace[0] = 0;
    int l2 = event_callback_activate_later_nolock_(base, &cb);
    int f3 = qflags(&cb);
    int l3 = event_callback_activate_later_nolock_(base, &cb);
    int a4 = event_callback_activate_(base, &cb);
    int f4 = qflags(&cb);
    event_base_dispatch(base);
    printf("later: %d flags 0x%x, again %d, activate %d flags 0x%x; ran '%s'\n", l2, f3, l3, a4, f4,
           trace);

    /* Cancelled while active later; the deferred cancel does the same. */
    trace[0] = 0;
    event_callback_activate_later_nolock_(base, &cb);
    int c3 = event_callback_cancel_nolock_(base, &cb, 0);
    event_deferred_cb_schedule_(base, &cb);
    event_deferred_cb_cancel_(base, &cb);
    int f5 = qflags(&cb);
    int d2 = event_base_dispatch(base);
    printf("cancelled later: %d flags 0x%x dispatch %d ran '%s'\n", c3, f5, d2, trace);
}

static void test_priorities(void)
{
    struct event_base *base = event_base_new();
    event_base_priority_init(base, 3);
    struct event_callback lo, hi, mid, dflt;
    trace[0] = 0;
    event_deferred_cb_init_(&lo, 2, named, "lo ");
    event_deferred_cb_init_(&hi, 0, named, "hi ");
    event_deferred_cb_init_(&mid, 0, named, "mid ");
    event_deferred_cb_set_priority_(&mid, 1);
    event_callback_init_(base, &dflt);
    int dpri = dflt.evcb_pri, dclosure = dflt.evcb_closure;
    event_deferred_cb_schedule_(base, &lo);
    event_deferred_cb_schedule_(base, &mid);
    event_deferred_cb_schedule_(base, &hi);
    event_base_dispatch(base);
    printf("priorities: '%s' (callback_init: pri %d closure %d)\n", trace, dpri, dclosure);
    event_base_free(base);
}

static void test_finalize(struct event_base *base)
{
    struct event_callback cb, idle;
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "c");
    event_deferred_cb_schedule_(base, &cb);
    event_callback_finalize_(base, 0, &cb, fin);
    int f1 = qflags(&cb), closure = cb.evcb_closure;
    /* A finalizing callback cannot be activated or cancelled. */
    int a = event_callback_activate_(base, &cb);
    int s = event_deferred_cb_schedule_(base, &cb);
    int c = event_callback_cancel_(base, &cb);
    int f2 = qflags(&cb);
    event_base_dispatch(base);
    int f3 = qflags(&cb);
    int a2 = event_callback_activate_(base, &cb);
    int d = event_base_dispatch(base);
    printf("finalize: flags 0x%x closure %d; activate %d schedule %d cancel %d flags 0x%x; ran '%s' flags 0x%x; after: activate %d dispatch %d\n",
           f1, closure, a, s, c, f2, trace, f3, a2, d);

    /* Never scheduled: the finalizer runs all the same. */
    trace[0] = 0;
    event_deferred_cb_init_(&idle, 0, named, "i");
    event_callback_finalize_nolock_(base, 0, &idle, fin);
    event_base_dispatch(base);
    printf("finalize idle: ran '%s'\n", trace);

    /* Initialized again, it runs again. */
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "c2");
    int r = event_deferred_cb_schedule_(base, &cb);
    event_base_dispatch(base);
    printf("reinitialized: %d ran '%s'\n", r, trace);

    /* Cancelled even if finalizing: the finalizer is dropped. */
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "c3");
    event_callback_finalize_(base, 0, &cb, fin);
    int c4 = event_callback_cancel_nolock_(base, &cb, 1);
    int f4 = qflags(&cb);
    event_base_dispatch(base);
    printf("cancel finalizing: %d flags 0x%x ran '%s'\n", c4, f4, trace);
}

static struct event_callback many[3];
static struct event_base *many_base;

static void finalize_all(struct event_callback *cb, void *arg)
{
    struct event_callback *all[3] = {&many[0], &many[1], &many[2]};
    (void)cb;
    note((const char *)arg);
    event_callback_finalize_many_(many_base, 3, all, fin);
}

static void test_finalize_many(struct event_base *base)
{
    struct event_callback *all[3] = {&many[0], &many[1], &many[2]};
    trace[0] = 0;
    event_deferred_cb_init_(&many[0], 0, named, "m0");
    event_deferred_cb_init_(&many[1], 0, named, "m1");
    event_deferred_cb_init_(&many[2], 0, named, "m2");
    event_deferred_cb_schedule_(base, &many[1]);
    event_deferred_cb_schedule_(base, &many[2]);
    int r = event_callback_finalize_many_(base, 3, all, fin);
    int f0 = qflags(&many[0]), f1 = qflags(&many[1]), f2 = qflags(&many[2]);
    event_base_dispatch(base);
    printf("finalize_many: %d flags 0x%x 0x%x 0x%x ran '%s'\n", r, f0, f1, f2, trace);

    /* From the callback of one of them: that one gets the finalizer. */
    trace[0] = 0;
    many_base = base;
    event_deferred_cb_init_(&many[0], 0, named, "n0 ");
    event_deferred_cb_init_(&many[1], 0, finalize_all, "n1 ");
    event_deferred_cb_init_(&many[2], 0, named, "n2 ");
    event_deferred_cb_schedule_(base, &many[1]);
    event_deferred_cb_schedule_(base, &many[2]);
    event_base_dispatch(base);
    printf("finalize_many from a callback: ran '%s'\n", trace);
}

static int reruns;
static struct event_base *rerun_base;
static struct event *rerun_ev;

static void rerun(struct event_callback *cb, void *arg)
{
    int later = arg != NULL;
    char s[8];
    snprintf(s, sizeof s, "r%d ", reruns);
    note(s);
    if (++reruns < 4) {
        int r = later ? event_callback_activate_later_nolock_(rerun_base, cb)
                      : event_deferred_cb_schedule_(rerun_base, cb);
        if (r != 1)
            note("!");
        /* An event made active now runs before a callback queued for later. */
        if (later)
            event_active(rerun_ev, EV_TIMEOUT, 1);
    }
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    note((const char *)arg);
}

static void test_reschedule(struct event_base *base)
{
    struct event_callback cb;
    struct event *ev = event_new(base, -1, 0, tick, "e ");
    rerun_base = base;
    rerun_ev = ev;

    /* Rescheduled from itself: again in the same pass, after what was queued meanwhile. */
    trace[0] = 0;
    reruns = 0;
    event_deferred_cb_init_(&cb, 0, rerun, NULL);
    event_deferred_cb_schedule_(base, &cb);
    event_active(ev, EV_TIMEOUT, 1);
    int l1 = event_base_loop(base, EVLOOP_ONCE);
    printf("reschedule: one pass %d ran '%s'\n", l1, trace);

    /* Rescheduled for later: one run per pass of the loop (a loop run with EVLOOP_ONCE
     * goes on while callbacks are queued, active later ones included). */
    trace[0] = 0;
    reruns = 0;
    event_deferred_cb_init_(&cb, 0, rerun, "later");
    event_deferred_cb_schedule_(base, &cb);
    int passes = 0;
    while (reruns < 4 && passes < 10) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        note("| ");
        passes++;
    }
    printf("reschedule later: %d passes '%s'\n", passes, trace);
    event_free(ev);
}

static void ev_cb(evutil_socket_t fd, short what, void *arg)
{
    char s[32];
    (void)fd;
    snprintf(s, sizeof s, "%s(0x%x) ", (const char *)arg, what);
    note(s);
}

static void *the_event;

static void ev_fin(struct event_callback *cb, void *arg)
{
    char s[48];
    snprintf(s, sizeof s, "EF(%s,%d) ", (const char *)arg, (void *)cb == the_event);
    note(s);
}

/* The callback inside a struct event: the functions act on the event. */
static void test_event_callback(struct event_base *base)
{
    struct event ev;
    the_event = &ev;
    trace[0] = 0;
    event_assign(&ev, base, -1, 0, ev_cb, "ev");
    int a1 = event_callback_activate_(base, &ev.ev_evcallback);
    int a2 = event_callback_activate_(base, &ev.ev_evcallback);
    int p1 = event_pending(&ev, EV_TIMEOUT | EV_READ, NULL) != 0;
    int f1 = qflags(&ev.ev_evcallback);
    event_base_dispatch(base);
    printf("event: activate %d %d pending %d flags 0x%x ran '%s'\n", a1, a2, p1, f1, trace);

    trace[0] = 0;
    struct timeval tv = {10, 0};
    event_add(&ev, &tv);
    int c = event_callback_cancel_(base, &ev.ev_evcallback);
    int p2 = event_pending(&ev, EV_TIMEOUT, NULL);
    int d = event_base_dispatch(base);
    printf("event: cancel %d pending %d dispatch %d ran '%s'\n", c, p2, d, trace);

    trace[0] = 0;
    event_active(&ev, EV_WRITE, 1);
    event_callback_finalize_(base, 0, &ev.ev_evcallback, ev_fin);
    int f2 = qflags(&ev.ev_evcallback);
    event_base_dispatch(base);
    printf("event: finalize flags 0x%x ran '%s'\n", f2, trace);
}

static void test_current_base(void)
{
    struct event_base *base = event_init();
    struct event_callback cb, gone;
    trace[0] = 0;
    event_deferred_cb_init_(&cb, 0, named, "cur ");
    event_deferred_cb_init_(&gone, 0, named, "gone ");
    int r = event_deferred_cb_schedule_(NULL, &cb);
    event_deferred_cb_schedule_(NULL, &gone);
    event_deferred_cb_cancel_(NULL, &gone);
    int d = event_dispatch();
    printf("current base: %d dispatch %d ran '%s'\n", r, d, trace);

    struct event_callback *one[1] = {&cb};
    trace[0] = 0;
    event_deferred_cb_schedule_(NULL, &cb);
    int m = event_callback_finalize_many_(NULL, 1, one, fin);
    event_dispatch();
    printf("current base finalize_many: %d ran '%s'\n", m, trace);
    event_base_free(base);
}

int main(void)
{
    struct event_base *base = event_base_new();
    setvbuf(stdout, NULL, _IONBF, 0);
    test_schedule(base);
    test_activate_cancel(base);
    test_priorities();
    test_finalize(base);
    test_finalize_many(base);
    test_reschedule(base);
    test_event_callback(base);
    event_base_free(base);
    test_current_base();
    printf("done\n");
    return 0;
}
