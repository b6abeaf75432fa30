//! evrs side of the libevent comparison: the same cases as
//! `../bench/evbuffer_bench.c`, printed as "case ns_per_op" lines.
//! Run through `bench/run.sh`, which also builds and runs the C side.

use std::hint::black_box;
use std::time::Instant;

use evrs_buffer::{EolStyle, EvBuffer};

const REPEAT: usize = 5;
const LINE_LEN: usize = 80;
const LINES_BYTES: usize = 10 * 1000 * 1000;

fn report(name: &str, best: f64) {
    println!("{name} {best:.2}");
}

fn add_remove(name: &str, size: usize, iters: u64) {
    let data = vec![b'x'; size];
    let mut out = vec![0u8; size];
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let mut b = EvBuffer::new();
        let t0 = Instant::now();
        for _ in 0..iters {
            b.add(black_box(&data)).unwrap();
            black_box(b.remove(&mut out).unwrap());
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / iters as f64);
    }
    report(name, best);
}

fn fill_1m(b: &mut EvBuffer) {
    let piece = [b'y'; 4096];
    for _ in 0..256 {
        b.add(&piece).unwrap();
    }
}

fn add_buffer_1m(iters: u64) {
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let mut a = EvBuffer::new();
        let mut b = EvBuffer::new();
        fill_1m(&mut a);
        let t0 = Instant::now();
        for _ in 0..iters {
            b.add_buffer(black_box(&mut a)).unwrap();
            a.add_buffer(black_box(&mut b)).unwrap();
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / (2 * iters) as f64);
        black_box(a.len());
    }
    report("add_buffer_1MiB", best);
}

fn fill_lines(b: &mut EvBuffer, eol: &[u8]) {
    let body = LINE_LEN - eol.len();
    let mut line = Vec::with_capacity(LINE_LEN);
    for i in 0..(LINES_BYTES / LINE_LEN) as u32 {
        line.clear();
        line.extend_from_slice(format!("line {i:08} ").as_bytes());
        line.resize(body, b'a' + (i % 26) as u8);
        line.extend_from_slice(eol);
        b.add(&line).unwrap();
    }
}

/// Reads every line of a 10 MB buffer of 80-byte lines. The C side calls
/// `evbuffer_readln` and `free`s each line (what libevent users do: it has
/// no other line API). evrs is measured two ways: `readln_with` (the line is
/// lent to a closure in place; the recommended way to read lines) under the
/// case's own name, and `readln` (the line returned as an owned `Bytes`)
/// under `<name>_owned`; both are compared with the same libevent figure.
fn readln(name: &str, style: EolStyle, eol: &[u8], owned: bool) {
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let mut b = EvBuffer::new();
        fill_lines(&mut b, eol);
        let mut n = 0u64;
        let t0 = Instant::now();
        if owned {
            while let Some(line) = b.readln(style, None).unwrap() {
                black_box(line.len());
                n += 1;
            }
        } else {
            while let Some(len) = b
                .readln_with(style, None, |line| black_box(line).len())
                .unwrap()
            {
                black_box(len);
                n += 1;
            }
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / n as f64);
    }
    if owned {
        report(&format!("{name}_owned"), best);
    } else {
        report(name, best);
    }
}

fn search(name: &str, needle: &[u8]) {
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let mut b = EvBuffer::new();
        fill_lines(&mut b, b"\r\n");
        b.add(needle).unwrap();
        let t0 = Instant::now();
        let p = b.search(black_box(needle), None).unwrap();
        let t = t0.elapsed().as_nanos() as f64;
        assert!(p.is_some());
        black_box(p);
        best = best.min(t);
    }
    report(name, best);
}

fn main() {
    // `cargo bench` passes `--bench`; any other argument selects cases by
    // substring.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let on = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    if on("add_remove_64B") {
        add_remove("add_remove_64B", 64, 2_000_000);
    }
    if on("add_remove_64KiB") {
        add_remove("add_remove_64KiB", 65536, 20_000);
    }
    if on("add_buffer_1MiB") {
        add_buffer_1m(1_000_000);
    }
    let lines: [(&str, EolStyle, &[u8]); 3] = [
        ("readln_crlf_10MB", EolStyle::Crlf, b"\r\n"),
        ("readln_lf_10MB", EolStyle::Lf, b"\n"),
        ("readln_any_10MB", EolStyle::Any, b"\r\n"),
    ];
    for (name, style, eol) in lines {
        if on(name) {
            readln(name, style, eol, false);
        }
    }
    for (name, style, eol) in lines {
        if on(&format!("{name}_owned")) {
            readln(name, style, eol, true);
        }
    }
    let searches: [(&str, &[u8]); 2] = [
        ("search_10MB_crlfcrlf", b"\r\n\r\n"),
        ("search_10MB_rare", b"QUUX-needle"),
    ];
    for (name, needle) in searches {
        if on(name) {
            search(name, needle);
        }
    }
}
