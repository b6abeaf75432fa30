//! What libevent's regress tests `thread/forking` and `signal/signal_pipeloss` check, which
//! the regress runner excludes (they read private fields of `struct event_base`), ported to
//! the public API and run on both libraries: a threaded base forked, re-initialized and
//! driven from threads in the child; bases' signal fds closed when they are freed.

mod util;

#[test]
fn a_threaded_base_forks_reinits_and_serves_threads_in_the_child() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("fork", &["-levent_core", "-levent_pthreads"]);
    let out = util::same_on_both(&bin, &["fork"]);
    for want in [
        "notifiable: 0\n",
        "parent loop: returned 0, got SIGCHLD 1\n",
        "waitpid: 1\n",
        "child: exited 1, status 0\n",
        "parent after the fork, threads: all fired 1\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn freed_bases_close_their_signal_fds() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("fork", &["-levent_core", "-levent_pthreads"]);
    let out = util::same_on_both(&bin, &["pipeloss"]);
    for want in [
        "bases opened fds: 1\n",
        "fds left open after event_base_free: 0\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
