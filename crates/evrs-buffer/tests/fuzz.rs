//! Fuzz-style checks of readln and search on arbitrary input, split into
//! arbitrary chunks. A proptest stand-in for cargo-fuzz that runs in CI:
//! `EVRS_PROPTEST_CASES=100000 cargo test -p evrs-buffer --release --test fuzz`
//! runs a long campaign.

mod util;

use evrs_buffer::{Error, EvBuffer};
use proptest::prelude::*;
use util::{model_readln, model_search, STYLES};

/// Builds a buffer from `data` cut at `cuts` (each cut chooses a chunk
/// kind too, so Mem, Shared and prepended chunks all appear).
fn build(data: &[u8], cuts: &[(usize, u8)]) -> EvBuffer {
    let mut buf = EvBuffer::new();
    let mut at = 0;
    for &(len, kind) in cuts {
        let end = (at + len).min(data.len());
        let piece = &data[at..end];
        match kind % 3 {
            0 => buf.add(piece).unwrap(),
            1 => buf.add_bytes(piece.to_vec().into()).unwrap(),
            _ => {
                let mut other = EvBuffer::new();
                other.add(piece).unwrap();
                buf.add_buffer(&mut other).unwrap();
            }
        }
        at = end;
    }
    buf.add(&data[at..]).unwrap();
    buf
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        prop::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n', 0u8]), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: util::cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn readln_any_input(
        data in input(),
        cuts in prop::collection::vec((0usize..20, any::<u8>()), 0..12),
        style in 0usize..5,
        max in prop::option::of(0usize..30),
    ) {
        let style = STYLES[style];
        let mut buf = build(&data, &cuts);
        let mut model = data.clone();
        let mut i = 0usize;
        loop {
            // Alternate the owned and the borrowed forms.
            i += 1;
            let got = if i % 2 == 0 {
                buf.readln(style, max).map(|l| l.map(|l| l.to_vec()))
            } else {
                buf.readln_with(style, max, |l| l.to_vec())
            };
            match (got, model_readln(&model, style, max)) {
                (Ok(None), Ok(None)) => break,
                (Err(Error::LineTooLong { .. }), Err(())) => break,
                (Ok(Some(line)), Ok(Some((want, consumed)))) => {
                    prop_assert_eq!(&line[..], &want[..]);
                    model.drain(..consumed);
                }
                (g, w) => prop_assert!(false, "got {:?} want {:?}", g, w),
            }
            prop_assert_eq!(buf.to_vec(), model.clone());
        }
        prop_assert_eq!(buf.to_vec(), model);
    }

    #[test]
    fn search_any_input(
        data in input(),
        cuts in prop::collection::vec((0usize..20, any::<u8>()), 0..12),
        needle in prop::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n', 0u8]), 0..4),
        from in 0usize..220,
        end in prop::option::of(0usize..220),
    ) {
        let buf = build(&data, &cuts);
        let Ok(start) = buf.ptr_at(from) else {
            prop_assert!(from > data.len());
            return Ok(());
        };
        let end_ptr = end.and_then(|e| buf.ptr_at(e).ok());
        let limit = end_ptr.map_or(data.len(), |p| p.pos());
        let got = buf.search_range(&needle, Some(&start), end_ptr.as_ref()).unwrap();
        prop_assert_eq!(got.map(|p| p.pos()), model_search(&data, &needle, from, limit));
        // Walk every match with ptr_add, as callers do.
        if !needle.is_empty() {
            let mut at = start;
            let mut count = 0;
            while let Some(p) = buf.search(&needle, Some(&at)).unwrap() {
                prop_assert_eq!(Some(p.pos()), model_search(&data, &needle, at.pos(), data.len()));
                at = p;
                if buf.ptr_add(&mut at, 1).is_err() {
                    break;
                }
                count += 1;
                prop_assert!(count <= data.len());
            }
        }
    }
}
