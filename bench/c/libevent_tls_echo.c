/* libevent's TLS echo server (bufferevent_openssl over OpenSSL) as a library, one instance
 * per process, for the in-process A/B in src/bin/tls_echo_ab/: an evconnlistener on a
 * listening socket made by the caller; per accepted connection an SSL object from one
 * shared SSL_CTX and a bufferevent_openssl_socket_new(..., BUFFEREVENT_SSL_ACCEPTING,
 * BEV_OPT_CLOSE_ON_FREE) whose read callback moves the plaintext input to the output
 * (evbuffer_add_buffer); handshakes are counted from BEV_EVENT_CONNECTED. A stop event on
 * the client's control pipe ends `serve`. The certificate and key are PEM files written by
 * the caller (the same ones the evrs server gets), loaded once into the SSL_CTX all servers
 * of the process share. */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static struct event_base *base;
static struct evconnlistener *listener;
static struct event *stop_ev;
static SSL_CTX *ctx;
/* Every live bufferevent (so `free` can free them), allocated for `cap` up front. */
static struct bufferevent **bevs;
static size_t bevs_cap, accepted, handshakes, failures;
static int stopped;
/* What the first completed handshake negotiated, for the report. */
static char negotiated[128];

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (handshakes++ == 0) {
            SSL *ssl = bufferevent_openssl_get_ssl(bev);
            snprintf(negotiated, sizeof negotiated, "%s %s", SSL_get_version(ssl),
                     SSL_get_cipher_name(ssl));
        }
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (!SSL_is_init_finished(bufferevent_openssl_get_ssl(bev)))
            failures++; /* before its handshake was done */
        bevs[i] = NULL;
        bufferevent_free(bev); /* frees the SSL and closes the socket */
    }
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)sa;
    (void)socklen;
    (void)arg;
    SSL *ssl = accepted < bevs_cap ? SSL_new(ctx) : NULL;
    if (!ssl) {
        evutil_closesocket(fd);
        failures++;
        return;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        evutil_closesocket(fd);
        failures++;
        return;
    }
    size_t i = accepted++;
    bevs[i] = bev;
    bufferevent_setcb(bev, read_cb, NULL, event_cb, (void *)(uintptr_t)i);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    stopped = 1;
    event_base_loopbreak(base); /* the caller reads the pipe */
}

/* Loads the certificate chain and key (PEM files) into the SSL_CTX every server built
 * afterwards uses, as a long-running server keeps one. 0 on success. */
int evrs_tls_libevent_load(const char *cert, const char *key)
{
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        ctx = NULL;
        return -1;
    }
    return 0;
}

/* Frees the SSL_CTX (after the last server). */
void evrs_tls_libevent_unload(void)
{
    SSL_CTX_free(ctx);
    ctx = NULL;
}

/* Builds the server on `listen_fd` (listening, non-blocking; owned from here on) for up to
 * `cap` connections, with the loaded SSL_CTX; `serve` stops when `stop_fd` is readable.
 * 0 on success. */
int evrs_tls_libevent_new(int listen_fd, int stop_fd, size_t cap)
{
    if (!ctx)
        return -1;
    struct event_config *cfg = event_config_new();
    event_config_avoid_method(cfg, "poll");
    event_config_avoid_method(cfg, "select");
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    bevs = calloc(cap ? cap : 1, sizeof *bevs);
    if (!base || !bevs)
        return -1;
    bevs_cap = cap;
    accepted = handshakes = failures = 0;
    negotiated[0] = '\0';
    /* backlog 0: the socket already listens. */
    listener = evconnlistener_new(base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE, 0, listen_fd);
    stop_ev = event_new(base, stop_fd, EV_READ | EV_PERSIST, stop_cb, NULL);
    if (!listener || !stop_ev || event_add(stop_ev, NULL) != 0)
        return -1;
    return 0;
}

/* Runs the loop until `total` handshakes (since `new`) have completed. -1 if one failed or
 * the stop fd became readable first (the client gave up). */
int evrs_tls_libevent_handshake_until(size_t total)
{
    stopped = 0;
    while (handshakes < total) {
        if (failures || stopped || event_base_loop(base, EVLOOP_ONCE) < 0)
            return -1;
    }
    return 0;
}

/* Serves until the stop fd is readable. */
int evrs_tls_libevent_serve(void)
{
    stopped = 0;
    return event_base_loop(base, 0) < 0 ? -1 : 0;
}

/* "version cipher" of the first handshake ("" before one). */
const char *evrs_tls_libevent_negotiated(void)
{
    return negotiated;
}

/* Frees the connections, the listener and the base (not the SSL_CTX). */
void evrs_tls_libevent_free(void)
{
    for (size_t i = 0; i < accepted; i++)
        if (bevs[i])
            bufferevent_free(bevs[i]);
    free(bevs);
    bevs = NULL;
    if (listener)
        evconnlistener_free(listener);
    if (stop_ev)
        event_free(stop_ev);
    if (base)
        event_base_free(base);
    listener = NULL;
    stop_ev = NULL;
    base = NULL;
    accepted = bevs_cap = handshakes = failures = 0;
}
