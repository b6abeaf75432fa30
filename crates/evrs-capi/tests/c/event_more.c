/* evrs C ABI test: the rest of event2/event.h — event_base_foreach_event,
 * event_base_dump_events, event_base_active_by_fd / _by_signal, event_finalize /
 * event_free_finalize, event_gettime_monotonic, debug mode, libevent_global_shutdown.
 * Built against Debian's headers and libevent_core; the output must be the same on both.
 * With an argument "debug-N" it runs one debug-mode case (the fatal ones end the process
 * through the fatal callback). */
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/util.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char trace[512];
static struct event_base *base;
/* fd numbers differ between the libraries (libevent opens more of its own): print names */
static int fd_p, fd_q;

static const char *fdname(int fd)
{
	static char buf[16];
	if (fd == fd_p)
		return "P";
	if (fd == fd_q)
		return "Q";
	snprintf(buf, sizeof buf, "%d", fd);
	return buf;
}

static void note(const char *s)
{
	strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

static void cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s(%s,%#x) ", (const char *)arg, fdname(fd), what);
	note(buf);
}

static const char *names[16];
static const struct event *evs[16];
static int nev;

static void name(const struct event *ev, const char *n)
{
	evs[nev] = ev;
	names[nev++] = n;
}

static const char *name_of(const struct event *ev)
{
	for (int i = 0; i < nev; i++)
		if (evs[i] == ev)
			return names[i];
	return "?";
}

static int visit(const struct event_base *b, const struct event *ev, void *arg)
{
	int *count = arg;
	/* read-only accessors are allowed here */
	printf("  visit %s fd %s events %#x base-ok %d pending %#x\n", name_of(ev), fdname(event_get_fd(ev)),
	    event_get_events(ev), event_get_base(ev) == b, event_pending(ev, EV_READ | EV_WRITE | EV_TIMEOUT | EV_SIGNAL, NULL));
	return ++*count == 100 ? 7 : 0;
}

static int stop_at_two(const struct event_base *b, const struct event *ev, void *arg)
{
	(void)b;
	(void)ev;
	int *count = arg;
	return ++*count == 2 ? 42 : 0;
}

/* Prints the dump with event addresses replaced by names and timeouts by T. */
static void dump(void)
{
	FILE *f = tmpfile();
	event_base_dump_events(base, f);
	rewind(f);
	char line[512];
	while (fgets(line, sizeof line, f)) {
		/* libevent lists the events it made itself (its signal pipe's); evrs does not */
		if (strstr(line, "Internal"))
			continue;
		char out[512] = "";
		char *p = line;
		while (*p) {
			if (p[0] == '0' && p[1] == 'x') {
				char *end;
				unsigned long long v = strtoull(p, &end, 16);
				const char *n = "?";
				for (int i = 0; i < nev; i++)
					if ((unsigned long long)(uintptr_t)evs[i] == v)
						n = names[i];
				strcat(out, n);
				p = end;
			} else if (!strncmp(p, "[fd  ", 5)) {
				char *end;
				long fd = strtol(p + 5, &end, 10);
				strcat(out, "[fd  ");
				strcat(out, fdname((int)fd));
				p = end;
			} else if (!strncmp(p, "Timeout=", 8)) {
				strcat(out, "Timeout=T");
				p += 8;
				while (*p && *p != ' ' && *p != '\n')
					p++;
			} else {
				strncat(out, p, 1);
				p++;
			}
		}
		printf("dump| %s", out);
	}
	fclose(f);
}

static void sorted_visit(void)
{
	/* foreach order is the implementation's: print the visited set sorted by name */
	int count = 0;
	printf("foreach -> %d\n", event_base_foreach_event(base, visit, &count));
	printf("foreach visited %d\n", count);
}

static void finalizer(struct event *ev, void *arg)
{
	char buf[64];
	snprintf(buf, sizeof buf, "fin:%s(pending %d) ", (const char *)arg, event_pending(ev, EV_READ | EV_TIMEOUT, NULL));
	note(buf);
}

static struct event *to_free;
static void free_finalizer(struct event *ev, void *arg)
{
	note(ev == to_free ? "freefin:ok " : "freefin:wrong ");
	(void)arg;
}

static void run(const char *what)
{
	trace[0] = 0;
	int r = event_base_loop(base, EVLOOP_NONBLOCK);
	printf("%s: loop %d trace '%s'\n", what, r, trace);
}

static void main_test(void)
{
	base = event_base_new();
	/* p[0] is a pipe's read end: never readable (nothing is written) nor writable, so
	 * only the calls under test activate its events */
	int p[2], q[2];
	if (pipe(p))
		return;
	evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, q);
	evutil_make_socket_nonblocking(p[0]);
	evutil_make_socket_nonblocking(q[0]);
	fd_p = p[0];
	fd_q = q[0];

	struct event *r1 = event_new(base, p[0], EV_READ | EV_PERSIST, cb, "r1");
	struct event *r2 = event_new(base, p[0], EV_READ, cb, "r2");
	struct event *w1 = event_new(base, p[0], EV_WRITE | EV_PERSIST, cb, "w1");
	struct event *c1 = event_new(base, q[0], EV_CLOSED | EV_READ | EV_PERSIST, cb, "c1");
	struct event *t1 = event_new(base, p[0], 0, cb, "t1");
	struct event *t2 = event_new(base, -1, 0, cb, "t2");
	struct event *s1 = event_new(base, SIGUSR1, EV_SIGNAL | EV_PERSIST, cb, "s1");
	struct event *s2 = event_new(base, SIGUSR1, EV_SIGNAL, cb, "s2");
	struct event *idle = event_new(base, -1, 0, cb, "idle");
	name(r1, "r1"); name(r2, "r2"); name(w1, "w1"); name(c1, "c1"); name(t1, "t1"); name(t2, "t2");
	name(s1, "s1"); name(s2, "s2"); name(idle, "idle");

	int count = 0;
	printf("foreach empty -> %d count %d\n", event_base_foreach_event(base, visit, &count), count);
	printf("foreach NULL fn -> %d\n", event_base_foreach_event(base, NULL, NULL));
	printf("foreach NULL base -> %d\n", event_base_foreach_event(NULL, visit, &count));
	dump();

	struct timeval hour = {3600, 0};
	event_add(r1, NULL);
	event_add(r2, &hour);
	event_add(w1, NULL);
	event_add(c1, NULL);
	event_add(t1, &hour);
	event_add(t2, &hour);
	event_active(idle, EV_TIMEOUT, 1);
	printf("num events added %d active %d virtual %d all %d\n", event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED),
	    event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE), event_base_get_num_events(base, EVENT_BASE_COUNT_VIRTUAL),
	    event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE | EVENT_BASE_COUNT_VIRTUAL));
	sorted_visit();
	count = 0;
	int fr = event_base_foreach_event(base, stop_at_two, &count);
	printf("foreach stop -> %d after %d\n", fr, count);
	dump();
	run("idle");

	/* by fd: READ wakes r1 and r2 (the newest first), WRITE w1, TIMEOUT the timers on the fd */
	event_base_active_by_fd(base, p[0], EV_READ);
	run("by fd READ");
	event_add(r2, NULL);
	event_base_active_by_fd(base, p[0], EV_READ | EV_WRITE);
	run("by fd READ|WRITE");
	event_base_active_by_fd(base, p[0], EV_TIMEOUT);
	run("by fd TIMEOUT");
	event_base_active_by_fd(base, p[0], EV_TIMEOUT | EV_READ);
	run("by fd TIMEOUT|READ");
	event_add(r2, NULL);
	event_base_active_by_fd(base, q[0], EV_CLOSED);
	run("by fd CLOSED");
	event_base_active_by_fd(base, q[0], EV_WRITE);
	run("by fd WRITE on q");
	event_base_active_by_fd(base, 1000, EV_READ);
	event_base_active_by_fd(base, -1, EV_READ);
	run("by fd unknown");
	event_base_active_by_fd(base, -1, EV_TIMEOUT);
	run("by fd -1 TIMEOUT");
	event_add(t2, &hour);

	/* by signal: no signal is raised */
	event_add(s1, NULL);
	event_add(s2, NULL);
	dump();
	event_base_active_by_signal(base, SIGUSR1);
	run("by signal");
	event_base_active_by_signal(base, SIGUSR2);
	event_base_active_by_signal(base, 100000);
	event_base_active_by_signal(base, -1);
	run("by signal unknown");
	event_del(s1);

	/* finalize: the callback is replaced and runs in the loop, once */
	struct timeval t;
	printf("gettime_monotonic %d", event_gettime_monotonic(base, &t));
	struct timeval t0 = t;
	usleep(2000);
	event_gettime_monotonic(base, &t);
	int fw = evutil_timercmp(&t, &t0, >=);
	printf(" forward %d null-base %d null-tv %d\n", fw, event_gettime_monotonic(NULL, &t), event_gettime_monotonic(base, NULL));

	printf("finalize r1 %d\n", event_finalize(0, r1, finalizer));
	int pend = event_pending(r1, EV_READ, NULL);
	printf("finalized r1 pending %#x", pend);
	printf(" add %d\n", event_add(r1, NULL));
	event_active(r1, EV_READ, 1);
	printf("del finalizing %d\n", event_del(r1));
	to_free = w1;
	printf("free_finalize w1 %d\n", event_free_finalize(0, w1, free_finalizer));
	run("finalizers");
	run("after finalizers");
	event_free(r1);

	event_free(r2); event_free(c1); event_free(t1); event_free(t2); event_free(s1); event_free(s2); event_free(idle);
	nev = 0;
	struct event *late = event_new(base, -1, 0, cb, "late");
	name(late, "late");
	event_add(late, &hour);
	printf("finalize then base free:\n");
	trace[0] = 0;
	event_finalize(0, late, finalizer);
	event_base_free(base);
	printf("trace at free '%s'\n", trace);
	close(p[0]); close(p[1]); close(q[0]); close(q[1]);
	libevent_global_shutdown();
	libevent_global_shutdown();
	printf("done\n");
}

static void log_cb(int sev, const char *msg)
{
	/* drop the addresses */
	char out[512] = "";
	for (const char *p = msg; *p;) {
		if (p[0] == '0' && p[1] == 'x') {
			strcat(out, "PTR");
			p += 2;
			while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
				p++;
		} else {
			strncat(out, p++, 1);
		}
	}
	printf("log %d: %s\n", sev, out);
}

static void fatal_cb(int code)
{
	printf("fatal %#x\n", (unsigned)code);
	exit(0);
}

static void debug_case(int n)
{
	event_set_log_callback(log_cb);
	event_set_fatal_callback(fatal_cb);
	if (n == 1) {
		event_enable_debug_mode();
		event_enable_debug_mode();
	}
	if (n == 2) {
		struct event_base *b = event_base_new();
		(void)b;
		event_enable_debug_mode();
	}
	event_enable_debug_mode();
	struct event_base *b = event_base_new();
	struct event ev;
	memset(&ev, 0, sizeof ev);
	struct timeval tv = {10, 0};
	switch (n) {
	case 3: /* re-assign of an added event */
		event_assign(&ev, b, -1, 0, cb, "x");
		event_add(&ev, &tv);
		printf("added\n");
		event_assign(&ev, b, -1, 0, cb, "x");
		break;
	case 4: /* add after teardown */
		event_assign(&ev, b, -1, 0, cb, "x");
		event_debug_unassign(&ev);
		printf("unassigned\n");
		event_add(&ev, NULL);
		break;
	case 5: /* accessor on never-assigned memory */
		printf("fd %d\n", event_get_fd(&ev));
		break;
	case 6: /* fine: re-assign after del, and of an active-only event */
		event_assign(&ev, b, -1, 0, cb, "x");
		event_add(&ev, &tv);
		event_del(&ev);
		printf("reassign after del %d\n", event_assign(&ev, b, -1, 0, cb, "x"));
		break;
	case 7: /* priority_set on never-assigned memory */
		event_priority_set(&ev, 0);
		break;
	case 9: { /* a blocking fd */
		int fds[2];
		if (pipe(fds))
			break;
		event_assign(&ev, b, fds[0], EV_READ, cb, "x");
		printf("assigned\n");
		event_add(&ev, NULL);
		printf("added\n");
		break;
	}
	case 10: { /* a signal event needs no non-blocking fd; teardown then re-assign is fine */
		event_assign(&ev, b, SIGUSR1, EV_SIGNAL, cb, "x");
		printf("signal add %d\n", event_add(&ev, NULL));
		event_del(&ev);
		event_debug_unassign(&ev);
		printf("reassign after teardown %d\n", event_assign(&ev, b, -1, 0, cb, "x"));
		break;
	}
	case 8: /* zeroed memory: no base, so only a warning */
		printf("add %d\n", event_add(&ev, NULL));
		printf("del %d\n", event_del(&ev));
		break;
	}
	printf("end\n");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strncmp(argv[1], "debug-", 6)) {
		debug_case(atoi(argv[1] + 6));
		return 0;
	}
	main_test();
	return 0;
}
