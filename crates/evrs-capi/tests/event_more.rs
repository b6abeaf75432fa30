//! The rest of event.h through evrs, checked against Debian's libevent: foreach/dump,
//! activation by fd and signal, finalizers, the base's monotonic time, and debug mode
//! (each debug case in its own process: the fatal ones end it through the fatal
//! callback).

mod util;

#[test]
fn inspection_activation_and_finalizers_behave_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("event_more", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(
        out.contains("by fd READ: loop 0 trace 'r2(P,0x2) r1(P,0x2) '\n"),
        "{out}"
    );
    assert!(
        out.contains("trace at free 'fin:late(pending 0) '\n"),
        "{out}"
    );
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn debug_mode_checks_behave_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("event_more", &["-levent_core"]);
    for (case, last) in [
        (1, "fatal 0x1\n"),
        (2, "fatal 0x1\n"),
        (3, "fatal 0xdeaddead\n"),
        (4, "fatal 0xdeaddead\n"),
        (5, "fatal 0xdeaddead\n"),
        (6, "end\n"),
        (7, "fatal 0xdeaddead\n"),
        (8, "end\n"),
        (9, "fatal 0xdeaddead\n"),
        (10, "end\n"),
    ] {
        let arg = format!("debug-{case}");
        let out = util::same_on_both(&bin, &[&arg]);
        assert!(out.ends_with(last), "{arg}: {out}");
    }
}
