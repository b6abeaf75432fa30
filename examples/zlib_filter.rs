//! Two bufferevent filters that zlib-compress what one side writes and decompress it on the
//! other, over a bufferevent pair (`src/zlib.rs`, with `flate2`).
//!
//! ```text
//! cargo run --release --example zlib_filter
//! ```

fn main() -> std::io::Result<()> {
    let text: Vec<u8> = (0..2_000)
        .flat_map(|i| {
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").into_bytes()
        })
        .collect();
    let (back, compressed) = evrs_examples::zlib::round_trip(&text)?;
    assert_eq!(back, text, "the text did not survive the round trip");
    println!(
        "{} bytes sent, {} crossed compressed ({:.1}%), {} arrived intact",
        text.len(),
        compressed,
        100.0 * compressed as f64 / text.len() as f64,
        back.len()
    );
    Ok(())
}
