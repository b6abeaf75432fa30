//! The zlib filters round-trip over a bufferevent pair, compress, and reject garbage.
use evrs::buffer::EvBuffer;
use evrs::bufferevent::{FilterResult, Flush};

#[test]
fn a_text_survives_compression_and_shrinks() {
    let text: Vec<u8> = (0..5_000)
        .flat_map(|i| format!("{i} bottles of beer on the wall\n").into_bytes())
        .collect();
    let (back, compressed) = evrs_examples::zlib::round_trip(&text).unwrap();
    assert_eq!(back.len(), text.len());
    assert!(back == text, "bytes changed on the way");
    assert!(
        compressed * 4 < text.len(),
        "{compressed} compressed bytes for {}",
        text.len()
    );
}

#[test]
fn garbage_is_a_filter_error() {
    let mut f = evrs_examples::zlib::inflate();
    let mut src = EvBuffer::new();
    src.add(b"this is not a zlib stream at all").unwrap();
    let mut dst = EvBuffer::new();
    assert_eq!(
        f(&mut src, &mut dst, None, Flush::Normal),
        FilterResult::Error
    );
}
