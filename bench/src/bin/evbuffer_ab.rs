//! In-process A/B of the evbuffer operations whose cost is dominated by memory rather than by
//! code: libevent's `evbuffer_search` (linked from Debian's libevent_core) and evrs's
//! `EvBuffer::search` alternate on identically filled 10 MB buffers in one process, so both
//! see the same allocator, cache and memory state. Separate processes (`run.sh`) differ by
//! ±30 % on these cases on a shared VM; alternating in one process removes most of that.
//!
//! `cargo run --release -p evrs-bench --bin evbuffer-ab [ROUNDS]`

#[cfg(have_libevent)]
mod ab {
    use evrs::buffer::EvBuffer;
    use std::ffi::{c_int, c_void};
    use std::hint::black_box;
    use std::time::Instant;

    const LINE_LEN: usize = 80;
    const LINES_BYTES: usize = 10_000_000;

    /// `struct evbuffer_ptr` (24 bytes: pos, then the chain pointer and offset).
    #[repr(C)]
    struct EvbufferPtr {
        pos: isize,
        chain: *mut c_void,
        pos_in_chain: usize,
    }

    #[link(name = "event_core")]
    extern "C" {
        fn evbuffer_new() -> *mut c_void;
        fn evbuffer_free(b: *mut c_void);
        fn evbuffer_add(b: *mut c_void, data: *const c_void, len: usize) -> c_int;
        fn evbuffer_search(
            b: *mut c_void,
            what: *const u8,
            len: usize,
            start: *const EvbufferPtr,
        ) -> EvbufferPtr;
    }

    /// The benchmark's lines (as in `crates/evrs-buffer/bench`), passed to `add`.
    fn fill(mut add: impl FnMut(&[u8])) {
        let mut line = Vec::with_capacity(LINE_LEN);
        for i in 0..(LINES_BYTES / LINE_LEN) as u32 {
            line.clear();
            line.extend_from_slice(format!("line {i:08} ").as_bytes());
            line.resize(LINE_LEN - 2, b'a' + (i % 26) as u8);
            line.extend_from_slice(b"\r\n");
            add(&line);
        }
    }

    fn libevent_search(needle: &[u8]) -> f64 {
        // SAFETY: a fresh evbuffer, used and freed here only; every pointer passed is valid
        // for the length given.
        unsafe {
            let b = evbuffer_new();
            assert!(!b.is_null());
            fill(|l| assert_eq!(evbuffer_add(b, l.as_ptr().cast(), l.len()), 0));
            assert_eq!(evbuffer_add(b, needle.as_ptr().cast(), needle.len()), 0);
            let t0 = Instant::now();
            let p = evbuffer_search(b, needle.as_ptr(), needle.len(), std::ptr::null());
            let t = t0.elapsed().as_nanos() as f64;
            assert!(p.pos > 0);
            black_box(p.pos);
            evbuffer_free(b);
            t
        }
    }

    fn evrs_search(needle: &[u8]) -> f64 {
        let mut b = EvBuffer::new();
        fill(|l| b.add(l).unwrap());
        b.add(needle).unwrap();
        let t0 = Instant::now();
        let p = b.search(black_box(needle), None).unwrap();
        let t = t0.elapsed().as_nanos() as f64;
        assert!(p.is_some());
        black_box(p);
        t
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    pub fn main() {
        let rounds: usize = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(40);
        println!("| case | libevent median µs | evrs median µs | libevent best µs | evrs best µs | libevent/evrs (median) | (best) |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for (name, needle) in [
            ("search_10MB_crlfcrlf", &b"\r\n\r\n"[..]),
            ("search_10MB_rare", &b"QUUX-needle"[..]),
        ] {
            let (mut c, mut r) = (Vec::new(), Vec::new());
            for i in 0..rounds {
                // Alternate which side goes first, so neither always follows the other.
                if i % 2 == 0 {
                    c.push(libevent_search(needle));
                    r.push(evrs_search(needle));
                } else {
                    r.push(evrs_search(needle));
                    c.push(libevent_search(needle));
                }
            }
            let (cb, rb) = (
                c.iter().copied().fold(f64::MAX, f64::min),
                r.iter().copied().fold(f64::MAX, f64::min),
            );
            let (cm, rm) = (median(&mut c), median(&mut r));
            println!(
                "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}x | {:.2}x |",
                cm / 1e3,
                rm / 1e3,
                cb / 1e3,
                rb / 1e3,
                cm / rm,
                cb / rb
            );
        }
    }
}

fn main() {
    #[cfg(have_libevent)]
    ab::main();
    #[cfg(not(have_libevent))]
    eprintln!("libevent's headers were not found at build time: apt-get install -y libevent-dev");
}
