/* evrs: libevent 2.1 compatible API -- key/value lists (struct evkeyvalq). */
#ifndef EVRS_EVENT2_KEYVALQ_STRUCT_H
#define EVRS_EVENT2_KEYVALQ_STRUCT_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * BSD <sys/queue.h> style list links, defined here only when the caller
 * has not already got them from <sys/queue.h>, and withdrawn again at the
 * end so a later <sys/queue.h> does not see conflicting definitions.
 */
#ifndef TAILQ_ENTRY
#define EVRS_KEYVALQ_DEFINED_TQENTRY_
#define TAILQ_ENTRY(type) \
	struct { \
		struct type *tqe_next;  /* next element */ \
		struct type **tqe_prev; /* link field of the previous element */ \
	}
#endif
#ifndef TAILQ_HEAD
#define EVRS_KEYVALQ_DEFINED_TQHEAD_
#define TAILQ_HEAD(name, type) \
	struct name { \
		struct type *tqh_first; /* first element */ \
		struct type **tqh_last; /* link field of the last element */ \
	}
#endif

/* One header (or query parameter): a key and its value. */
struct evkeyval {
	TAILQ_ENTRY(evkeyval) next;
	char *key;
	char *value;
};

/* A list of struct evkeyval. */
TAILQ_HEAD(evkeyvalq, evkeyval);

#ifdef EVRS_KEYVALQ_DEFINED_TQENTRY_
#undef EVRS_KEYVALQ_DEFINED_TQENTRY_
#undef TAILQ_ENTRY
#endif
#ifdef EVRS_KEYVALQ_DEFINED_TQHEAD_
#undef EVRS_KEYVALQ_DEFINED_TQHEAD_
#undef TAILQ_HEAD
#endif

#ifdef __cplusplus
}
#endif

#endif /* EVRS_EVENT2_KEYVALQ_STRUCT_H */
