/* evrs C ABI test: libevent's evbuffer API (buffer.h, buffer_compat.h). Built against
 * Debian's headers and libevent_core, run on both libraries; every line printed must be the
 * same. Only what libevent defines is printed: no chain counts or sizes of free space,
 * which depend on how memory is laid out. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/buffer_compat.h>
#include <event2/event.h>

static void show(const char *tag, struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *tmp = malloc(n + 1);
    ev_ssize_t got = evbuffer_copyout(b, tmp, n);
    printf("%s: len %zu '", tag, n);
    for (ev_ssize_t i = 0; i < got && i < 80; i++) {
        unsigned char c = (unsigned char)tmp[i];
        if (c == '\r')
            printf("\\r");
        else if (c == '\n')
            printf("\\n");
        else if (c < 32 || c > 126)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("'%s\n", got > 80 ? "..." : "");
    free(tmp);
}

static void basics(void)
{
    struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
    char out[64];
    int r1 = evbuffer_add(a, "hello ", 6);
    int r2 = evbuffer_add(a, "world", 5);
    printf("add %d %d\n", r1, r2);
    printf("add0 %d\n", evbuffer_add(a, NULL, 0));
    show("a", a);
    printf("contig==len %d\n", evbuffer_get_contiguous_space(a) == evbuffer_get_length(a));
    memset(out, 0, sizeof out);
    printf("copyout %zd '%s'\n", evbuffer_copyout(a, out, 5), out);
    memset(out, 0, sizeof out);
    printf("remove %d '%s'\n", evbuffer_remove(a, out, 6), out);
    show("a", a);
    r1 = evbuffer_prepend(a, ">> ", 3);
    r2 = evbuffer_prepend(a, "", 0);
    printf("prepend %d %d\n", r1, r2);
    show("a", a);
    printf("drain %d\n", evbuffer_drain(a, 3));
    evbuffer_add(b, "12345", 5);
    printf("add_buffer %d\n", evbuffer_add_buffer(a, b));
    show("a", a);
    show("b", b);
    r1 = evbuffer_add_buffer(a, b);
    r2 = evbuffer_add_buffer(a, a);
    printf("add_buffer empty %d self %d\n", r1, r2);
    printf("remove_buffer %d\n", evbuffer_remove_buffer(a, b, 7));
    show("a", a);
    show("b", b);
    r1 = evbuffer_remove_buffer(a, b, 0);
    r2 = evbuffer_remove_buffer(a, a, 3);
    printf("remove_buffer 0: %d self: %d\n", r1, r2);
    printf("remove_buffer all %d\n", evbuffer_remove_buffer(a, b, 1000));
    show("a", a);
    show("b", b);
    evbuffer_add(a, "tail", 4);
    printf("prepend_buffer %d\n", evbuffer_prepend_buffer(a, b));
    show("a", a);
    show("b", b);
    struct evbuffer_iovec iv[3] = { { "x", 1 }, { "", 0 }, { "yz", 2 } };
    printf("add_iovec %zu\n", evbuffer_add_iovec(b, iv, 3));
    show("b", b);
    r1 = evbuffer_drain(a, 1000);
    r2 = evbuffer_drain(a, 5);
    printf("drain all %d, drain empty %d\n", r1, r2);
    show("a", a);
    printf("expand %d\n", evbuffer_expand(a, 5000));
    evbuffer_add(a, "after expand", 12);
    show("a", a);
    struct evbuffer_ptr p;
    evbuffer_ptr_set(a, &p, 6, EVBUFFER_PTR_SET);
    memset(out, 0, sizeof out);
    printf("copyout_from %zd '%s'\n", evbuffer_copyout_from(a, &p, out, 100), out);
    printf("copyout_from NULL %zd\n", evbuffer_copyout_from(a, NULL, out, 3));
    printf("printf %d\n", evbuffer_add_printf(b, "[%d|%s|%05.1f]", 42, "str", 3.14159));
    show("b", b);
    char big[600];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    printf("printf big %d\n", evbuffer_add_printf(b, "%s!", big));
    printf("len %zu\n", evbuffer_get_length(b));
    evbuffer_lock(a);
    evbuffer_unlock(a);
    r1 = evbuffer_set_flags(a, EVBUFFER_FLAG_DRAINS_TO_FD);
    r2 = evbuffer_clear_flags(a, EVBUFFER_FLAG_DRAINS_TO_FD);
    printf("flags %d %d\n", r1, r2);
    evbuffer_free(a);
    evbuffer_free(b);
}

static const char *style_name[] = { "ANY", "CRLF", "CRLF_STRICT", "LF", "NUL" };

static void lines_of(enum evbuffer_eol_style st, const char *data, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    printf("%s:", style_name[st]);
    for (;;) {
        size_t n = 99;
        char *line = evbuffer_readln(b, &n, st);
        if (!line) {
            printf(" | none n=%zu left=%zu\n", n, evbuffer_get_length(b));
            break;
        }
        printf(" [%s](%zu)", line, n);
        free(line);
    }
    evbuffer_free(b);
}

static void readlines(void)
{
    static const char mix[] = "a\r\nb\n\nc\rd\r\n\r\ne\n\rf";
    for (int st = 0; st <= 4; st++)
        lines_of(st, mix, sizeof mix - 1);
    lines_of(EVBUFFER_EOL_NUL, "one\0two\0\0three", 14);
    lines_of(EVBUFFER_EOL_ANY, "x\r", 2);
    /* ANY returns "x" before its LF arrives; the LF then reads as an empty line. */
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "x\r", 2);
    char *l = evbuffer_readln(b, NULL, EVBUFFER_EOL_ANY);
    printf("any early [%s]\n", l);
    free(l);
    evbuffer_add(b, "\nrest\n", 6);
    l = evbuffer_readln(b, NULL, EVBUFFER_EOL_ANY);
    printf("any late [%s]\n", l);
    free(l);
    l = evbuffer_readline(b);
    printf("readline [%s] left %zu\n", l, evbuffer_get_length(b));
    free(l);
    evbuffer_add(b, "no eol", 6);
    printf("readline none %p\n", (void *)evbuffer_readline(b));
    evbuffer_freeze(b, 1);
    evbuffer_add(b, "\n", 1);
    size_t n = 7;
    printf("frozen readln %p n=%zu\n", (void *)evbuffer_readln(b, &n, EVBUFFER_EOL_LF), n);
    evbuffer_unfreeze(b, 1);
    evbuffer_free(b);
}

static void searching(void)
{
    struct evbuffer *b = evbuffer_new(), *c = evbuffer_new();
    evbuffer_add(b, "abcabcab", 8);
    evbuffer_add(c, "cab--x\r\ny\n", 10);
    evbuffer_add_buffer(b, c); /* "abcabcabcab--x\r\ny\n" across chains */
    struct evbuffer_ptr p = evbuffer_search(b, "cab", 3, NULL);
    printf("search cab %zd\n", (ssize_t)p.pos);
    struct evbuffer_ptr s, e;
    int hits = 0;
    while (p.pos >= 0) {
        printf(" at %zd", (ssize_t)p.pos);
        hits++;
        if (evbuffer_ptr_set(b, &p, 1, EVBUFFER_PTR_ADD) < 0)
            break;
        p = evbuffer_search(b, "cab", 3, &p);
    }
    printf(" (%d hits)\n", hits);
    printf("search bab %zd, empty %zd\n", (ssize_t)evbuffer_search(b, "bab", 3, NULL).pos,
        (ssize_t)evbuffer_search(b, "", 0, NULL).pos);
    evbuffer_ptr_set(b, &s, 3, EVBUFFER_PTR_SET);
    printf("search empty from 3: %zd\n", (ssize_t)evbuffer_search(b, "", 0, &s).pos);
    printf("search across %zd\n", (ssize_t)evbuffer_search(b, "bca", 3, NULL).pos);
    evbuffer_ptr_set(b, &s, 1, EVBUFFER_PTR_SET);
    evbuffer_ptr_set(b, &e, 6, EVBUFFER_PTR_SET);
    printf("range bc %zd\n", (ssize_t)evbuffer_search_range(b, "bc", 2, &s, &e).pos);
    evbuffer_ptr_set(b, &s, 2, EVBUFFER_PTR_SET);
    printf("range bc from 2 to 6 %zd\n", (ssize_t)evbuffer_search_range(b, "bc", 2, &s, &e).pos);
    evbuffer_ptr_set(b, &e, 7, EVBUFFER_PTR_SET);
    printf("range bc from 2 to 7 %zd\n", (ssize_t)evbuffer_search_range(b, "bc", 2, &s, &e).pos);
    printf("range empty %zd\n", (ssize_t)evbuffer_search_range(b, "", 0, &s, &e).pos);
    printf("range NULL end %zd\n", (ssize_t)evbuffer_search_range(b, "ab-", 3, &s, NULL).pos);
    size_t len = evbuffer_get_length(b);
    printf("ptr_set end %d\n", evbuffer_ptr_set(b, &s, len, EVBUFFER_PTR_SET));
    int r = evbuffer_ptr_set(b, &s, len + 1, EVBUFFER_PTR_SET);
    printf("ptr_set past %d pos %zd\n", r, (ssize_t)s.pos);
    evbuffer_ptr_set(b, &s, 3, EVBUFFER_PTR_SET);
    r = evbuffer_ptr_set(b, &s, 5, EVBUFFER_PTR_ADD);
    printf("ptr_add %d pos %zd\n", r, (ssize_t)s.pos);
    r = evbuffer_ptr_set(b, &s, len, EVBUFFER_PTR_ADD);
    printf("ptr_add past %d pos %zd\n", r, (ssize_t)s.pos);
    printf("ptr_add on invalid %d\n", evbuffer_ptr_set(b, &s, 1, EVBUFFER_PTR_ADD));
    for (int st = 0; st <= 4; st++) {
        size_t el = 77;
        struct evbuffer_ptr q = evbuffer_search_eol(b, NULL, &el, st);
        printf("eol %s at %zd len %zu\n", style_name[st], (ssize_t)q.pos, el);
    }
    evbuffer_ptr_set(b, &s, 15, EVBUFFER_PTR_SET);
    size_t el = 0;
    printf("eol LF from 15: %zd\n", (ssize_t)evbuffer_search_eol(b, &s, &el, EVBUFFER_EOL_LF).pos);
    evbuffer_ptr_set(b, &s, 4, EVBUFFER_PTR_SET);
    char out[8] = { 0 };
    printf("copyout_from 4: %zd '%s'\n", evbuffer_copyout_from(b, &s, out, 5), out);
    unsigned char *f = evbuffer_find(b, (const unsigned char *)"--x", 3);
    printf("find %.3s\n", f ? (char *)f : "?");
    /* the first 14 bytes are contiguous now: this pullup moves nothing */
    printf("find at %ld\n", f ? (long)(f - evbuffer_pullup(b, 14)) : -1L);
    printf("find missing %p\n", (void *)evbuffer_find(b, (const unsigned char *)"zz", 2));

    /* peek: the extents, joined, are the data */
    struct evbuffer_iovec v[16];
    int nv = evbuffer_peek(b, -1, NULL, v, 16);
    size_t tot = 0;
    char joined[64] = { 0 };
    for (int i = 0; i < nv && i < 16; i++) {
        memcpy(joined + tot, v[i].iov_base, v[i].iov_len);
        tot += v[i].iov_len;
    }
    char ref[64] = { 0 };
    evbuffer_copyout(b, ref, len);
    printf("peek all: %zu bytes, same %d\n", tot, tot == len && memcmp(joined, ref, len) == 0);
    printf("peek len 0: %d\n", evbuffer_peek(b, 0, NULL, v, 16));
    printf("peek count>=1: %d\n", evbuffer_peek(b, -1, NULL, NULL, 0) >= 1);
    evbuffer_ptr_set(b, &s, 5, EVBUFFER_PTR_SET);
    nv = evbuffer_peek(b, 2, &s, v, 16);
    printf("peek at 5: %d first '%c'\n", nv >= 1, nv >= 1 ? *(char *)v[0].iov_base : '?');
    evbuffer_ptr_set(b, &s, len, EVBUFFER_PTR_SET);
    printf("peek at end: %d\n", evbuffer_peek(b, -1, &s, v, 16));
    /* pullup joins the chains */
    unsigned char *all = evbuffer_pullup(b, -1);
    printf("pullup %.*s\n", (int)len - 4, (char *)all);
    printf("contig after pullup %d\n", evbuffer_get_contiguous_space(b) == len);
    printf("pullup 0 %p, too much %p, 3 '%.3s'\n", (void *)evbuffer_pullup(b, 0),
        (void *)evbuffer_pullup(b, len + 1), evbuffer_pullup(b, 3));
    printf("EVBUFFER_LENGTH %zu DATA '%.5s'\n", EVBUFFER_LENGTH(b), (char *)EVBUFFER_DATA(b));
    struct evbuffer *empty = evbuffer_new();
    printf("empty DATA %p\n", (void *)EVBUFFER_DATA(empty));
    evbuffer_free(empty);
    evbuffer_free(b);
    evbuffer_free(c);
}

static void reserving(void)
{
    struct evbuffer *b = evbuffer_new();
    struct evbuffer_iovec v[4];
    evbuffer_add(b, "head:", 5);
    int n = evbuffer_reserve_space(b, 100, v, 1);
    printf("reserve 1: %d len>=100 %d\n", n, v[0].iov_len >= 100);
    memcpy(v[0].iov_base, "0123456789", 10);
    v[0].iov_len = 10;
    printf("commit %d\n", evbuffer_commit_space(b, v, 1));
    show("b", b);
    printf("commit again %d\n", evbuffer_commit_space(b, v, 1));
    printf("commit 0 vecs %d\n", evbuffer_commit_space(b, v, 0));
    n = evbuffer_reserve_space(b, 3000, v, 2);
    size_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += v[i].iov_len;
    printf("reserve 2: ok %d sum>=3000 %d\n", n >= 1 && n <= 2, sum >= 3000);
    size_t left = 3000;
    char ch = 'A';
    for (int i = 0; i < n; i++) {
        size_t k = v[i].iov_len < left ? v[i].iov_len : left;
        memset(v[i].iov_base, ch++, k);
        v[i].iov_len = k;
        left -= k;
    }
    struct evbuffer_iovec bad = v[0];
    bad.iov_base = (char *)bad.iov_base + 1;
    printf("commit bad base %d\n", evbuffer_commit_space(b, &bad, 1));
    int r = evbuffer_commit_space(b, v, n);
    printf("commit %d len %zu\n", r, evbuffer_get_length(b));
    printf("reserve 0 vecs %d\n", evbuffer_reserve_space(b, 10, v, 0));
    evbuffer_freeze(b, 0);
    printf("reserve frozen %d\n", evbuffer_reserve_space(b, 10, v, 1));
    printf("commit frozen %d\n", evbuffer_commit_space(b, v, 0));
    evbuffer_unfreeze(b, 0);
    n = evbuffer_reserve_space(b, 10, v, 1);
    evbuffer_add(b, "x", 1);
    v[0].iov_len = 1;
    printf("commit after add %d\n", evbuffer_commit_space(b, v, 1));
    evbuffer_free(b);
}

static int cleanups;
static void ref_done(const void *data, size_t len, void *extra)
{
    printf("cleanup '%.*s' %zu %s\n", (int)len, (const char *)data, len, (const char *)extra);
    cleanups++;
}

static void seg_done(struct evbuffer_file_segment const *seg, int flags, void *arg)
{
    (void)seg;
    printf("segment cleanup flags %d %s\n", flags, (const char *)arg);
}

static void references_and_files(void)
{
    struct evbuffer *b = evbuffer_new(), *c = evbuffer_new();
    static const char msg[] = "by reference";
    printf("add_reference %d\n", evbuffer_add_reference(b, msg, 12, ref_done, "extra"));
    evbuffer_add(b, "+", 1);
    show("b", b);
    printf("buffer_reference %d\n", evbuffer_add_buffer_reference(c, b));
    show("c", c);
    printf("buffer_reference self %d\n", evbuffer_add_buffer_reference(b, b));
    int r = evbuffer_drain(b, 100);
    printf("drain b %d cleanups %d\n", r, cleanups);
    r = evbuffer_drain(c, 5);
    printf("drain c %d cleanups %d\n", r, cleanups);
    evbuffer_drain(c, 100);
    printf("after all drains cleanups %d\n", cleanups);
    evbuffer_freeze(b, 0);
    r = evbuffer_add_reference(b, msg, 3, ref_done, "no");
    printf("add_reference frozen %d cleanups %d\n", r, cleanups);
    evbuffer_unfreeze(b, 0);

    char path[] = "/tmp/evrs-buffer-test-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    const char *content = "0123456789abcdefghij\nsecond line\n";
    if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
        return;
    int fd2 = dup(fd);
    printf("add_file %d\n", evbuffer_add_file(b, fd, 0, -1));
    show("b", b);
    evbuffer_drain(b, 1000);
    struct evbuffer_file_segment *seg = evbuffer_file_segment_new(fd2, 5, 10, 0);
    printf("segment %s\n", seg ? "ok" : "NULL");
    evbuffer_file_segment_add_cleanup_cb(seg, seg_done, "arg");
    r = evbuffer_add_file_segment(b, seg, 0, -1);
    printf("add seg %d", r);
    r = evbuffer_add_file_segment(b, seg, 2, 3);
    printf(" %d", r);
    r = evbuffer_add_file_segment(c, seg, 8, -1);
    printf(" %d\n", r);
    show("b", b);
    show("c", c);
    char line[32] = { 0 };
    printf("remove %d '%s'\n", evbuffer_remove(b, line, 4), line);
    struct evbuffer *d = evbuffer_new();
    printf("buffer_reference of file data %d\n", evbuffer_add_buffer_reference(d, b));
    evbuffer_free(d);
    /* A failed add also drops the caller's reference (libevent's rule): not freed again. */
    struct evbuffer_file_segment *seg2 = evbuffer_file_segment_new(fd2, 0, 4, 0);
    printf("add seg past end %d\n", evbuffer_add_file_segment(c, seg2, 2, 3));
    evbuffer_free(b);
    printf("b freed\n");
    evbuffer_free(c);
    printf("c freed\n");
    evbuffer_file_segment_free(seg);
    printf("segment freed by caller\n");
    /* without CLOSE_ON_FREE the caller's fd stays open */
    printf("fd2 open %d\n", fcntl(fd2, F_GETFD) >= 0);
    close(fd2);
}

static void socket_io(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return;
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    struct evbuffer *b = evbuffer_new(), *in = evbuffer_new();
    char *big = malloc(10000);
    for (int i = 0; i < 10000; i++)
        big[i] = 'a' + i % 26;
    evbuffer_add(b, big, 10000);
    int r = evbuffer_write_atmost(b, sv[0], 10);
    printf("write_atmost 10: %d left %zu\n", r, evbuffer_get_length(b));
    r = evbuffer_write(b, sv[0]);
    printf("write: %d left %zu\n", r, evbuffer_get_length(b));
    printf("write empty: %d\n", evbuffer_write(b, sv[0]));
    printf("write_atmost 0: %d\n", evbuffer_write_atmost(b, sv[0], 0));
    printf("read 100: %d\n", evbuffer_read(in, sv[1], 100));
    printf("read -1: %d\n", evbuffer_read(in, sv[1], -1));
    printf("read 100000: %d\n", evbuffer_read(in, sv[1], 100000));
    while ((r = evbuffer_read(in, sv[1], -1)) > 0)
        ;
    printf("drained socket: last %d EAGAIN %d total %zu\n", r, errno == EAGAIN, evbuffer_get_length(in));
    printf("same bytes %d\n", memcmp(evbuffer_pullup(in, -1), big, 10000) == 0);
    evbuffer_freeze(in, 0);
    printf("read frozen %d\n", evbuffer_read(in, sv[1], -1));
    evbuffer_unfreeze(in, 0);
    evbuffer_freeze(in, 1);
    printf("write frozen %d\n", evbuffer_write(in, sv[0]));
    evbuffer_unfreeze(in, 1);
    close(sv[0]);
    printf("read eof %d\n", evbuffer_read(b, sv[1], -1));
    close(sv[1]);
    free(big);
    evbuffer_free(b);
    evbuffer_free(in);
}

static void cb_a(struct evbuffer *b, const struct evbuffer_cb_info *i, void *arg)
{
    printf("  cb %s: orig %zu +%zu -%zu now %zu\n", (const char *)arg, i->orig_size, i->n_added,
        i->n_deleted, evbuffer_get_length(b));
}

static void cb_drainer(struct evbuffer *b, const struct evbuffer_cb_info *i, void *arg)
{
    (void)arg;
    printf("  drainer: +%zu -%zu\n", i->n_added, i->n_deleted);
    if (evbuffer_get_length(b) > 10)
        evbuffer_drain(b, 4);
}

static void old_cb(struct evbuffer *b, size_t old_len, size_t new_len, void *arg)
{
    (void)b;
    printf("  old cb %s: %zu -> %zu\n", (const char *)arg, old_len, new_len);
}

static void self_remover(struct evbuffer *b, const struct evbuffer_cb_info *i, void *arg)
{
    (void)i;
    printf("  self remover runs\n");
    evbuffer_remove_cb_entry(b, *(struct evbuffer_cb_entry **)arg);
}

static void callbacks(void)
{
    struct evbuffer *b = evbuffer_new(), *c = evbuffer_new();
    struct evbuffer_cb_entry *ea = evbuffer_add_cb(b, cb_a, "A");
    struct evbuffer_cb_entry *eb = evbuffer_add_cb(b, cb_a, "B");
    printf("add\n");
    evbuffer_add(b, "0123456789", 10);
    printf("drain\n");
    evbuffer_drain(b, 3);
    printf("drain 0 / empty other\n");
    evbuffer_drain(b, 0);
    printf("readln\n");
    evbuffer_add(b, "\r\n", 2);
    free(evbuffer_readln(b, NULL, EVBUFFER_EOL_CRLF));
    printf("disable B\n");
    evbuffer_cb_clear_flags(b, eb, EVBUFFER_CB_ENABLED);
    evbuffer_add(b, "xy", 2);
    printf("enable B, remove A by entry %d\n", evbuffer_remove_cb_entry(b, ea));
    evbuffer_cb_set_flags(b, eb, EVBUFFER_CB_ENABLED);
    evbuffer_add(b, "z", 1);
    evbuffer_add_cb(c, cb_a, "C");
    printf("add_buffer\n");
    evbuffer_add_buffer(c, b);
    printf("remove_buffer part\n");
    evbuffer_remove_buffer(c, b, 1);
    printf("remove_buffer all\n");
    evbuffer_remove_buffer(c, b, 100);
    printf("prepend_buffer\n");
    evbuffer_add(c, "c", 1);
    evbuffer_prepend_buffer(c, b);
    int r1 = evbuffer_remove_cb(b, cb_a, "B");
    int r2 = evbuffer_remove_cb(b, cb_a, "B");
    printf("remove_cb %d again %d\n", r1, r2);
    evbuffer_add(b, "silent", 6);
    printf("iovec\n");
    struct evbuffer_iovec iv[2] = { { "12", 2 }, { "345", 3 } };
    evbuffer_add_iovec(c, iv, 2);
    printf("printf + reserve/commit\n");
    evbuffer_add_printf(c, "%d", 12345);
    struct evbuffer_iovec v[1];
    evbuffer_reserve_space(c, 10, v, 1);
    memcpy(v[0].iov_base, "rsv", 3);
    v[0].iov_len = 3;
    evbuffer_commit_space(c, v, 1);
    printf("pullup (no change)\n");
    evbuffer_pullup(c, -1);
    printf("freeze\n");
    evbuffer_freeze(c, 0);
    printf("  add frozen %d\n", evbuffer_add(c, "no", 2));
    evbuffer_unfreeze(c, 0);
    evbuffer_freeze(c, 1);
    char tmp[4];
    r1 = evbuffer_drain(c, 1);
    r2 = evbuffer_remove(c, tmp, 1);
    int r3 = (int)evbuffer_copyout(c, tmp, 1);
    int r4 = evbuffer_prepend(c, "p", 1);
    printf("  drain frozen %d remove %d copyout %d prepend %d\n", r1, r2, r3, r4);
    printf("  add at end %d\n", evbuffer_add(c, "!", 1));
    evbuffer_unfreeze(c, 1);
    printf("drainer (callback changes the buffer)\n");
    struct evbuffer *d = evbuffer_new();
    evbuffer_add_cb(d, cb_a, "D");
    evbuffer_add_cb(d, cb_drainer, NULL);
    evbuffer_add(d, "0123456789ABC", 13);
    show("d", d);
    printf("self remover\n");
    static struct evbuffer_cb_entry *self;
    self = evbuffer_add_cb(d, self_remover, &self);
    evbuffer_add(d, "1", 1);
    evbuffer_add(d, "2", 1);
    printf("setcb\n");
    evbuffer_setcb(d, old_cb, "old");
    evbuffer_add(d, "abc", 3);
    evbuffer_drain(d, 2);
    evbuffer_setcb(d, NULL, NULL);
    evbuffer_add(d, "quiet", 5);
    printf("setcb done\n");
    evbuffer_free(b);
    evbuffer_free(c);
    evbuffer_free(d);
}

static void deferred(void)
{
    struct event_base *base = event_base_new();
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_cb(b, cb_a, "deferred");
    printf("defer %d\n", evbuffer_defer_callbacks(b, base));
    evbuffer_add(b, "hello", 5);
    evbuffer_add(b, " world", 6);
    evbuffer_drain(b, 2);
    printf("before loop\n");
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("after loop\n");
    evbuffer_add(b, "!", 1);
    event_base_loop(base, EVLOOP_NONBLOCK);
    printf("after loop 2\n");
    evbuffer_free(b);
    event_base_free(base);
}

/* What libevent's own evbuffer tests rely on beyond the bytes: each reserved extent is its
 * chain's whole free space, and chains a reservation added stay (a later reservation hands
 * them out again) until running out of vectors replaces them; printf leaves a NUL after its
 * text; content a buffer got by reference cannot be referenced again; a failing allocator
 * fails evbuffer_add_cb and evbuffer_setcb. Only relations are printed, no sizes. */
static void *failing_malloc(size_t n)
{
    (void)n;
    errno = ENOMEM;
    return NULL;
}

static void extents(void)
{
    struct evbuffer *b = evbuffer_new();
    struct evbuffer_iovec v[3];
    int n = evbuffer_reserve_space(b, 1024, v, 2);
    char *cp = v[0].iov_base;
    size_t room = v[0].iov_len - 512;
    printf("reserve empty: %d len>=1024 %d\n", n, v[0].iov_len >= 1024);
    memset(cp, 'X', 512);
    v[0].iov_len = 512;
    evbuffer_commit_space(b, v, 1);
    n = evbuffer_reserve_space(b, 32, v, 2);
    printf("reserve small: %d after the data %d all its room %d\n", n, (char *)v[0].iov_base == cp + 512,
        v[0].iov_len == room);
    n = evbuffer_reserve_space(b, room + 64, v, 2);
    char *cp2 = v[1].iov_base;
    printf("reserve split: %d the room first %d then >=64 %d\n", n,
        (char *)v[0].iov_base == cp + 512 && v[0].iov_len == room, v[1].iov_len >= 64);
    memset(v[0].iov_base, 'Z', 1);
    v[0].iov_len = 1;
    evbuffer_commit_space(b, v, 1);
    n = evbuffer_reserve_space(b, room - 1 + 64, v, 2);
    printf("reserve again: %d same second extent %d\n", n, n == 2 && v[1].iov_base == cp2);
    v[0].iov_len = 0;
    memset(v[1].iov_base, 'x', 3);
    v[1].iov_len = 3;
    int rc = evbuffer_commit_space(b, v, 2);
    printf("commit to the second %d len %zu\n", rc, evbuffer_get_length(b));
    show("b", b);
    evbuffer_free(b);

    b = evbuffer_new();
    evbuffer_reserve_space(b, 128, v, 2);
    char *c1 = v[0].iov_base;
    size_t sz = v[0].iov_len;
    n = evbuffer_reserve_space(b, sz + 128, v, 2);
    printf("grow to 2: %d same first %d\n", n, v[0].iov_base == c1);
    char *c2 = v[1].iov_base;
    sz = v[0].iov_len + v[1].iov_len;
    n = evbuffer_reserve_space(b, sz + 128, v, 3);
    printf("grow to 3: %d same two %d\n", n, v[0].iov_base == c1 && v[1].iov_base == c2);
    sz = v[0].iov_len + v[1].iov_len + v[2].iov_len;
    n = evbuffer_reserve_space(b, sz + 128, v, 2);
    printf("more in 2: %d one big %d\n", n, v[0].iov_len >= sz + 128);
    evbuffer_free(b);

    b = evbuffer_new();
    evbuffer_add_printf(b, "%s", "text that gets drained again");
    evbuffer_drain(b, evbuffer_get_length(b));
    evbuffer_add_printf(b, "%d-%s", 42, "x");
    const char *s = (const char *)evbuffer_pullup(b, -1);
    printf("printf, pullup: '%s' NUL after %d\n", s, strlen(s) == evbuffer_get_length(b));
    evbuffer_add_printf(b, "%s", "+more");
    s = (const char *)evbuffer_pullup(b, -1);
    printf("printf, pullup: '%s' NUL after %d\n", s, strlen(s) == evbuffer_get_length(b));

    struct evbuffer *r = evbuffer_new(), *r2 = evbuffer_new();
    printf("reference %d\n", evbuffer_add_buffer_reference(r, b));
    int n1 = evbuffer_add_buffer_reference(r2, r);
    printf("nested reference %d self %d\n", n1, evbuffer_add_buffer_reference(r, r));
    evbuffer_add_buffer(r2, r);
    printf("moved, nested %d\n", evbuffer_add_buffer_reference(r, r2));
    evbuffer_drain(r2, evbuffer_get_length(r2));
    evbuffer_add(r2, "own", 3);
    printf("drained, own data %d\n", evbuffer_add_buffer_reference(r, r2));
    show("r", r);

    event_set_mem_functions(failing_malloc, realloc, free);
    struct evbuffer_cb_entry *e = evbuffer_add_cb(b, cb_a, "never");
    int rs = evbuffer_setcb(b, old_cb, "never");
    event_set_mem_functions(malloc, realloc, free);
    printf("failing malloc: add_cb NULL %d setcb %d\n", e == NULL, rs);
    evbuffer_add(b, "!", 1);
    evbuffer_free(b);
    evbuffer_free(r);
    evbuffer_free(r2);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("== basics\n");
    basics();
    printf("== readln\n");
    readlines();
    printf("== search\n");
    searching();
    printf("== reserve\n");
    reserving();
    printf("== references and files\n");
    references_and_files();
    printf("== socket\n");
    socket_io();
    printf("== callbacks\n");
    callbacks();
    printf("== deferred\n");
    deferred();
    printf("== extents\n");
    extents();
    printf("done\n");
    return 0;
}
