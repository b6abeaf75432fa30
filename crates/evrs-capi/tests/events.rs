//! libevent's event API (event.h, event_compat.h) through evrs, checked against Debian's
//! libevent: the same C program, built once against Debian's headers and libraries, prints
//! the same lines on both.

mod util;

#[test]
fn events_timers_signals_and_loops_behave_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("events", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(out.ends_with("done\n"), "{out}");
    // (Lines checked here as well as against libevent, so a change of both shows.)
    for want in [
        "fd -1: add 0 pending 0x3 added 2\n",
        "fd -1 event: fd -1 what 0x1\n",
        "virtual: count 1, nonblocking loop 0\n",
        "virtual: count 0 max 1, nonblocking loop 1\n",
        "switchbase: first to base1 0, to base2 1\nswitchbase: second delivered 0, still alive\n",
        // (Activated first, the active-later event runs after the poll that follows.)
        "first pass:\n  first ran (what 0x1)\n  now ran (what 0x4)\n  later ran (what 0x2)\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
}

#[test]
fn reassigning_a_pending_event_releases_the_old_one() {
    // Undefined in libevent (2.1.12 spins): evrs only.
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("events", &["-levent_core"]);
    let text = util::evrs_only(&bin, &["evrs-only"]);
    assert!(text.contains("reassigned: loop 1 trace ''\n"), "{text}");
    assert!(text.contains("reassigned fired: 'n'\n"), "{text}");
    assert!(text.contains("orphan: del -1 add -1 pending 0\n"), "{text}");
}

#[test]
fn the_layout_probe_runs_as_on_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let probe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/abi/runtime_probe.c");
    if !probe.exists() {
        eprintln!("skipped: {} not found", probe.display());
        return;
    }
    let bin = util::compile_file(&probe, "runtime_probe", &["-levent_core"]);
    // Everything, bufferevents included, prints the same.
    util::same_on_both(&bin, &[]);
}
