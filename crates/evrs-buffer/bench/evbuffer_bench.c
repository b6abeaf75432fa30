/* libevent side of the evrs-buffer benchmark: the same cases as
 * ../benches/evbuffer.rs, printed as "case ns_per_op" lines.
 * Build: cc -O2 evbuffer_bench.c -levent_core */
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static volatile size_t sink;

#define REPEAT 5
#define LINE_LEN 80
#define LINES_BYTES (10u * 1000u * 1000u)

static void report(const char *name, double best)
{
	printf("%s %.2f\n", name, best);
}

static void add_remove(const char *name, size_t size, long iters)
{
	char *data = malloc(size), *out = malloc(size);
	memset(data, 'x', size);
	double best = 1e30;
	for (int r = 0; r < REPEAT; r++) {
		struct evbuffer *b = evbuffer_new();
		double t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			evbuffer_add(b, data, size);
			sink += evbuffer_remove(b, out, size);
		}
		double t = (now_ns() - t0) / iters;
		if (t < best)
			best = t;
		evbuffer_free(b);
	}
	report(name, best);
	free(data);
	free(out);
}

static void fill_1m(struct evbuffer *b)
{
	char piece[4096];
	memset(piece, 'y', sizeof piece);
	for (int i = 0; i < 256; i++)
		evbuffer_add(b, piece, sizeof piece);
}

static void add_buffer_1m(long iters)
{
	double best = 1e30;
	for (int r = 0; r < REPEAT; r++) {
		struct evbuffer *a = evbuffer_new(), *b = evbuffer_new();
		fill_1m(a);
		double t0 = now_ns();
		for (long i = 0; i < iters; i++) {
			evbuffer_add_buffer(b, a);
			evbuffer_add_buffer(a, b);
		}
		double t = (now_ns() - t0) / (2.0 * iters);
		sink += evbuffer_get_length(a);
		if (t < best)
			best = t;
		evbuffer_free(a);
		evbuffer_free(b);
	}
	report("add_buffer_1MiB", best);
}

static void fill_lines(struct evbuffer *b, const char *eol)
{
	char line[LINE_LEN + 1];
	size_t body = LINE_LEN - strlen(eol);
	for (unsigned i = 0; i < LINES_BYTES / LINE_LEN; i++) {
		snprintf(line, sizeof line, "line %08u ", i);
		size_t l = strlen(line);
		memset(line + l, 'a' + (i % 26), body - l);
		memcpy(line + body, eol, strlen(eol));
		evbuffer_add(b, line, LINE_LEN);
	}
}

/* What libevent users do: evbuffer_readln, which mallocs each line, then
 * free. libevent has no other line API, so this one figure is reported
 * under both evrs variants' names: <name> (evrs readln_with, the line lent
 * in place) and <name>_owned (evrs readln, the line returned as Bytes). */
static void readln(const char *name, enum evbuffer_eol_style style, const char *eol)
{
	double best = 1e30;
	for (int r = 0; r < REPEAT; r++) {
		struct evbuffer *b = evbuffer_new();
		fill_lines(b, eol);
		long n = 0;
		double t0 = now_ns();
		char *line;
		size_t len;
		while ((line = evbuffer_readln(b, &len, style)) != NULL) {
			sink += len;
			free(line);
			n++;
		}
		double t = (now_ns() - t0) / n;
		if (t < best)
			best = t;
		evbuffer_free(b);
	}
	char owned[64];
	snprintf(owned, sizeof owned, "%s_owned", name);
	report(name, best);
	report(owned, best);
}

static void search(const char *name, const char *needle)
{
	double best = 1e30;
	for (int r = 0; r < REPEAT; r++) {
		struct evbuffer *b = evbuffer_new();
		fill_lines(b, "\r\n");
		evbuffer_add(b, needle, strlen(needle));
		double t0 = now_ns();
		struct evbuffer_ptr p = evbuffer_search(b, needle, strlen(needle), NULL);
		double t = now_ns() - t0;
		if (p.pos < 0)
			abort();
		sink += p.pos;
		if (t < best)
			best = t;
		evbuffer_free(b);
	}
	report(name, best);
}

int main(void)
{
	add_remove("add_remove_64B", 64, 2000000);
	add_remove("add_remove_64KiB", 65536, 20000);
	add_buffer_1m(1000000);
	readln("readln_crlf_10MB", EVBUFFER_EOL_CRLF, "\r\n");
	readln("readln_lf_10MB", EVBUFFER_EOL_LF, "\n");
	readln("readln_any_10MB", EVBUFFER_EOL_ANY, "\r\n");
	search("search_10MB_crlfcrlf", "\r\n\r\n");
	search("search_10MB_rare", "QUUX-needle");
	return 0;
}
