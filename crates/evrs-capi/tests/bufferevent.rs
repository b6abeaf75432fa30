//! libevent's bufferevent API (bufferevent.h, bufferevent_compat.h, bufferevent_struct.h)
//! through evrs, checked against Debian's libevent: the same C program prints the same
//! lines on both; its `evrs-only` part checks where evrs differs on purpose.

mod util;

#[test]
fn bufferevents_behave_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("bufferevent", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(
        out.contains("pair flush finished: 0 [read b 10][event b 0x11][write a 0]\n"),
        "{out}"
    );
    assert!(
        out.contains("filter writing to itself: calls 2 peer got 'head+tail' events ''\nafter it fails: called again 1 output kept 4 events ''\n"),
        "{out}"
    );
    assert!(
        out.contains("timeout without a socket: [event n 0x42][event n 0x41] enabled after 0x0\n"),
        "{out}"
    );
    assert!(out.ends_with("done\n"), "{out}");
}

/// Runs the program's `evrs-only` part on evrs; its standard output.
fn evrs_only() -> String {
    let bin = util::compile("bufferevent", &["-levent_core"]);
    util::evrs_only(&bin, &["evrs-only"])
}

#[test]
fn freeing_a_pair_half_tells_the_partner_eof() {
    // libevent tells the partner nothing (its #93); evrs reports READING|EOF.
    if !util::have_debian_libevent() {
        return;
    }
    let text = evrs_only();
    assert!(
        text.contains("after partner free: [event B 0x11]\n"),
        "{text}"
    );
}

#[test]
fn bad_calls_get_libevents_error_values() {
    // NULL bufferevents would crash libevent; inverted watermarks stall it (evrs refuses
    // them and keeps the old ones).
    if !util::have_debian_libevent() {
        return;
    }
    let text = evrs_only();
    assert!(
        text.contains("null: enable -1 write -1 read 0 getfd -1 input 1 flush -1\n"),
        "{text}"
    );
    assert!(text.contains("inverted: 1 8\n"), "{text}");
    assert!(text.contains("getwatermark both -1\n"), "{text}");
}
