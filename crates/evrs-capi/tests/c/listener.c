/* evrs C ABI test: evconnlistener (listener.h) on 127.0.0.1, run on both libraries. */
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

static int fcntl_ok(int fd) { return fcntl(fd, F_GETFD) != -1; }

static int accepted;
static struct event_base *base;

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    accepted++;
    printf("accept: arg %s family %d len %d loopback %d base ok %d\n", (const char *)arg, sa->sa_family, len,
           in->sin_addr.s_addr == htonl(INADDR_LOOPBACK), evconnlistener_get_base(l) == base);
    close(fd);
}

static void free_self(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    (void)sa;
    (void)len;
    (void)arg;
    printf("free_self: accepted, freeing the listener\n");
    close(fd);
    evconnlistener_free(l);
}

static int connect_to(int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&sin, sizeof sin) != 0)
        perror("connect");
    return c;
}

static int errors;
static void on_error(struct evconnlistener *l, void *arg)
{
    (void)arg;
    errors++;
    printf("error cb: errno is EMFILE %d\n", errno == EMFILE);
    evconnlistener_disable(l);
}

int main(int argc, char **argv)
{
    base = event_base_new();
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct evconnlistener *l = evconnlistener_new_bind(base, on_accept, "a", LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                                       -1, (struct sockaddr *)&sin, sizeof sin);
    printf("new_bind %s\n", l ? "ok" : "failed");
    int fd = evconnlistener_get_fd(l);
    socklen_t slen = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &slen);
    int port = ntohs(sin.sin_port);
    int c1 = connect_to(port);
    event_base_loop(base, EVLOOP_ONCE);
    printf("accepted %d\n", accepted);

    evconnlistener_disable(l);
    int c2 = connect_to(port);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("disabled: accepted %d\n", accepted);
    evconnlistener_enable(l);
    event_base_loop(base, EVLOOP_ONCE);
    printf("enabled: accepted %d\n", accepted);

    if (argc > 1 && !strcmp(argv[1], "emfile")) {
        /* evrs only: libevent spins on EMFILE. The error callback runs with errno set. */
        evconnlistener_set_error_cb(l, on_error);
        struct rlimit old, low;
        getrlimit(RLIMIT_NOFILE, &old);
        int probe = dup(0);
        close(probe);
        low = old;
        low.rlim_cur = probe; /* no fd above the current highest is free */
        int c3 = connect_to(port);
        setrlimit(RLIMIT_NOFILE, &low);
        event_base_loop(base, EVLOOP_ONCE);
        setrlimit(RLIMIT_NOFILE, &old);
        printf("emfile: errors %d accepted %d\n", errors, accepted);
        evconnlistener_enable(l);
        struct timeval t = {0, 300000};
        event_base_loopexit(base, &t);
        event_base_dispatch(base);
        printf("after the limit: accepted %d\n", accepted);
        close(c3);
    }

    evconnlistener_set_cb(l, free_self, NULL);
    int c4 = connect_to(port);
    printf("last loop %d\n", event_base_dispatch(base));

    /* A listener on a socket the program bound and listens on itself (backlog 0). */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sin.sin_port = 0;
    bind(s, (struct sockaddr *)&sin, sizeof sin);
    listen(s, 8);
    struct evconnlistener *l2 = evconnlistener_new(base, on_accept, "own", 0, 0, s);
    printf("new on own socket: %s fd same %d\n", l2 ? "ok" : "failed", evconnlistener_get_fd(l2) == s);
    evconnlistener_free(l2);
    printf("socket still open without CLOSE_ON_FREE: %d\n", fcntl_ok(s));
    close(s);

    /* A socket that does not listen, with backlog 0: libevent watches it as it is; the
     * failed accept reaches the error callback. */
    int sp[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
    send(sp[1], "hello", 5, 0);
    errors = 0;
    struct evconnlistener *l3 = evconnlistener_new(base, on_accept, "bogus", LEV_OPT_CLOSE_ON_FREE, 0, sp[0]);
    printf("new on a socket that does not listen: %s\n", l3 ? "ok" : "failed");
    if (l3) {
        evconnlistener_set_error_cb(l3, on_error);
        struct timeval t = {2, 0};
        event_base_loopexit(base, &t);
        event_base_dispatch(base);
        printf("its accept failed: error callbacks %d\n", errors);
        evconnlistener_free(l3);
    }
    close(sp[1]);
    close(c1);
    close(c2);
    close(c4);
    event_base_free(base);
    printf("done\n");
    return 0;
}
