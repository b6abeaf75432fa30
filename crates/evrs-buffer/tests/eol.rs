//! readln and search_eol: every EOL style, split chunks, and line limits.

mod util;
use evrs_buffer::{End, EolStyle, Error, EvBuffer};
use util::chunked;

fn lines(buf: &mut EvBuffer, style: EolStyle) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(l) = buf.readln(style, None).unwrap() {
        out.push(l.to_vec());
    }
    out
}

fn v(items: &[&str]) -> Vec<Vec<u8>> {
    items.iter().map(|s| s.as_bytes().to_vec()).collect()
}

#[test]
fn any_swallows_every_cr_lf_run() {
    let mut buf = chunked(&[b"a\r\n\r\nb\n\nc\r", b"d\r"]);
    assert_eq!(lines(&mut buf, EolStyle::Any), v(&["a", "b", "c", "d"]));
    assert!(buf.is_empty());
}

#[test]
fn any_returns_line_before_lf_arrives_then_empty_line() {
    let mut buf = EvBuffer::new();
    buf.add(b"x\r").unwrap();
    assert_eq!(
        buf.readln(EolStyle::Any, None).unwrap().as_deref(),
        Some(&b"x"[..])
    );
    buf.add(b"\ny\n").unwrap();
    assert_eq!(lines(&mut buf, EolStyle::Any), v(&["", "y"]));
}

#[test]
fn crlf_accepts_bare_lf_and_keeps_lone_cr() {
    let mut buf = chunked(&[b"a\r", b"\nb\nc\rd\r\r\n"]);
    assert_eq!(lines(&mut buf, EolStyle::Crlf), v(&["a", "b", "c\rd\r"]));
}

#[test]
fn crlf_strict_needs_both_bytes() {
    let mut buf = chunked(&[b"a\nb\r", b"\nc\r"]);
    assert_eq!(lines(&mut buf, EolStyle::CrlfStrict), v(&["a\nb"]));
    assert_eq!(buf.to_vec(), b"c\r");
}

#[test]
fn lf_keeps_cr() {
    let mut buf = chunked(&[b"a\r\n", b"\n"]);
    assert_eq!(lines(&mut buf, EolStyle::Lf), v(&["a\r", ""]));
}

#[test]
fn nul_lines() {
    let mut buf = chunked(&[b"a\0\0b", b"\0c"]);
    assert_eq!(lines(&mut buf, EolStyle::Nul), v(&["a", "", "b"]));
    assert_eq!(buf.to_vec(), b"c");
}

#[test]
fn search_eol_reports_position_and_length() {
    let buf = chunked(&[b"ab\r", b"\n\rcd"]);
    let (p, n) = buf.search_eol(None, EolStyle::Any).unwrap().unwrap();
    assert_eq!((p.pos(), n), (2, 3));
    let (p, n) = buf.search_eol(None, EolStyle::Crlf).unwrap().unwrap();
    assert_eq!((p.pos(), n), (2, 2));
    let from = buf.ptr_at(4).unwrap();
    assert_eq!(
        buf.search_eol(Some(&from), EolStyle::Any)
            .unwrap()
            .map(|(p, n)| (p.pos(), n)),
        Some((4, 1))
    );
    assert_eq!(buf.search_eol(Some(&from), EolStyle::Lf).unwrap(), None);
}

#[test]
fn max_len_rejects_long_lines_without_consuming() {
    let mut buf = EvBuffer::new();
    buf.add(b"0123456789\n").unwrap();
    assert!(matches!(
        buf.readln(EolStyle::Lf, Some(9)),
        Err(Error::LineTooLong { limit: 9 })
    ));
    assert_eq!(buf.len(), 11);
    // Exactly at the limit is fine, and the buffer is still usable.
    assert_eq!(
        buf.readln(EolStyle::Lf, Some(10)).unwrap().as_deref(),
        Some(&b"0123456789"[..])
    );
    assert!(buf.is_empty());
}

#[test]
fn max_len_fails_early_without_an_eol() {
    let mut buf = EvBuffer::new();
    buf.add(&[b'x'; 5]).unwrap();
    assert_eq!(buf.readln(EolStyle::Any, Some(5)).unwrap(), None);
    buf.add(b"x").unwrap();
    assert!(matches!(
        buf.readln(EolStyle::Any, Some(5)),
        Err(Error::LineTooLong { .. })
    ));
    // A peer sending megabytes without a newline is detected by scanning
    // only limit + 2 bytes.
    buf.add(&vec![b'y'; if cfg!(miri) { 1 << 10 } else { 1 << 20 }])
        .unwrap();
    assert!(matches!(
        buf.readln(EolStyle::Crlf, Some(64)),
        Err(Error::LineTooLong { .. })
    ));
    buf.drain(usize::MAX).unwrap();
    buf.add(b"ok\n").unwrap();
    assert_eq!(
        buf.readln(EolStyle::Crlf, Some(64)).unwrap().as_deref(),
        Some(&b"ok"[..])
    );
}

#[test]
fn max_len_waits_for_lf_after_cr_at_the_limit() {
    for style in [EolStyle::Crlf, EolStyle::CrlfStrict] {
        let mut buf = EvBuffer::new();
        buf.add(b"abc\r").unwrap();
        assert_eq!(buf.readln(style, Some(3)).unwrap(), None);
        buf.add(b"\n").unwrap();
        assert_eq!(
            buf.readln(style, Some(3)).unwrap().as_deref(),
            Some(&b"abc"[..])
        );
    }
}

#[test]
fn readln_fails_when_start_frozen() {
    let mut buf = EvBuffer::new();
    buf.add(b"a\n").unwrap();
    buf.freeze(End::Start);
    assert!(matches!(
        buf.readln(EolStyle::Lf, None),
        Err(Error::Frozen(End::Start))
    ));
    buf.unfreeze(End::Start);
    assert_eq!(
        buf.readln(EolStyle::Lf, None).unwrap().as_deref(),
        Some(&b"a"[..])
    );
}

#[test]
fn lines_spanning_many_chunks() {
    let mut buf = EvBuffer::new();
    for _ in 0..100 {
        buf.add_bytes(b"ab".to_vec().into()).unwrap();
    }
    buf.add_bytes(b"\r\n".to_vec().into()).unwrap();
    let l = buf.readln(EolStyle::CrlfStrict, None).unwrap().unwrap();
    assert_eq!(l.len(), 200);
    assert!(buf.is_empty());
}
