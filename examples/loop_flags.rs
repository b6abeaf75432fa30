//! What the loop does, step by step: priorities (only the most urgent active priority runs
//! per iteration), `LoopFlags::ONCE`, `LoopFlags::NONBLOCK`, and `NO_EXIT_ON_EMPTY` with
//! `loopexit` — the libevent book's `event_base_loop` pseudo-code, made visible. Code and
//! the pseudo-code itself: `src/loop_flags.rs`.
//!
//! ```text
//! cargo run --release --example loop_flags
//! ```

fn main() -> std::io::Result<()> {
    for line in evrs_examples::loop_flags::demo()? {
        println!("{line}");
    }
    Ok(())
}
