//! evconnlistener (listener.h) through evrs, against Debian's libevent.

mod util;

#[test]
fn listeners_accept_enable_disable_and_free_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("listener", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(
        out.contains("accepted 1\n") && out.ends_with("done\n"),
        "{out}"
    );
    assert!(
        out.contains("new on a socket that does not listen: ok\n")
            && out.contains("its accept failed: error callbacks 1\n"),
        "{out}"
    );
}

#[test]
fn out_of_fds_pauses_the_listener_and_reports_once() {
    // libevent spins at 100 % CPU here; evrs pauses, calls the error callback, and accepts
    // once fds are free again.
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("listener", &["-levent_core"]);
    let text = util::evrs_only(&bin, &["emfile"]);
    assert!(
        text.contains("error cb: errno is EMFILE 1\nemfile: errors 1 accepted 2\n"),
        "{text}"
    );
    assert!(text.contains("after the limit: accepted 3\n"), "{text}");
}
