//! libevent's exported internal deferred callbacks (`event_callback_*_`,
//! `event_deferred_cb_*_` on `struct event_callback`) through evrs, checked against
//! Debian's libevent: the same C program prints the same lines on both.

mod util;

#[test]
fn deferred_callbacks_behave_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("deferred", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(out.ends_with("done\n"), "{out}");
    // (Lines checked here as well as against libevent, so a change of both shows.)
    for want in [
        "schedule: closure 3 flags 0x0, 1st 1 flags 0x8, 2nd 0; dispatch 1 ran 'a' flags 0x0\n",
        "activate: 1 0 0 later 0 flags 0x8; cancel 0 flags 0x0, again 0; dispatch 1 ran ''\n",
        "priorities: 'hi mid lo ' (callback_init: pri 2 closure 0)\n",
        "ran 'F(c)' flags 0x40; after: activate 0 dispatch 1\n",
        "finalize_many: 0 flags 0x48 0x0 0x0 ran 'F(m0)'\n",
        "finalize_many from a callback: ran 'n1 F(n1 )'\n",
        "reschedule: one pass 0 ran 'r0 e r1 r2 r3 '\n",
        "reschedule later: 1 passes 'r0 e r1 e r2 e r3 | '\n",
        "event: finalize flags 0x48 ran 'EF(ev,1) '\n",
        "current base: 1 dispatch 1 ran 'cur '\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}
