//! Threaded bases (thread.h, `evthread_use_pthreads`, custom lock callbacks) through evrs,
//! against Debian's libevent: a loop on one thread, the base changed from another.

mod util;

#[test]
fn another_thread_adds_activates_deletes_and_stops_as_with_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("threads", &["-levent_core", "-levent_pthreads"]);
    let out = util::same_on_both(&bin, &[]);
    for want in [
        "the program's evthread_lock_fns_ is current: 1\n",
        "the program's event_global_current_base_ is current: 1\n",
        "timer ran: 1\n",
        "activations 10\n",
        "event_del: returned 0, after the callback 1\n",
        "event_del_block: returned 0, after the callback 1\n",
        "event_del_noblock: returned 0, after the callback 0\n",
        "event_del of EV_FINALIZE: returned 0, after the callback 0\n",
        "ready event: event_del waited for one call only 1\n",
        "ready event: calls after event_del returned 0\n",
        "event_free_finalize while running: returned 0 at once 1; finalizer ran 1 after the callback 1 on the loop thread 1\n",
        "bufferevent: peer read 13 bytes: hello threads\n",
        "evbuffer_lock on a bufferevent's output held off its writer: 1, then it wrote: 1\n",
        "loop returned 0, got_break 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn a_programs_own_lock_callbacks_are_the_ones_used() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("threads", &["-levent_core", "-levent_pthreads"]);
    let out = util::same_on_both(&bin, &["custom"]);
    assert!(
        out.contains("custom locks: allocated 1, used 1, balanced 1\n"),
        "{out}"
    );
    assert!(
        out.contains("enable_locking with the program's lock 0\nthe buffer holds the program's lock: busy while locked 1, free after 1\n"),
        "{out}"
    );
}

#[test]
fn lock_misuse_gets_a_warning_not_a_hang() {
    // libevent 2.1.12 unlocks a mutex this thread does not hold, and deadlocks in the
    // event_del: evrs-only.
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("threads", &["-levent_core", "-levent_pthreads"]);
    let out = util::evrs_only(&bin, &["evrs-only"]);
    for want in [
        "unlock without the lock: warnings 1\n",
        "event_del holding the lock twice: returned 0, warnings 2\n",
        "the base still works: 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.ends_with("done\n"), "{out}");
}
