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

int main(int argc, char **argv)
{
    evrs_only = argc > 1 && strcmp(argv[1], "evrs-only") == 0;
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    test_socket_echo();
    test_bufferevent_read_write();
    test_pair();
    test_free_from_callback();
    test_timeout();
    test_filter();
    event_base_free(base);
    printf("done\n");
    return 0;
}
