/* evrs C ABI test: bufferevents (bufferevent.h): socket, pair, filter, watermarks,
 * timeouts, callbacks, flush, free from callbacks; run on both libraries. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <signal.h>
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <event2/bufferevent_compat.h>
#include <event2/event_compat.h>
#include <event2/event_struct.h>
#include <sys/time.h>

static struct event_base *base;
static int evrs_only; /* argv[1] == "evrs-only": checks where evrs differs on purpose */
static char log_[512];

static void note(const char *fmt, const char *s, long n)
{
    char line[96];
    snprintf(line, sizeof line, fmt, s, n);
    strncat(log_, line, sizeof log_ - strlen(log_) - 1);
}

static void echo_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    note("[read %s %ld]", "", (long)evbuffer_get_length(in));
    bufferevent_write_buffer(bev, in);
}

static void quiet_write(struct bufferevent *bev, void *arg)
{
    (void)arg;
    note("[write %s%ld]", "", (long)evbuffer_get_length(bufferevent_get_output(bev)));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    note("[event %s 0x%lx]", (const char *)arg, what);
}

static void test_socket_echo(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    printf("socket_new: fd ok %d base ok %d enabled 0x%x input ok %d output ok %d\n",
           bufferevent_getfd(bev) == sv[0], bufferevent_get_base(bev) == base, bufferevent_get_enabled(bev),
           bev->input == bufferevent_get_input(bev), bev->output == bufferevent_get_output(bev));
    bufferevent_setcb(bev, echo_read, quiet_write, on_event, "s");
    bufferevent_enable(bev, EV_READ);
    printf("enabled 0x%x\n", bufferevent_get_enabled(bev));
    write(sv[1], "hello", 5);
    log_[0] = 0;
    event_base_loop(base, EVLOOP_ONCE);
    event_base_loop(base, EVLOOP_NONBLOCK);
    char buf[16] = {0};
    ssize_t n = read(sv[1], buf, sizeof buf);
    printf("echo: %s got %zd '%s'\n", log_, n, buf);

    /* Watermarks: the read callback waits for 4 bytes. */
    bufferevent_setwatermark(bev, EV_READ, 4, 0);
    size_t lo = 0, hi = 0;
    bufferevent_getwatermark(bev, EV_READ, &lo, &hi);
    printf("watermark %zu %zu\n", lo, hi);
    log_[0] = 0;
    write(sv[1], "ab", 2);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("below low: '%s' input %zu\n", log_, evbuffer_get_length(bufferevent_get_input(bev)));
    write(sv[1], "cd", 2);
    event_base_loop(base, EVLOOP_ONCE);
    event_base_loop(base, EVLOOP_NONBLOCK);
    n = read(sv[1], buf, sizeof buf);
    buf[n > 0 ? n : 0] = 0;
    printf("at low: %s got '%s'\n", log_, buf);

    /* EOF from the peer. */
    log_[0] = 0;
    shutdown(sv[1], SHUT_WR);
    event_base_loop(base, EVLOOP_ONCE);
    printf("eof: %s\n", log_);
    bufferevent_free(bev);
    printf("closed on free: %d\n", write(sv[1], "x", 1) < 0 || read(sv[1], buf, 1) == 0);
    close(sv[1]);
}

/* The echo of bench/c/libevent_echo.c: the read callback moves the input to the output
 * with evbuffer_add_buffer (both buffers of one bufferevent in one call), an evbuffer
 * callback on the output seeing the add and, once written, the drain. Then the same move
 * from outside the callbacks. */
static void out_changed(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg)
{
    (void)b;
    (void)arg;
    if (info->n_added)
        note("[out +%s%ld]", "", (long)info->n_added);
    if (info->n_deleted)
        note("[out -%s%ld]", "", (long)info->n_deleted);
}

static void move_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    int rc = evbuffer_add_buffer(out, in);
    note("[read rc %s%ld", "", (long)rc);
    note(" in %s%ld", "", (long)evbuffer_get_length(in));
    note(" out %s%ld]", "", (long)evbuffer_get_length(out));
}

static void test_add_buffer_echo(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    struct evbuffer_cb_entry *ent = evbuffer_add_cb(bufferevent_get_output(bev), out_changed, NULL);
    bufferevent_setcb(bev, move_read, NULL, on_event, "m");
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    char buf[16] = {0};
    for (int round = 0; round < 2; round++) {
        log_[0] = 0;
        write(sv[1], round ? "again" : "hello", 5);
        event_base_loop(base, EVLOOP_ONCE);
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n = read(sv[1], buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = 0;
        printf("add_buffer echo %d: %s got %zd '%s'\n", round, log_, n, buf);
    }
    /* Outside the callbacks: no read callback, the data waits in the input. */
    evbuffer_remove_cb_entry(bufferevent_get_output(bev), ent);
    bufferevent_setcb(bev, NULL, NULL, on_event, "m");
    write(sv[1], "later", 5);
    event_base_loop(base, EVLOOP_ONCE);
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t before = evbuffer_get_length(in);
    int rc = evbuffer_add_buffer(bufferevent_get_output(bev), in);
    printf("outside: input %zu rc %d input %zu\n", before, rc, evbuffer_get_length(in));
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_loop(base, EVLOOP_NONBLOCK);
    ssize_t n = read(sv[1], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("outside echo: got %zd '%s'\n", n, buf);
    bufferevent_free(bev);
    close(sv[1]);
}

static void test_bufferevent_read_write(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], 0);
    bufferevent_write(bev, "direct", 6);
    printf("write pending output %d\n", evbuffer_get_length(bufferevent_get_output(bev)) <= 6);
    bufferevent_enable(bev, EV_WRITE);
    event_base_loop(base, EVLOOP_NONBLOCK);
    char buf[16] = {0};
    read(sv[1], buf, sizeof buf);
    printf("peer got '%s'\n", buf);
    evbuffer_add(bufferevent_get_input(bev), "xyz", 3);
    char out[8] = {0};
    printf("bufferevent_read %zu '%s'\n", bufferevent_read(bev, out, 2), out);
    struct evbuffer *rest = evbuffer_new();
    bufferevent_read_buffer(bev, rest);
    printf("read_buffer moved %zu\n", evbuffer_get_length(rest));
    evbuffer_free(rest);
    bufferevent_free(bev);
    close(sv[0]);
    close(sv[1]);
}

static void pair_read(struct bufferevent *bev, void *arg)
{
    char buf[32] = {0};
    bufferevent_read(bev, buf, sizeof buf - 1);
    printf("pair %s read '%s'\n", (const char *)arg, buf);
}

static void test_pair(void)
{
    struct bufferevent *p[2];
    printf("pair_new %d\n", bufferevent_pair_new(base, 0, p));
    printf("partners %d %d\n", bufferevent_pair_get_partner(p[0]) == p[1], bufferevent_pair_get_partner(p[1]) == p[0]);
    bufferevent_setcb(p[1], pair_read, NULL, on_event, "B");
    bufferevent_enable(p[0], EV_WRITE);
    bufferevent_enable(p[1], EV_READ);
    bufferevent_write(p[0], "ping", 4);
    event_base_loop(base, EVLOOP_NONBLOCK);
    log_[0] = 0;
    bufferevent_free(p[0]);
    event_base_loop(base, EVLOOP_NONBLOCK);
    /* libevent sends the partner nothing (its #93); evrs tells it EOF. */
    if (evrs_only)
        printf("after partner free: %s\n", log_);
    bufferevent_free(p[1]);
}

static void free_in_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    printf("free_in_cb: input %zu\n", evbuffer_get_length(bufferevent_get_input(bev)));
    bufferevent_free(bev);
}

static void test_free_from_callback(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, free_in_cb, NULL, NULL, NULL);
    bufferevent_enable(bev, EV_READ);
    write(sv[1], "bye", 3);
    event_base_loop(base, EVLOOP_ONCE);
    printf("loop after free: %d\n", event_base_loop(base, EVLOOP_NONBLOCK));
    close(sv[1]);
}

static void test_timeout(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, NULL, NULL, on_event, "t");
    struct timeval t = {0, 20000};
    bufferevent_set_timeouts(bev, &t, NULL);
    bufferevent_enable(bev, EV_READ);
    log_[0] = 0;
    event_base_loop(base, EVLOOP_ONCE);
    printf("timeout: %s enabled after 0x%x\n", log_, bufferevent_get_enabled(bev));
    bufferevent_free(bev);
    close(sv[1]);

    /* Without a socket (fd -1) both timeouts expire, the write one with empty output. */
    bev = bufferevent_socket_new(base, -1, 0);
    bufferevent_setcb(bev, NULL, NULL, on_event, "n");
    struct timeval r = {0, 60000}, w = {0, 30000}, stop = {0, 150000};
    bufferevent_set_timeouts(bev, &r, &w);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    log_[0] = 0;
    event_base_loopexit(base, &stop);
    event_base_dispatch(base);
    printf("timeout without a socket: %s enabled after 0x%x\n", log_, bufferevent_get_enabled(bev));
    bufferevent_free(bev);
}

static enum bufferevent_filter_result upper(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
                                            enum bufferevent_flush_mode mode, void *ctx)
{
    (void)lim;
    (void)mode;
    (void)ctx;
    char buf[64];
    int n;
    while ((n = evbuffer_remove(src, buf, sizeof buf)) > 0) {
        for (int i = 0; i < n; i++)
            if (buf[i] >= 'a' && buf[i] <= 'z')
                buf[i] -= 32;
        evbuffer_add(dst, buf, n);
    }
    return BEV_OK;
}

static void test_filter(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *under = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *f = bufferevent_filter_new(under, upper, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
    printf("filter underlying ok %d\n", bufferevent_get_underlying(f) == under);
    bufferevent_setcb(f, pair_read, NULL, NULL, "F");
    bufferevent_enable(f, EV_READ);
    write(sv[1], "shout", 5);
    event_base_loop(base, EVLOOP_ONCE);
    event_base_loop(base, EVLOOP_NONBLOCK);
    bufferevent_free(f);
    close(sv[1]);
}

/* A pair flushed with BEV_FINISHED: the reader's callbacks (read, then the EOF event)
 * come before the writer's, in the order libevent queues the deferred runs. */
static void order_read(struct bufferevent *bev, void *arg)
{
    note("[read %s %ld]", (const char *)arg, (long)evbuffer_get_length(bufferevent_get_input(bev)));
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}
static void order_write(struct bufferevent *bev, void *arg)
{
    note("[write %s %ld]", (const char *)arg, (long)evbuffer_get_length(bufferevent_get_output(bev)));
}
static void test_pair_flush_finished_order(void)
{
    struct bufferevent *p[2];
    bufferevent_pair_new(base, 0, p);
    bufferevent_setcb(p[0], order_read, order_write, on_event, "a");
    bufferevent_setcb(p[1], order_read, order_write, on_event, "b");
    bufferevent_disable(p[0], EV_READ);
    bufferevent_enable(p[1], EV_READ);
    log_[0] = 0;
    bufferevent_write(p[0], "0123456789", 10);
    int r = bufferevent_flush(p[0], EV_WRITE, BEV_FINISHED);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("pair flush finished: %d %s\n", r, log_);
    bufferevent_free(p[1]);
    bufferevent_free(p[0]);
}

/* An output filter that writes to its own filter (the bytes are filtered next), then
 * fails: libevent stops there and reports nothing. */
static struct bufferevent *self_writer;
static int self_calls;
static enum bufferevent_filter_result write_self(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
                                                 enum bufferevent_flush_mode mode, void *ctx)
{
    (void)lim;
    (void)mode;
    (void)ctx;
    if (++self_calls > 2)
        return BEV_ERROR;
    evbuffer_add_buffer(dst, src);
    if (self_calls == 1)
        bufferevent_write(self_writer, "+tail", 5);
    return BEV_OK;
}
static void test_filter_writes_to_itself(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *under = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    self_writer = bufferevent_filter_new(under, NULL, write_self, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
    bufferevent_setcb(self_writer, NULL, NULL, on_event, "self");
    log_[0] = 0;
    bufferevent_write(self_writer, "head", 4);
    event_base_loop(base, EVLOOP_NONBLOCK);
    char buf[32] = {0};
    ssize_t n = read(sv[1], buf, sizeof buf - 1);
    printf("filter writing to itself: calls %d peer got '%s' events '%s'\n", self_calls, n > 0 ? buf : "", log_);
    bufferevent_write(self_writer, "more", 4);
    event_base_loop(base, EVLOOP_NONBLOCK);
    /* (evrs may try a failed filter once more than libevent before more output comes.) */
    printf("after it fails: called again %d output kept %d events '%s'\n", self_calls >= 3,
           (int)evbuffer_get_length(bufferevent_get_output(self_writer)), log_);
    bufferevent_free(self_writer);
    close(sv[1]);
}


#define FLAGS(ev) ((unsigned)(unsigned short)(ev)->ev_evcallback.evcb_flags)

static int listener_fd(struct sockaddr_in *sin)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof *sin;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(l, (struct sockaddr *)sin, sizeof *sin);
    listen(l, 8);
    getsockname(l, (struct sockaddr *)sin, &len);
    return l;
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    note("[conn %s0x%lx]", "", what);
    if (what & BEV_EVENT_ERROR)
        note("[refused %s%ld]", "", (long)(e == ECONNREFUSED));
    if (what & BEV_EVENT_CONNECTED)
        note("[fd ok %s%ld]", "", (long)(bufferevent_getfd(bev) >= 0));
    event_base_loopexit(base, NULL);
}

static void test_connect(void)
{
    struct sockaddr_in sin;
    int l = listener_fd(&sin);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, NULL, NULL, conn_event, NULL);
    int rc = bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin);
    printf("connect %d fd %d\n", rc, bufferevent_getfd(bev) >= 0);
    log_[0] = 0;
    event_base_dispatch(base);
    printf("connected: %s\n", log_);
    int c = accept(l, NULL, NULL);
    bufferevent_write(bev, "over tcp", 8);
    event_base_loop(base, EVLOOP_NONBLOCK);
    char buf[16] = {0};
    printf("accepted got %zd\n", read(c, buf, sizeof buf - 1));
    bufferevent_free(bev);
    close(c);
    close(l);

    /* Nobody listens there any more: refused. */
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, NULL, NULL, conn_event, NULL);
    printf("connect refused call %d\n", bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin));
    log_[0] = 0;
    event_base_dispatch(base);
    printf("refused: %s\n", log_);
    bufferevent_free(bev);
}

static void wm_write_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    note("[wcb out<=low %s%ld]", "", (long)(evbuffer_get_length(bufferevent_get_output(bev)) <= 3));
}

static void test_write_side(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    printf("fields: enabled 0x%x ev_read fd ok %d ev_write fd ok %d read flags 0x%x write flags 0x%x events 0x%x 0x%x\n",
           (unsigned)bev->enabled, bev->ev_read.ev_fd == sv[0], bev->ev_write.ev_fd == sv[0],
           FLAGS(&bev->ev_read), FLAGS(&bev->ev_write), (unsigned)bev->ev_read.ev_events,
           (unsigned)bev->ev_write.ev_events);
    bufferevent_setcb(bev, NULL, wm_write_cb, NULL, NULL);
    bufferevent_setwatermark(bev, EV_WRITE, 3, 0);
    printf("wm_write field %zu %zu\n", bev->wm_write.low, bev->wm_write.high);
    bufferevent_enable(bev, EV_READ);
    printf("enabled field 0x%x read inserted %d\n", (unsigned)bev->enabled, (FLAGS(&bev->ev_read) & 0x02) != 0);
    log_[0] = 0;
    bufferevent_write(bev, "0123456789", 10);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("write wm: %s\n", log_);
    char buf[32] = {0};
    printf("peer %zd\n", read(sv[1], buf, sizeof buf));
    printf("flush socket %d\n", bufferevent_flush(bev, EV_WRITE, BEV_FLUSH));
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    printf("disabled field 0x%x read inserted %d write inserted %d\n", (unsigned)bev->enabled,
           (FLAGS(&bev->ev_read) & 0x02) != 0, (FLAGS(&bev->ev_write) & 0x02) != 0);

    /* setfd / getfd */
    int sv2[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv2);
    int rc = bufferevent_setfd(bev, sv2[0]);
    printf("setfd %d getfd ok %d\n", rc, bufferevent_getfd(bev) == sv2[0]);
    printf("setfd field ok %d\n", bev->ev_read.ev_fd == sv2[0]);
    bufferevent_setfd(bev, sv[0]);
    close(sv2[0]);
    close(sv2[1]);

    /* priority */
    printf("priority default %d set bad %d\n", bufferevent_get_priority(bev), bufferevent_priority_set(bev, 5));

    /* max single read/write */
    printf("max single %ld %ld\n", (long)bufferevent_get_max_single_read(bev), (long)bufferevent_get_max_single_write(bev));
    rc = bufferevent_set_max_single_read(bev, 2);
    int rc2 = bufferevent_set_max_single_write(bev, 0);
    printf("set max single %d %d -> %ld %ld\n", rc, rc2, (long)bufferevent_get_max_single_read(bev),
           (long)bufferevent_get_max_single_write(bev));
    printf("max to read %ld no limit %d\n", (long)bufferevent_get_max_to_read(bev),
           bufferevent_get_read_limit(bev) == EV_SSIZE_MAX);

    /* getcb */
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *a;
    bufferevent_setcb(bev, echo_read, quiet_write, on_event, "g");
    bufferevent_getcb(bev, &r, &w, &e, &a);
    printf("getcb %d %d %d %d fields %d\n", r == echo_read, w == quiet_write, e == on_event, a == (void *)"g",
           bev->readcb == echo_read && bev->errorcb == on_event && bev->cbarg == a);

    /* trigger */
    log_[0] = 0;
    bufferevent_trigger(bev, EV_READ | EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
    printf("trigger now: %s\n", log_);
    log_[0] = 0;
    bufferevent_trigger_event(bev, BEV_EVENT_EOF, BEV_TRIG_DEFER_CALLBACKS);
    printf("trigger deferred before loop: '%s'\n", log_);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("after loop: %s\n", log_);

    /* incref/decref */
    bufferevent_incref(bev);
    bufferevent_free(bev);
    printf("after free with ref: input ok %d\n", bufferevent_get_input(bev) != NULL);
    printf("decref %d\n", bufferevent_decref(bev));
    close(sv[1]);
}

static void rl_read(struct bufferevent *bev, void *arg)
{
    size_t *n = arg;
    char buf[256];
    *n += bufferevent_read(bev, buf, sizeof buf);
}

static void test_rate_limit(void)
{
    struct timeval tick = {0, 50000};
    printf("cfg bad %d\n", ev_token_bucket_cfg_new(0, 10, 10, 10, &tick) == NULL);
    printf("cfg bad burst %d\n", ev_token_bucket_cfg_new(20, 10, 10, 10, &tick) == NULL);
    struct ev_token_bucket_cfg *cfg = ev_token_bucket_cfg_new(100, 100, 100, 100, &tick);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    size_t got = 0;
    bufferevent_setcb(bev, rl_read, NULL, NULL, &got);
    int rc = bufferevent_set_rate_limit(bev, cfg);
    printf("set_rate_limit %d cfg ok %d\n", rc, bufferevent_get_token_bucket_cfg(bev) == cfg);
    printf("read limit %ld\n", (long)bufferevent_get_read_limit(bev));
    bufferevent_enable(bev, EV_READ);
    char big[1000];
    memset(big, 'r', sizeof big);
    write(sv[1], big, sizeof big);
    struct timeval t = {0, 120000};
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    /* ~100 per 50ms tick: well under 1000 after 120ms. */
    printf("rate limited: got some %d not all %d\n", got > 0, got < 1000);
    printf("decrement %d\n", bufferevent_decrement_read_limit(bev, 10));
    printf("remove limit %d\n", bufferevent_set_rate_limit(bev, NULL));

    struct bufferevent_rate_limit_group *g = bufferevent_rate_limit_group_new(base, cfg);
    rc = bufferevent_add_to_rate_limit_group(bev, g);
    printf("group %d add %d\n", g != NULL, rc);
    printf("group limits %ld %ld\n", (long)bufferevent_rate_limit_group_get_read_limit(g),
           (long)bufferevent_rate_limit_group_get_write_limit(g));
    rc = bufferevent_rate_limit_group_decrement_read(g, 30);
    printf("group decrement %d -> %ld\n", rc, (long)bufferevent_rate_limit_group_get_read_limit(g));
    printf("min share %d\n", bufferevent_rate_limit_group_set_min_share(g, 10));
    size_t before = got;
    t.tv_usec = 120000;
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    ev_uint64_t tr = 0, tw = 0;
    bufferevent_rate_limit_group_get_totals(g, &tr, &tw);
    printf("group read more %d totals match %d written %lu\n", got > before, tr == got - before, (unsigned long)tw);
    bufferevent_rate_limit_group_reset_totals(g);
    bufferevent_rate_limit_group_get_totals(g, &tr, &tw);
    printf("reset totals %lu\n", (unsigned long)tr);
    struct ev_token_bucket_cfg *cfg2 = ev_token_bucket_cfg_new(1000, 1000, 1000, 1000, NULL);
    printf("group set cfg %d\n", bufferevent_rate_limit_group_set_cfg(g, cfg2));
    printf("remove from group %d\n", bufferevent_remove_from_rate_limit_group(bev));
    bufferevent_rate_limit_group_free(g);
    bufferevent_free(bev);
    ev_token_bucket_cfg_free(cfg);
    ev_token_bucket_cfg_free(cfg2);
    close(sv[1]);
}

static void compat_read(struct bufferevent *bev, void *arg)
{
    char buf[16] = {0};
    bufferevent_read(bev, buf, sizeof buf - 1);
    printf("compat read '%s' arg %s\n", buf, (const char *)arg);
}

static void test_compat(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    evutil_make_socket_nonblocking(sv[0]);
    struct event_base *cur = event_init();
    struct bufferevent *bev = bufferevent_new(sv[0], compat_read, NULL, on_event, "c");
    int rc = bufferevent_base_set(cur, bev);
    printf("compat base set %d base ok %d\n", rc, bufferevent_get_base(bev) == cur);
    bufferevent_settimeout(bev, 1, 0);
    printf("settimeout field %ld %ld\n", (long)bev->timeout_read.tv_sec, (long)bev->timeout_write.tv_sec);
    bufferevent_enable(bev, EV_READ);
    write(sv[1], "old", 3);
    event_base_loop(cur, EVLOOP_ONCE);
    bufferevent_free(bev);
    event_base_free(cur);
    close(sv[0]);
    close(sv[1]);
}

static void test_filter_flush(void)
{
    struct bufferevent *p[2];
    bufferevent_pair_new(base, 0, p);
    struct bufferevent *f = bufferevent_filter_new(p[0], NULL, upper, 0, NULL, NULL);
    bufferevent_setcb(p[1], pair_read, NULL, NULL, "P");
    bufferevent_enable(p[1], EV_READ);
    bufferevent_enable(f, EV_WRITE);
    bufferevent_write(f, "quiet", 5);
    printf("filter flush %d\n", bufferevent_flush(f, EV_WRITE, BEV_FLUSH));
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("pair flush %d\n", bufferevent_flush(p[1], EV_READ, BEV_NORMAL));
    bufferevent_free(f);
    bufferevent_free(p[0]);
    bufferevent_free(p[1]);
}

/* Deferred triggers: an event triggered from a deferred read callback is delivered whole
 * in the same pass (libevent splits CONNECTED out only before the read callback). */
static void trig_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)arg;
    printf("trigger event what %d\n", what);
}

static void trig_read(struct bufferevent *bev, void *arg)
{
    (void)arg;
    printf("trigger read (deferred)\n");
    bufferevent_trigger_event(bev, ~0, BEV_TRIG_DEFER_CALLBACKS);
}

static void test_deferred_trigger(void)
{
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    bufferevent_setcb(bev, trig_read, NULL, trig_event, NULL);
    bufferevent_trigger(bev, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    printf("trigger: nothing ran yet\n");
    event_base_loop(base, EVLOOP_NONBLOCK);
    event_base_loop(base, EVLOOP_NONBLOCK);
    bufferevent_free(bev);
    close(sv[1]);
}

static void test_evrs_only(void)
{
    /* NULL bufferevents: libevent's error values, no crash. */
    printf("null: enable %d write %d read %zu getfd %d input %d flush %d\n", bufferevent_enable(NULL, EV_READ),
           bufferevent_write(NULL, "x", 1), bufferevent_read(NULL, (char[4]){0}, 4), bufferevent_getfd(NULL),
           bufferevent_get_input(NULL) == NULL, bufferevent_flush(NULL, EV_WRITE, BEV_NORMAL));
    bufferevent_free(NULL);
    /* Inverted watermarks are refused: the old ones stay. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    struct bufferevent *bev = bufferevent_socket_new(base, sv[0], BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setwatermark(bev, EV_READ, 1, 8);
    bufferevent_setwatermark(bev, EV_READ, 10, 5);
    size_t lo, hi;
    bufferevent_getwatermark(bev, EV_READ, &lo, &hi);
    printf("inverted: %zu %zu\n", lo, hi);
    printf("getwatermark both %d\n", bufferevent_getwatermark(bev, EV_READ | EV_WRITE, &lo, &hi));
    bufferevent_free(bev);
    close(sv[1]);
}

int main(int argc, char **argv)
{
    evrs_only = argc > 1 && strcmp(argv[1], "evrs-only") == 0;
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    test_socket_echo();
    test_add_buffer_echo();
    test_bufferevent_read_write();
    test_pair();
    test_free_from_callback();
    test_timeout();
    test_filter();
    test_filter_writes_to_itself();
    test_pair_flush_finished_order();
    test_connect();
    test_write_side();
    test_rate_limit();
    test_filter_flush();
    test_compat();
    test_deferred_trigger();
    if (evrs_only)
        test_evrs_only();
    event_base_free(base);
    printf("done\n");
    return 0;
}
