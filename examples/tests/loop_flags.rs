//! The loop_flags transcript, checked line by line.

mod common;

on_every_backend! {
    fn transcript() {
        let got = evrs_examples::loop_flags::demo().unwrap();
        let want = [
            "1. priorities: activate low(2), mid(1), high-a(0), high-b(0), in that order",
            // Priority 0 first, in activation order...
            "  ran high-a (priority 0); 3 still active",
            "  ran high-b (priority 0); 2 still active",
            // ...then priority 1; what it activates at priority 0 runs before priority 2.
            "  ran mid (priority 1); it activates urgent (priority 0)",
            "  ran urgent (priority 0); 1 still active",
            "  ran low (priority 2); 0 still active",
            "  run(NONBLOCK) -> NoEvents: all ran, nothing is left",
            "2. ONCE: a socket with data waiting, and a one-minute timer",
            "  ran the socket's read callback",
            "  run(ONCE) -> Exited; slow timer still pending: true",
            "  ran 20 ms timer (priority 0); 0 still active",
            "  run(ONCE) -> Exited; it waited for the timer: true",
            "3. NONBLOCK: the same socket, nothing written yet; a one-minute timer",
            "  run(NONBLOCK) -> Exited; nothing ran, returned at once: true",
            "  ran the socket's read callback",
            "  wrote a byte; run(NONBLOCK) -> Exited",
            "4. NO_EXIT_ON_EMPTY and loopexit, on a base with no events",
            "  dispatch() -> NoEvents (nothing to wait for)",
            "  run(NO_EXIT_ON_EMPTY | NONBLOCK) -> Exited (empty is no reason to stop)",
            "  loopexit(20 ms); run(NO_EXIT_ON_EMPTY) -> Exited; got_exit: true; waited: true",
        ];
        assert_eq!(got, want, "\n{}", got.join("\n"));
    }
}
