/* evrs C ABI test: event2/util.h (evutil_*) and the internal evutil functions libevent's
 * own test suite links to. Built against Debian's headers and libevent_core; the output
 * must be the same on Debian's libevent and on evrs. Loopback and numeric hosts only. */
#include <event2/util.h>
#include <event2/event.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* The internal functions, declared as libevent's util-internal.h / time-internal.h has
 * them (they are exported, with no public header). */
struct evutil_weakrand_state { ev_uint32_t seed; };
ev_uint32_t evutil_weakrand_seed_(struct evutil_weakrand_state *, ev_uint32_t);
ev_int32_t evutil_weakrand_(struct evutil_weakrand_state *);
ev_int32_t evutil_weakrand_range_(struct evutil_weakrand_state *, ev_int32_t);
const char *evutil_format_sockaddr_port_(const struct sockaddr *, char *, size_t);
int evutil_sockaddr_is_loopback_(const struct sockaddr *);
int evutil_ersatz_socketpair_(int, int, int, evutil_socket_t[2]);
const char *evutil_getenv_(const char *);
long evutil_tv_to_msec_(const struct timeval *);
void evutil_usleep_(const struct timeval *);
int EVUTIL_ISALNUM_(char);
int EVUTIL_ISALPHA_(char);
int EVUTIL_ISDIGIT_(char);
int EVUTIL_ISLOWER_(char);
int EVUTIL_ISPRINT_(char);
int EVUTIL_ISSPACE_(char);
int EVUTIL_ISUPPER_(char);
int EVUTIL_ISXDIGIT_(char);
char EVUTIL_TOLOWER_(char);
char EVUTIL_TOUPPER_(char);
int evutil_hex_char_to_int_(char);
int evutil_read_file_(const char *, char **, size_t *, int);
size_t event_strlcpy_(char *, const char *, size_t);
void evutil_rtrim_lws_(char *);
void evutil_memclear_(void *, size_t);
int evutil_open_closeonexec_(const char *, int, unsigned);
evutil_socket_t evutil_socket_(int, int, int);
evutil_socket_t evutil_accept4_(evutil_socket_t, struct sockaddr *, ev_socklen_t *, int);
int evutil_make_internal_pipe_(evutil_socket_t fd[2]);
int evutil_socket_connect_(evutil_socket_t *, const struct sockaddr *, int);
int evutil_socket_finished_connecting_(evutil_socket_t);
evutil_socket_t evutil_eventfd_(unsigned, int);
int evutil_v4addr_is_local_(const struct in_addr *);
int evutil_v6addr_is_local_(const struct in6_addr *);
struct evutil_monotonic_timer_40 { int clock; struct timeval adjust, last; };
int evutil_configure_monotonic_time_(struct evutil_monotonic_timer *, int);
void event_warn(const char *, ...);
void event_warnx(const char *, ...);
void event_msgx(const char *, ...);
void event_debugx_(const char *, ...);
void event_sock_warn(evutil_socket_t, const char *, ...);
void event_errx(int, const char *, ...);
void event_err(int, const char *, ...);
int evutil_gettime_monotonic_(struct evutil_monotonic_timer *, struct timeval *);

static int sgn(int x) { return x < 0 ? -1 : x > 0; }

static void pton(int af, const char *s)
{
	unsigned char buf[16];
	char out[64];
	memset(buf, 0xee, sizeof buf);
	int r = evutil_inet_pton(af, s, buf);
	printf("pton %s '%s' -> %d", af == AF_INET ? "v4" : "v6", s, r);
	if (r == 1)
		printf(" %s", evutil_inet_ntop(af, buf, out, sizeof out));
	printf("\n");
}

static void ntop6(const char *hex)
{
	unsigned char a[16];
	char out[64];
	for (int i = 0; i < 16; i++)
		sscanf(hex + 2 * i, "%2hhx", &a[i]);
	printf("ntop6 %s -> %s\n", hex, evutil_inet_ntop(AF_INET6, a, out, sizeof out));
}

static void parse(const char *s, int room)
{
	struct sockaddr_storage ss;
	char out[128];
	int len = room;
	memset(&ss, 0xaa, sizeof ss);
	int r = evutil_parse_sockaddr_port(s, (struct sockaddr *)&ss, &len);
	printf("parse '%s' room %d -> %d", s, room, r);
	if (r == 0) {
		printf(" len %d fam %s %s", len, ss.ss_family == AF_INET ? "v4" : ss.ss_family == AF_INET6 ? "v6" : "?",
		    evutil_format_sockaddr_port_((struct sockaddr *)&ss, out, sizeof out));
		if (ss.ss_family == AF_INET6)
			printf(" scope %u", ((struct sockaddr_in6 *)&ss)->sin6_scope_id);
		printf(" loop %d", evutil_sockaddr_is_loopback_((struct sockaddr *)&ss));
		/* the bytes past the address were zeroed */
		int junk = 0;
		for (int i = len; i < room && i < (int)sizeof ss; i++)
			junk |= ((unsigned char *)&ss)[i];
		printf(" tail %d", junk);
	}
	printf("\n");
}

static struct sockaddr_storage sa(const char *s)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;
	memset(&ss, 0, sizeof ss);
	if (evutil_parse_sockaddr_port(s, (struct sockaddr *)&ss, &len))
		printf("bad sa %s\n", s);
	return ss;
}

static void cmp(const char *a, const char *b)
{
	struct sockaddr_storage x = sa(a), y = sa(b);
	printf("cmp %s %s -> %d %d\n", a, b,
	    sgn(evutil_sockaddr_cmp((struct sockaddr *)&x, (struct sockaddr *)&y, 0)),
	    sgn(evutil_sockaddr_cmp((struct sockaddr *)&x, (struct sockaddr *)&y, 1)));
}

static void gai(const char *node, const char *serv, int family, int socktype, int flags)
{
	struct evutil_addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = family;
	hints.ai_socktype = socktype;
	hints.ai_flags = flags;
	int r = evutil_getaddrinfo(node, serv, &hints, &res);
	printf("gai %s %s fam %d type %d flags %x -> %d (%s)\n", node ? node : "NULL", serv ? serv : "NULL",
	    family, socktype, flags, r, evutil_gai_strerror(r));
	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
		char out[128];
		printf("  fam %d type %d proto %d len %u %s canon %s\n", ai->ai_family, ai->ai_socktype, ai->ai_protocol,
		    (unsigned)ai->ai_addrlen, evutil_format_sockaddr_port_(ai->ai_addr, out, sizeof out),
		    ai->ai_canonname ? ai->ai_canonname : "-");
	}
	if (res)
		evutil_freeaddrinfo(res);
}

static int vsn(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = evutil_vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return r;
}

static void pair_io(const char *what, evutil_socket_t fd[2])
{
	char c = 'x', d = 0;
	ssize_t w = write(fd[0], &c, 1), r = read(fd[1], &d, 1);
	printf("%s: write %zd read %zd '%c'\n", what, w, r, d);
	evutil_closesocket(fd[0]);
	evutil_closesocket(fd[1]);
}

static int flag_set(int fd, int get, int bit) { return (fcntl(fd, get) & bit) != 0; }

static void sockets(void)
{
	evutil_socket_t fd[2];
	printf("socketpair %d\n", evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, fd));
	int before = flag_set(fd[0], F_GETFL, O_NONBLOCK);
	int r0 = evutil_make_socket_nonblocking(fd[0]);
	printf("nonblock %d: %d -> %d\n", r0, before, flag_set(fd[0], F_GETFL, O_NONBLOCK));
	before = flag_set(fd[0], F_GETFD, FD_CLOEXEC);
	r0 = evutil_make_socket_closeonexec(fd[0]);
	printf("cloexec %d: %d -> %d\n", r0, before, flag_set(fd[0], F_GETFD, FD_CLOEXEC));
	printf("nonblock bad fd %d cloexec bad fd %d\n", evutil_make_socket_nonblocking(-1), evutil_make_socket_closeonexec(-1));
	pair_io("unix pair", fd);
	printf("socketpair bad family %d\n", evutil_socketpair(12345, SOCK_STREAM, 0, fd));
	int fams[][3] = {{AF_INET6, SOCK_STREAM, 0}, {AF_INET, SOCK_STREAM, 1}, {AF_INET, SOCK_DGRAM, 0}, {12345, SOCK_STREAM, 0}};
	for (int i = 0; i < 4; i++) {
		errno = 0;
		int r = evutil_ersatz_socketpair_(fams[i][0], fams[i][1], fams[i][2], fd);
		printf("ersatz %d/%d/%d %d errno %s\n", fams[i][0], fams[i][1], fams[i][2], r,
		    errno == EAFNOSUPPORT ? "EAFNOSUPPORT" : errno ? "other" : "none");
	}
	if (evutil_ersatz_socketpair_(AF_INET, SOCK_STREAM, 0, fd) == 0)
		pair_io("ersatz inet pair", fd);
	int r = evutil_ersatz_socketpair_(AF_UNIX, SOCK_STREAM, 0, fd);
	printf("ersatz unix %d\n", r);
	if (r == 0) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		getsockname(fd[0], (struct sockaddr *)&ss, &len);
		printf("ersatz family %s loop %d\n", ss.ss_family == AF_INET ? "inet" : "other",
		    evutil_sockaddr_is_loopback_((struct sockaddr *)&ss));
		pair_io("ersatz pair", fd);
	}

	evutil_socket_t l = evutil_socket_(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	printf("socket_ v6 %d nonblock %d cloexec %d\n", l >= 0, flag_set(l, F_GETFL, O_NONBLOCK), flag_set(l, F_GETFD, FD_CLOEXEC));
	int v = 0;
	socklen_t vl = sizeof v;
	printf("reuse %d", evutil_make_listen_socket_reuseable(l));
	getsockopt(l, SOL_SOCKET, SO_REUSEADDR, &v, &vl);
	printf(" %d", v != 0);
	printf(" port %d", evutil_make_listen_socket_reuseable_port(l));
	getsockopt(l, SOL_SOCKET, SO_REUSEPORT, &v, &vl);
	printf(" %d", v != 0);
	printf(" v6only %d", evutil_make_listen_socket_ipv6only(l));
	getsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &v, &vl);
	printf(" %d", v != 0);
	printf(" deferred %d", evutil_make_tcp_listen_socket_deferred(l));
	getsockopt(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &vl);
	printf(" %d\n", v != 0);
	evutil_closesocket(l);

	/* accept4_ on a loopback listener */
	l = evutil_socket_(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss = sa("127.0.0.1");
	socklen_t len = sizeof(struct sockaddr_in);
	bind(l, (struct sockaddr *)&ss, len);
	listen(l, 1);
	getsockname(l, (struct sockaddr *)&ss, &len);
	evutil_socket_t c = evutil_socket_(AF_INET, SOCK_STREAM, 0);
	printf("connect %d\n", connect(c, (struct sockaddr *)&ss, len));
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	evutil_socket_t a = evutil_accept4_(l, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	/* socket_connect_ to the listener: connected now (1) or soon (0, then finished 1) */
	evutil_socket_t sc = -1;
	int cr = evutil_socket_connect_(&sc, (struct sockaddr *)&ss, len);
	if (cr == 0) {
		usleep(20000);
		cr = evutil_socket_finished_connecting_(sc);
	}
	printf("socket_connect_ made %d nonblock %d connected %d\n", sc >= 0, flag_set(sc, F_GETFL, O_NONBLOCK), cr);
	evutil_closesocket(sc);
	printf("accept4 %d plen %u nonblock %d cloexec %d loop %d\n", a >= 0, (unsigned)plen, flag_set(a, F_GETFL, O_NONBLOCK),
	    flag_set(a, F_GETFD, FD_CLOEXEC), evutil_sockaddr_is_loopback_((struct sockaddr *)&peer));
	evutil_closesocket(a);
	evutil_closesocket(c);
	a = accept(l, NULL, NULL);
	evutil_closesocket(a);
	evutil_closesocket(l);
	/* ...and to the closed port: refused at once (2) or later (finished -1 ECONNREFUSED) */
	sc = -1;
	cr = evutil_socket_connect_(&sc, (struct sockaddr *)&ss, len);
	if (cr == 0) {
		usleep(20000);
		errno = 0;
		cr = evutil_socket_finished_connecting_(sc) == -1 && errno == ECONNREFUSED ? 2 : -5;
	}
	printf("socket_connect_ closed port %d\n", cr);
	evutil_closesocket(sc);
	printf("closesocket bad %d\n", evutil_closesocket(-1));

	printf("internal pipe %d", evutil_make_internal_pipe_(fd));
	printf(" nonblock %d %d cloexec %d %d\n", flag_set(fd[0], F_GETFL, O_NONBLOCK), flag_set(fd[1], F_GETFL, O_NONBLOCK),
	    flag_set(fd[0], F_GETFD, FD_CLOEXEC), flag_set(fd[1], F_GETFD, FD_CLOEXEC));
	close(fd[0]);
	close(fd[1]);
	evutil_socket_t e = evutil_eventfd_(3, 0);
	uint64_t n = 0;
	ssize_t got = read(e, &n, 8);
	printf("eventfd %d read %zd value %llu\n", e >= 0, got, (unsigned long long)n);
	close(e);
}

static void strings(void)
{
	char buf[16];
	printf("snprintf %d '%s'\n", evutil_snprintf(buf, sizeof buf, "%d-%s-%x", 42, "abc", 255), buf);
	printf("snprintf cut %d '%s'\n", evutil_snprintf(buf, 5, "%s", "0123456789"), buf);
	strcpy(buf, "keep");
	printf("snprintf zero %d '%s'\n", evutil_snprintf(buf, 0, "%s", "xyz"), buf);
	printf("vsnprintf %d '%s'\n", vsn(buf, sizeof buf, "%05.1f|%c", 3.14159, 'z'), buf);
	char *end;
	const char *nums[] = {"123", "-9223372036854775808", "9223372036854775807", "99999999999999999999", "0x1f", "  77abc", "", "z"};
	for (unsigned i = 0; i < sizeof nums / sizeof *nums; i++) {
		errno = 0;
		long long v = evutil_strtoll(nums[i], &end, 0);
		printf("strtoll '%s' -> %lld end %td errno %d\n", nums[i], v, end - nums[i], errno);
	}
	printf("strtoll base16 %lld\n", (long long)evutil_strtoll("ff", NULL, 16));
	const char *pairs[][2] = {{"abc", "ABC"}, {"abc", "abd"}, {"abd", "ABC"}, {"ab", "abc"}, {"abc", "ab"}, {"", ""},
	    {"\x80", "a"}, {"Z", "a"}, {"[", "a"}, {"hello WORLD", "HELLO world"}};
	for (unsigned i = 0; i < sizeof pairs / sizeof *pairs; i++)
		printf("strcasecmp %u -> %d n2 %d\n", i, evutil_ascii_strcasecmp(pairs[i][0], pairs[i][1]),
		    evutil_ascii_strncasecmp(pairs[i][0], pairs[i][1], 2));
	printf("strncasecmp n0 %d\n", evutil_ascii_strncasecmp("a", "b", 0));

	/* character classes over all 256 byte values: one hex digit per class bitmap */
	const char *names[] = {"alnum", "alpha", "digit", "lower", "print", "space", "upper", "xdigit"};
	int (*fns[])(char) = {EVUTIL_ISALNUM_, EVUTIL_ISALPHA_, EVUTIL_ISDIGIT_, EVUTIL_ISLOWER_, EVUTIL_ISPRINT_,
	    EVUTIL_ISSPACE_, EVUTIL_ISUPPER_, EVUTIL_ISXDIGIT_};
	for (int f = 0; f < 8; f++) {
		printf("is%s ", names[f]);
		for (int c = 0; c < 256; c += 4) {
			int m = 0;
			for (int k = 0; k < 4; k++)
				m |= (fns[f]((char)(c + k)) != 0) << k;
			printf("%x", m);
		}
		printf("\n");
	}
	unsigned long lo = 0, up = 0;
	for (int c = 0; c < 256; c++) {
		lo = lo * 31 + (unsigned char)EVUTIL_TOLOWER_((char)c);
		up = up * 31 + (unsigned char)EVUTIL_TOUPPER_((char)c);
	}
	printf("tolower %lx toupper %lx A->%c z->%c\n", lo, up, EVUTIL_TOLOWER_('A'), EVUTIL_TOUPPER_('z'));
	const char hex[] = "09afAFgG/:";
	printf("hex");
	for (const char *p = hex; *p; p++)
		printf(" %d", evutil_hex_char_to_int_(*p));
	printf("\n");

	char small[6];
	printf("strlcpy %zu '%s'", event_strlcpy_(small, "abcdefghij", sizeof small), small);
	printf(" %zu '%s'\n", event_strlcpy_(small, "ab", sizeof small), small);
	char trim[] = "value \t \t";
	evutil_rtrim_lws_(trim);
	char trim2[] = "  \r\n ";
	evutil_rtrim_lws_(trim2);
	char trim3[] = "";
	evutil_rtrim_lws_(trim3);
	printf("rtrim '%s' '%s' '%s'\n", trim, trim2, trim3);
	char secret[8] = "secret!";
	evutil_memclear_(secret, sizeof secret);
	int nz = 0;
	for (int i = 0; i < 8; i++)
		nz |= secret[i];
	printf("memclear %d\n", nz);
}

static void addresses(void)
{
	const char *v4[] = {"1.2.3.4", "255.255.255.255", "0.0.0.0", "256.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.4 ",
	    " 1.2.3.4", "01.02.03.004", "1.2.3.-0", "1.2.3.x", "", "1..2.3", "+1.2.3.4", "4294967297.1.1.1"};
	for (unsigned i = 0; i < sizeof v4 / sizeof *v4; i++)
		pton(AF_INET, v4[i]);
	const char *v6[] = {"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", "fe80::1",
	    "FFFF::abcd", "::ffff:1.2.3.4", "::1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "12345::", "1:2:3:4:5:6:7::",
	    "::1:2:3:4:5:6:7", ":1::2", "1::2:", "1:", "", "g::", "1:2:3:4:5:6:7", "::ffff:1.2.3", "0:0:0:0:0:0:0:0",
	    "1:0:0:2:0:0:0:3", "1:0:0:0:2:0:0:3",
	    "1:2:3:4:5:6:7:8:", "0x1::", "1:::2", ":::", "::1.2.3.4:", "1:2:3:4:5:6:7:1.2.3.4", " 1::", "1::2:3:4:5:6:7:8",
	    "::ffff:001.2.3.4", "a:b:c:d:e:f:1.2.3.4", "::1.2.3.4.5", "::12345", "::fffff", "::0000f"};
	for (unsigned i = 0; i < sizeof v6 / sizeof *v6; i++)
		pton(AF_INET6, v6[i]);
	printf("pton bad af %d\n", evutil_inet_pton(12345, "1.2.3.4", (char[16]){0}));

	ntop6("00000000000000000000000000000000");
	ntop6("00000000000000000000000000000001");
	ntop6("00010000000000000000000000000000");
	ntop6("00010000000200000000000000000003");
	ntop6("00010000000000020000000000000003");
	ntop6("00010002000300040005000600070008");
	ntop6("0001000000020000000300000004000a");
	ntop6("00000000000000000000ffff01020304");
	ntop6("00000000000000000000000001020304");
	ntop6("00000000000000000000000000010203");
	ntop6("0000000000000000000000000000ffff");
	ntop6("00000000000000000001000001020304");
	ntop6("fe800000000000000202b3fffe1e8329");
	ntop6("abcdef0000000000000000000000abcd");
	unsigned char a4[4] = {192, 168, 1, 2};
	char out[64];
	printf("ntop4 %s\n", evutil_inet_ntop(AF_INET, a4, out, sizeof out));
	printf("ntop4 short %s\n", evutil_inet_ntop(AF_INET, a4, out, 11) ? "ok" : "NULL");
	printf("ntop4 exact %s\n", evutil_inet_ntop(AF_INET, a4, out, 12) ? out : "NULL");
	for (size_t n = 5; n <= 9; n++) {
		const char *p = evutil_inet_ntop(AF_INET6, (unsigned char[16]){0xfe, 0x80, [15] = 1}, out, n);
		printf("ntop6 fe80::1 in %zu: %s\n", n, p ? p : "NULL");
	}
	printf("ntop bad af %s\n", evutil_inet_ntop(12345, a4, out, sizeof out) ? "ok" : "NULL");

	unsigned char b6[16];
	const char *scopes[] = {"fe80::1%lo", "fe80::1%5", "fe80::1%nosuchif0", "fe80::1", "::1%", "fe80::1%1x", "1::%lo"};
	for (unsigned i = 0; i < sizeof scopes / sizeof *scopes; i++) {
		unsigned idx = 77;
		int r = evutil_inet_pton_scope(AF_INET6, scopes[i], b6, &idx);
		printf("scope '%s' %d idx %u\n", scopes[i], r, idx);
	}
	unsigned idx = 77;
	int sr = evutil_inet_pton_scope(AF_INET, "1.2.3.4", b6, &idx);
	printf("scope v4 %d idx %u\n", sr, idx);
	sr = evutil_inet_pton_scope(12345, "1.2.3.4", b6, &idx);
	printf("scope bad af %d\n", sr);

	const char *ps[] = {"1.2.3.4", "1.2.3.4:80", "1.2.3.4:0", "1.2.3.4:65535", "1.2.3.4:65536", "1.2.3.4:-1",
	    "1.2.3.4:80abc", "1.2.3.4:", "[::1]", "[::1]:8080", "[::1]:0", "[::1]x", "[::1", "::1", "::1:80",
	    "[fe80::1%lo]:99", "fe80::1%lo", "[1.2.3.4]:5", "localhost:80", "", "[]:80", ":80", "1.2.3.4:80:90",
	    "[::ffff:127.0.0.1]:1", "[::1]:+5", "1.2.3.4: 7", "[::1]:99999999999"};
	for (unsigned i = 0; i < sizeof ps / sizeof *ps; i++)
		parse(ps[i], sizeof(struct sockaddr_storage));
	parse("1.2.3.4:5", sizeof(struct sockaddr_in));
	parse("1.2.3.4:5", sizeof(struct sockaddr_in) - 1);
	parse("[::1]:5", sizeof(struct sockaddr_in6));
	parse("[::1]:5", sizeof(struct sockaddr_in6) - 1);
	parse("[::1]:5", sizeof(struct sockaddr_in6) + 4);

	cmp("1.2.3.4:80", "1.2.3.4:80");
	cmp("1.2.3.4:80", "1.2.3.5:80");
	cmp("1.2.3.5:1", "1.2.3.4:80");
	cmp("1.2.3.4:1", "1.2.3.4:256");
	cmp("1.2.3.4:256", "1.2.3.4:1");
	cmp("1.2.3.4:2", "1.2.3.4:3");
	cmp("1.2.3.4", "[::1]");
	cmp("[::1]", "1.2.3.4");
	cmp("[::1]:5", "[::2]:1");
	cmp("[::1]:5", "[::1]:6");
	cmp("[::1]:1", "[::1]:256");
	cmp("[ff::]:1", "[::ff]:1");
	struct sockaddr un1 = {.sa_family = AF_UNIX}, un2 = {.sa_family = AF_UNIX}, un3 = {.sa_family = AF_UNIX + 1};
	printf("cmp unix %d %d %d\n", evutil_sockaddr_cmp(&un1, &un2, 1), evutil_sockaddr_cmp(&un1, &un3, 0),
	    evutil_sockaddr_cmp(&un3, &un1, 0));
	printf("format unix %s\n", evutil_format_sockaddr_port_(&un1, out, sizeof out));
	struct sockaddr_storage s6 = sa("[1:2:3:4:5:6:7:8]:65535");
	printf("format short '%s'\n", evutil_format_sockaddr_port_((struct sockaddr *)&s6, out, 10));

	const char *l4[] = {"0.0.0.0", "0.0.0.1", "127.0.0.1", "127.255.1.2", "169.254.3.4", "169.253.1.1", "224.0.0.1",
	    "239.255.255.255", "240.0.0.1", "10.0.0.1", "192.168.1.1", "8.8.8.8", "100.64.0.1"};
	for (unsigned i = 0; i < sizeof l4 / sizeof *l4; i++) {
		struct in_addr in;
		evutil_inet_pton(AF_INET, l4[i], &in);
		printf("v4local %s %d\n", l4[i], evutil_v4addr_is_local_(&in));
	}
	const char *l6[] = {"::", "::1", "::ffff:8.8.8.8", "0:0:0:1::", "fc00::1", "fd12::1", "fe80::1", "febf::1",
	    "fec0::1", "feff::1", "ff02::1", "2001:db8::1", "2607:f8b0::1", "fbff::1"};
	for (unsigned i = 0; i < sizeof l6 / sizeof *l6; i++) {
		struct in6_addr in;
		evutil_inet_pton(AF_INET6, l6[i], &in);
		printf("v6local %s %d\n", l6[i], evutil_v6addr_is_local_(&in));
	}
}

static void resolve(void)
{
	gai("127.0.0.1", "80", AF_INET, SOCK_STREAM, EVUTIL_AI_NUMERICHOST);
	gai("127.0.0.1", "80", AF_UNSPEC, 0, EVUTIL_AI_NUMERICHOST);
	gai("::1", "443", AF_INET6, SOCK_DGRAM, EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV);
	gai("::1", NULL, AF_INET6, SOCK_STREAM, EVUTIL_AI_NUMERICHOST);
	gai(NULL, "8080", AF_INET, SOCK_STREAM, EVUTIL_AI_PASSIVE);
	gai(NULL, "8080", AF_INET6, SOCK_STREAM, EVUTIL_AI_PASSIVE);
	gai(NULL, "8080", AF_INET, SOCK_STREAM, 0);
	gai("localhost", "80", AF_INET, SOCK_STREAM, 0);
	gai("127.0.0.1", "80", AF_INET, SOCK_STREAM, EVUTIL_AI_NUMERICHOST | EVUTIL_AI_CANONNAME);
	gai("not-a-number", "80", AF_INET, SOCK_STREAM, EVUTIL_AI_NUMERICHOST);
	gai("127.0.0.1", "http-not-a-port", AF_INET, SOCK_STREAM, EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV);
	gai(NULL, NULL, AF_INET, SOCK_STREAM, 0);
	gai("127.0.0.1", "80", 12345, SOCK_STREAM, EVUTIL_AI_NUMERICHOST);
	gai("127.0.0.1", "80", AF_INET, 12345, EVUTIL_AI_NUMERICHOST);
	gai("127.0.0.1", "80", AF_INET, SOCK_STREAM, 0x7fff0000);
	gai("::1", "80", AF_INET, SOCK_STREAM, EVUTIL_AI_NUMERICHOST);
	struct evutil_addrinfo *res = NULL;
	int r = evutil_getaddrinfo("127.0.0.1", "7", NULL, &res);
	int n = 0;
	for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next)
		n++;
	printf("gai no hints %d results %d\n", r, n);
	evutil_freeaddrinfo(res);
	int codes[] = {0, EVUTIL_EAI_ADDRFAMILY, EVUTIL_EAI_AGAIN, EVUTIL_EAI_BADFLAGS, EVUTIL_EAI_FAIL, EVUTIL_EAI_FAMILY,
	    EVUTIL_EAI_MEMORY, EVUTIL_EAI_NODATA, EVUTIL_EAI_NONAME, EVUTIL_EAI_SERVICE, EVUTIL_EAI_SOCKTYPE,
	    EVUTIL_EAI_SYSTEM, EVUTIL_EAI_CANCEL, -12, -100, -101, -105, -901, -911, 1, 7};
	for (unsigned i = 0; i < sizeof codes / sizeof *codes; i++)
		printf("gai_strerror %d %s\n", codes[i], evutil_gai_strerror(codes[i]));
}

static void times(void)
{
	struct timeval tvs[] = {{0, 0}, {0, 1}, {1, 999}, {1, 1000}, {2, 1000000}, {2, 1000001}, {-1, 0},
	    {LONG_MAX / 1000, 0}, {(LONG_MAX - 999) / 1000, 0}, {(LONG_MAX - 999) / 1000 + 1, 0}};
	for (unsigned i = 0; i < sizeof tvs / sizeof *tvs; i++)
		printf("tv_to_msec %ld.%06ld -> %ld\n", (long)tvs[i].tv_sec, (long)tvs[i].tv_usec, evutil_tv_to_msec_(&tvs[i]));
	struct timeval t0, t1, d = {0, 20000};
	evutil_gettimeofday(&t0, NULL);
	evutil_usleep_(&d);
	evutil_usleep_(NULL);
	evutil_gettimeofday(&t1, NULL);
	evutil_timersub(&t1, &t0, &d);
	printf("usleep 20ms slept>=20ms %d\n", d.tv_sec > 0 || d.tv_usec >= 20000);

	char date[64];
	struct tm tm = {.tm_sec = 37, .tm_min = 49, .tm_hour = 8, .tm_mday = 6, .tm_mon = 10, .tm_year = 94, .tm_wday = 0};
	printf("rfc1123 %d '%s'\n", evutil_date_rfc1123(date, sizeof date, &tm), date);
	struct tm tm2 = {.tm_sec = 5, .tm_min = 4, .tm_hour = 23, .tm_mday = 31, .tm_mon = 11, .tm_year = 123, .tm_wday = 0};
	printf("rfc1123 %d '%s'\n", evutil_date_rfc1123(date, sizeof date, &tm2), date);
	printf("rfc1123 cut %d '%s'\n", evutil_date_rfc1123(date, 8, &tm), date);
	int n = evutil_date_rfc1123(date, sizeof date, NULL);
	printf("rfc1123 now %d ends GMT %d\n", n, n > 4 && strcmp(date + n - 4, " GMT") == 0);

	const int flags[] = {0, EV_MONOT_PRECISE, EV_MONOT_FALLBACK};
	for (int i = 0; i < 3; i++) {
		struct evutil_monotonic_timer *t = evutil_monotonic_timer_new();
		struct timeval a, b;
		printf("monotonic new %d configure %d", t != NULL, evutil_configure_monotonic_time(t, flags[i]));
		int r1 = evutil_gettime_monotonic(t, &a);
		evutil_usleep_(&(struct timeval){0, 5000});
		int r2 = evutil_gettime_monotonic(t, &b);
		printf(" get %d %d forward %d\n", r1, r2, evutil_timercmp(&b, &a, >));
		evutil_monotonic_timer_free(t);
	}
	/* the internal functions on caller memory of libevent's size */
	struct evutil_monotonic_timer_40 mt;
	struct timeval a;
	int rc = evutil_configure_monotonic_time_((struct evutil_monotonic_timer *)&mt, 0);
	int rg = evutil_gettime_monotonic_((struct evutil_monotonic_timer *)&mt, &a);
	printf("monotonic_ configure %d get %d\n", rc, rg);
}

static void random_numbers(void)
{
	printf("rng init %d\n", evutil_secure_rng_init());
	unsigned char buf[64], buf2[64];
	memset(buf, 0, sizeof buf);
	memset(buf2, 0, sizeof buf2);
	evutil_secure_rng_get_bytes(buf, sizeof buf);
	evutil_secure_rng_get_bytes(buf2, sizeof buf2);
	evutil_secure_rng_add_bytes("entropy", 7);
	evutil_secure_rng_get_bytes(buf2, 0);
	printf("rng differ %d\n", memcmp(buf, buf2, sizeof buf) != 0);

	struct evutil_weakrand_state st;
	printf("weakrand seed %u", evutil_weakrand_seed_(&st, 12345));
	for (int i = 0; i < 5; i++)
		printf(" %d", evutil_weakrand_(&st));
	printf("\nweakrand range");
	for (int i = 0; i < 10; i++)
		printf(" %d", evutil_weakrand_range_(&st, 10));
	printf(" %d", evutil_weakrand_range_(&st, 1));
	printf(" %d\n", evutil_weakrand_range_(&st, 0x7fffffff) >= 0);
	printf("weakrand seed0 nonzero %d\n", evutil_weakrand_seed_(&st, 0) != 0);
}

static void files_and_env(void)
{
	char path[] = "/tmp/evrs-util-test-XXXXXX";
	int fd = mkstemp(path);
	write(fd, "line1\n\0bin\n", 11);
	close(fd);
	char *content = NULL;
	size_t len = 0;
	int r = evutil_read_file_(path, &content, &len, 1);
	printf("read_file %d len %zu nul %d first '%s'\n", r, len, content ? content[len] == 0 : -1, content ? content : "");
	free(content);
	unlink(path);
	content = (char *)1;
	r = evutil_read_file_("/nonexistent/evrs", &content, &len, 0);
	printf("read_file missing %d content %s\n", r, content == NULL ? "NULL" : "set");
	r = evutil_read_file_("/tmp", &content, &len, 0);
	printf("read_file dir %d\n", r);

	fd = evutil_open_closeonexec_("/dev/null", O_RDONLY, 0);
	printf("open_closeonexec %d cloexec %d\n", fd >= 0, flag_set(fd, F_GETFD, FD_CLOEXEC));
	close(fd);
	printf("open_closeonexec missing %d\n", evutil_open_closeonexec_("/nonexistent/evrs", O_RDONLY, 0));

	setenv("EVRS_UTIL_TEST", "yes", 1);
	const char *v = evutil_getenv_("EVRS_UTIL_TEST");
	printf("getenv %s unset %s\n", v ? v : "NULL", evutil_getenv_("EVRS_UTIL_TEST_UNSET") ? "set" : "NULL");
}

static void log_cb(int severity, const char *msg)
{
	printf("log %d '%s'\n", severity, msg);
}

static void fatal_cb(int code)
{
	printf("fatal callback %d\n", code);
	exit(0);
}

static void logging(void)
{
	event_set_log_callback(log_cb);
	event_warnx("warnx %d %s", 42, "x");
	errno = ENOENT;
	event_warn("warn %s", "with errno");
	errno = EBADF;
	event_sock_warn(3, "sock_warn %c", 'z');
	event_msgx("msgx %05.2f", 2.5);
	event_debugx_("debug hidden %d", 1);
	event_enable_debug_logging(EVENT_DBG_ALL);
	event_debugx_("debug shown %d", 2);
	event_enable_debug_logging(EVENT_DBG_NONE);
	char big[2000];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	event_set_log_callback(NULL);
	event_set_log_callback(log_cb);
	printf("long message:\n");
	event_warnx("%s", big);
	event_set_log_callback(NULL);
}

static void fatal(const char *how)
{
	event_set_log_callback(log_cb);
	event_set_fatal_callback(fatal_cb);
	errno = EPIPE;
	if (!strcmp(how, "errx"))
		event_errx(7, "errx %s", "bye");
	else
		event_err(9, "err %s", "bye");
	printf("not reached\n");
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1) {
		fatal(argv[1]);
		return 1;
	}
	sockets();
	strings();
	addresses();
	resolve();
	times();
	random_numbers();
	files_and_env();
	logging();
	printf("done\n");
	return 0;
}
