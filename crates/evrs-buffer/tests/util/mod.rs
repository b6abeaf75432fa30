//! Shared helpers: a buffer built from given chunks, and a naive reference model of EOL
//! finding and searching.
#![allow(dead_code)]

use evrs_buffer::{EolStyle, EvBuffer};

/// A buffer whose chunks are exactly `parts` (to exercise chunk boundaries).
pub fn chunked(parts: &[&[u8]]) -> EvBuffer {
    let mut buf = EvBuffer::new();
    for p in parts {
        buf.add_bytes(p.to_vec().into()).unwrap();
    }
    buf
}

/// Where the first end of line at or after `from` starts, and its length.
pub fn model_eol(v: &[u8], from: usize, style: EolStyle) -> Option<(usize, usize)> {
    let n = v.len();
    let mut i = from;
    while i < n {
        let b = v[i];
        match style {
            EolStyle::Lf if b == b'\n' => return Some((i, 1)),
            EolStyle::Nul if b == 0 => return Some((i, 1)),
            EolStyle::CrlfStrict if b == b'\r' && i + 1 < n && v[i + 1] == b'\n' => {
                return Some((i, 2))
            }
            EolStyle::Crlf if b == b'\n' => return Some((i, 1)),
            EolStyle::Crlf if b == b'\r' && i + 1 < n && v[i + 1] == b'\n' => return Some((i, 2)),
            EolStyle::Any if b == b'\r' || b == b'\n' => {
                let mut j = i;
                while j < n && (v[j] == b'\r' || v[j] == b'\n') {
                    j += 1;
                }
                return Some((i, j - i));
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// What `readln` must do on content `v`: `Ok(Some((line, consumed)))`,
/// `Ok(None)`, or `Err(())` for "line too long".
#[allow(clippy::type_complexity)]
pub fn model_readln(
    v: &[u8],
    style: EolStyle,
    max: Option<usize>,
) -> Result<Option<(Vec<u8>, usize)>, ()> {
    match model_eol(v, 0, style) {
        Some((p, l)) => {
            if max.is_some_and(|m| p > m) {
                Err(())
            } else {
                Ok(Some((v[..p].to_vec(), p + l)))
            }
        }
        None => match max {
            Some(m) if v.len() > m => {
                let crlfish = matches!(style, EolStyle::Crlf | EolStyle::CrlfStrict);
                if crlfish && v.len() == m + 1 && v[m] == b'\r' {
                    Ok(None)
                } else {
                    Err(())
                }
            }
            _ => Ok(None),
        },
    }
}

/// First match of `what` starting at or after `from` and ending at or
/// before `end`.
pub fn model_search(v: &[u8], what: &[u8], from: usize, end: usize) -> Option<usize> {
    let end = end.min(v.len());
    if from + what.len() > end {
        return None;
    }
    (from..=end - what.len()).find(|&i| &v[i..i + what.len()] == what)
}

pub const STYLES: [EolStyle; 5] = [
    EolStyle::Any,
    EolStyle::Crlf,
    EolStyle::CrlfStrict,
    EolStyle::Lf,
    EolStyle::Nul,
];

/// proptest case count: `default`, or the `EVRS_PROPTEST_CASES` variable.
pub fn cases(default: u32) -> u32 {
    std::env::var("EVRS_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
