//! Random operation sequences against a `VecDeque<u8>` model: every
//! observable result is checked after every step.

mod util;

use std::collections::VecDeque;

use evrs_buffer::{BufferPtr, Error, EvBuffer};
use proptest::prelude::*;
use util::{model_eol, model_readln, model_search, STYLES};

#[derive(Debug, Clone)]
enum Op {
    Add(usize, Vec<u8>),
    AddIovec(usize, Vec<Vec<u8>>),
    AddBytes(usize, Vec<u8>),
    AddRef(usize, Vec<u8>),
    AddFmt(usize, u32),
    Prepend(usize, Vec<u8>),
    Drain(usize, usize),
    Remove(usize, usize),
    RemoveBytes(usize, usize),
    Copyout(usize, usize),
    CopyoutFrom(usize, usize, usize),
    AddBuffer(usize),
    PrependBuffer(usize),
    RemoveBuffer(usize, usize),
    AddBufferRef(usize),
    Search(usize, Vec<u8>, usize, Option<usize>),
    SearchStale(usize, Vec<u8>),
    SearchEol(usize, u8, usize),
    Readln(usize, u8, Option<usize>),
    /// readln_with (false) or readln_into (true).
    ReadlnBorrowed(usize, u8, Option<usize>, bool),
    Pullup(usize, usize),
    Expand(usize, usize),
    Reserve(usize, usize, usize, Vec<usize>),
    Peek(usize, Option<usize>, usize),
    PtrAdd(usize, usize, usize),
}

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(vec![b'a', b'b', b'c']),
        2 => Just(b'\r'),
        2 => Just(b'\n'),
        1 => Just(0u8),
        1 => any::<u8>(),
    ]
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(byte(), 0..40),
        1 => prop::collection::vec(byte(), 0..3000),
    ]
}

fn needle() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(byte(), 0..5)
}

fn n() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 0usize..64, 1 => 0usize..5000, 1 => Just(usize::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0usize..2;
    prop_oneof![
        6 => (t.clone(), data()).prop_map(|(t, d)| Op::Add(t, d)),
        1 => (t.clone(), prop::collection::vec(data(), 0..4)).prop_map(|(t, v)| Op::AddIovec(t, v)),
        2 => (t.clone(), data()).prop_map(|(t, d)| Op::AddBytes(t, d)),
        1 => (t.clone(), data()).prop_map(|(t, d)| Op::AddRef(t, d)),
        1 => (t.clone(), any::<u32>()).prop_map(|(t, x)| Op::AddFmt(t, x)),
        2 => (t.clone(), data()).prop_map(|(t, d)| Op::Prepend(t, d)),
        2 => (t.clone(), n()).prop_map(|(t, n)| Op::Drain(t, n)),
        2 => (t.clone(), n()).prop_map(|(t, n)| Op::Remove(t, n)),
        1 => (t.clone(), n()).prop_map(|(t, n)| Op::RemoveBytes(t, n)),
        1 => (t.clone(), n()).prop_map(|(t, n)| Op::Copyout(t, n)),
        1 => (t.clone(), n(), n()).prop_map(|(t, p, n)| Op::CopyoutFrom(t, p, n)),
        1 => t.clone().prop_map(Op::AddBuffer),
        1 => t.clone().prop_map(Op::PrependBuffer),
        2 => (t.clone(), n()).prop_map(|(t, n)| Op::RemoveBuffer(t, n)),
        1 => t.clone().prop_map(Op::AddBufferRef),
        3 => (t.clone(), needle(), n(), prop::option::of(n()))
            .prop_map(|(t, w, s, e)| Op::Search(t, w, s, e)),
        1 => (t.clone(), needle()).prop_map(|(t, w)| Op::SearchStale(t, w)),
        2 => (t.clone(), 0u8..5, n()).prop_map(|(t, s, p)| Op::SearchEol(t, s, p)),
        4 => (t.clone(), 0u8..5, prop::option::of(0usize..50))
            .prop_map(|(t, s, m)| Op::Readln(t, s, m)),
        2 => (t.clone(), 0u8..5, prop::option::of(0usize..50), any::<bool>())
            .prop_map(|(t, s, m, into)| Op::ReadlnBorrowed(t, s, m, into)),
        1 => (t.clone(), n()).prop_map(|(t, n)| Op::Pullup(t, n)),
        1 => (t.clone(), 0usize..5000).prop_map(|(t, n)| Op::Expand(t, n)),
        2 => (t.clone(), 0usize..5000, 0usize..5, prop::collection::vec(n(), 0..5))
            .prop_map(|(t, n, v, l)| Op::Reserve(t, n, v, l)),
        1 => (t.clone(), prop::option::of(n()), n()).prop_map(|(t, l, s)| Op::Peek(t, l, s)),
        1 => (t, n(), n()).prop_map(|(t, p, n)| Op::PtrAdd(t, p, n)),
    ]
}

struct State {
    bufs: [EvBuffer; 2],
    models: [VecDeque<u8>; 2],
    stale: [Option<BufferPtr>; 2],
}

fn pair(bufs: &mut [EvBuffer; 2], t: usize) -> (&mut EvBuffer, &mut EvBuffer) {
    let (a, b) = bufs.split_at_mut(1);
    if t == 0 {
        (&mut a[0], &mut b[0])
    } else {
        (&mut b[0], &mut a[0])
    }
}

fn contents(m: &VecDeque<u8>) -> Vec<u8> {
    m.iter().copied().collect()
}

impl State {
    fn step(&mut self, op: Op) {
        match op {
            Op::Add(t, d) => {
                self.bufs[t].add(&d).unwrap();
                self.models[t].extend(&d);
            }
            Op::AddIovec(t, v) => {
                let n = self.bufs[t].add_iovec(&v).unwrap();
                assert_eq!(n, v.iter().map(Vec::len).sum::<usize>());
                for d in &v {
                    self.models[t].extend(d);
                }
            }
            Op::AddBytes(t, d) => {
                self.bufs[t].add_bytes(d.clone().into()).unwrap();
                self.models[t].extend(&d);
            }
            Op::AddRef(t, d) => {
                self.bufs[t].add_reference(d.clone()).unwrap();
                self.models[t].extend(&d);
            }
            Op::AddFmt(t, x) => {
                let n = self.bufs[t].add_fmt(format_args!("<{x}>")).unwrap();
                let s = format!("<{x}>");
                assert_eq!(n, s.len());
                self.models[t].extend(s.as_bytes());
            }
            Op::Prepend(t, d) => {
                self.bufs[t].prepend(&d).unwrap();
                for &b in d.iter().rev() {
                    self.models[t].push_front(b);
                }
            }
            Op::Drain(t, n) => {
                let got = self.bufs[t].drain(n).unwrap();
                let want = n.min(self.models[t].len());
                assert_eq!(got, want);
                self.models[t].drain(..want);
            }
            Op::Remove(t, n) => {
                let n = n.min(6000);
                let mut out = vec![0u8; n];
                let got = self.bufs[t].remove(&mut out).unwrap();
                let want: Vec<u8> = self.models[t]
                    .drain(..n.min(self.models[t].len()))
                    .collect();
                assert_eq!(&out[..got], &want[..]);
            }
            Op::RemoveBytes(t, n) => {
                let got = self.bufs[t].remove_bytes(n).unwrap();
                let want: Vec<u8> = self.models[t]
                    .drain(..n.min(self.models[t].len()))
                    .collect();
                assert_eq!(&got[..], &want[..]);
            }
            Op::Copyout(t, n) => {
                let n = n.min(6000);
                let mut out = vec![0u8; n];
                let got = self.bufs[t].copyout(&mut out).unwrap();
                let m = contents(&self.models[t]);
                assert_eq!(&out[..got], &m[..n.min(m.len())]);
            }
            Op::CopyoutFrom(t, p, n) => {
                let n = n.min(6000);
                let m = contents(&self.models[t]);
                match self.bufs[t].ptr_at(p) {
                    Err(Error::OutOfRange) => assert!(p > m.len()),
                    Err(e) => panic!("{e}"),
                    Ok(ptr) => {
                        assert_eq!(ptr.pos(), p);
                        let mut out = vec![0u8; n];
                        let got = self.bufs[t].copyout_from(&ptr, &mut out).unwrap();
                        assert_eq!(&out[..got], &m[p..(p + n).min(m.len())]);
                    }
                }
            }
            Op::AddBuffer(t) => {
                let (dst, src) = pair(&mut self.bufs, t);
                let moved = dst.add_buffer(src).unwrap();
                let other: Vec<u8> = self.models[1 - t].drain(..).collect();
                assert_eq!(moved, other.len());
                self.models[t].extend(other);
            }
            Op::PrependBuffer(t) => {
                let (dst, src) = pair(&mut self.bufs, t);
                dst.prepend_buffer(src).unwrap();
                let other: Vec<u8> = self.models[1 - t].drain(..).collect();
                for &b in other.iter().rev() {
                    self.models[t].push_front(b);
                }
            }
            Op::RemoveBuffer(t, n) => {
                let (src, dst) = pair(&mut self.bufs, t);
                let moved = src.remove_buffer(dst, n).unwrap();
                let want = n.min(self.models[t].len());
                assert_eq!(moved, want);
                let d: Vec<u8> = self.models[t].drain(..want).collect();
                self.models[1 - t].extend(d);
            }
            Op::AddBufferRef(t) => {
                let (dst, src) = pair(&mut self.bufs, t);
                dst.add_buffer_reference(src).unwrap();
                let other = contents(&self.models[1 - t]);
                self.models[t].extend(other);
            }
            Op::Search(t, w, s, e) => {
                let m = contents(&self.models[t]);
                let buf = &self.bufs[t];
                let start = match buf.ptr_at(s) {
                    Ok(p) => p,
                    Err(_) => return assert!(s > m.len()),
                };
                let end = match e.map(|e| buf.ptr_at(e)) {
                    None => None,
                    Some(Ok(p)) => Some(p),
                    Some(Err(_)) => return,
                };
                let got = buf.search_range(&w, Some(&start), end.as_ref()).unwrap();
                let want = model_search(&m, &w, s, e.unwrap_or(m.len()));
                assert_eq!(
                    got.map(|p| p.pos()),
                    want,
                    "needle {w:?} from {s} end {e:?}"
                );
                if let Some(p) = got {
                    self.stale[t] = Some(p);
                }
            }
            Op::SearchStale(t, w) => {
                let Some(p) = self.stale[t] else { return };
                let m = contents(&self.models[t]);
                match self.bufs[t].search(&w, Some(&p)) {
                    Err(Error::OutOfRange) => assert!(p.pos() > m.len()),
                    Err(e) => panic!("{e}"),
                    Ok(got) => {
                        assert_eq!(got.map(|p| p.pos()), model_search(&m, &w, p.pos(), m.len()))
                    }
                }
            }
            Op::SearchEol(t, s, p) => {
                let style = STYLES[s as usize];
                let m = contents(&self.models[t]);
                let Ok(ptr) = self.bufs[t].ptr_at(p) else {
                    return assert!(p > m.len());
                };
                let got = self.bufs[t].search_eol(Some(&ptr), style).unwrap();
                let want = model_eol(&m, p, style);
                assert_eq!(got.map(|(p, l)| (p.pos(), l)), want, "{style:?} from {p}");
            }
            Op::Readln(t, s, max) => {
                let style = STYLES[s as usize];
                let m = contents(&self.models[t]);
                let got = self.bufs[t].readln(style, max);
                match (got, model_readln(&m, style, max)) {
                    (Ok(None), Ok(None)) => {}
                    (Ok(Some(line)), Ok(Some((want, consumed)))) => {
                        assert_eq!(&line[..], &want[..]);
                        self.models[t].drain(..consumed);
                    }
                    (Err(Error::LineTooLong { limit }), Err(())) => {
                        assert_eq!(Some(limit), max)
                    }
                    (g, w) => panic!("readln {style:?} {max:?} on {m:?}: got {g:?}, want {w:?}"),
                }
            }
            Op::ReadlnBorrowed(t, s, max, into) => {
                let style = STYLES[s as usize];
                let m = contents(&self.models[t]);
                let mut out = b"prefix".to_vec();
                let got = if into {
                    self.bufs[t]
                        .readln_into(style, max, &mut out)
                        .map(|r| r.map(|n| out[out.len() - n..].to_vec()))
                } else {
                    self.bufs[t].readln_with(style, max, |l| l.to_vec())
                };
                match (got, model_readln(&m, style, max)) {
                    (Ok(None), Ok(None)) => {}
                    (Ok(Some(line)), Ok(Some((want, consumed)))) => {
                        assert_eq!(line, want);
                        self.models[t].drain(..consumed);
                    }
                    (Err(Error::LineTooLong { limit }), Err(())) => {
                        assert_eq!(Some(limit), max)
                    }
                    (g, w) => {
                        panic!("readln_with {style:?} {max:?} on {m:?}: got {g:?}, want {w:?}")
                    }
                }
                if into {
                    assert!(out.starts_with(b"prefix"));
                }
            }
            Op::Pullup(t, n) => {
                let m = contents(&self.models[t]);
                match self.bufs[t].pullup(n) {
                    Ok(s) => assert_eq!(s, &m[..n]),
                    Err(Error::OutOfRange) => assert!(n > m.len()),
                    Err(e) => panic!("{e}"),
                }
            }
            Op::Expand(t, n) => self.bufs[t].expand(n).unwrap(),
            Op::Reserve(t, n, nvec, lens) => {
                let buf = &mut self.bufs[t];
                let vecs = match buf.reserve_space(n, nvec) {
                    Ok(v) => v,
                    Err(Error::InvalidReservation) => return assert_eq!(nvec, 0),
                    Err(e) => panic!("{e}"),
                };
                assert!(vecs.len() <= nvec.max(1));
                assert_eq!(vecs.iter().map(|v| v.len()).sum::<usize>(), n);
                if nvec == 1 {
                    assert!(vecs.len() <= 1);
                }
                let sizes: Vec<usize> = vecs.iter().map(|v| v.len()).collect();
                let mut written = Vec::new();
                for (i, v) in vecs.into_iter().enumerate() {
                    assert!(v.iter().all(|&b| b == 0));
                    for (j, b) in v.iter_mut().enumerate() {
                        *b = (i * 7 + j) as u8;
                    }
                    written.push(v.to_vec());
                }
                let lens: Vec<usize> = lens
                    .iter()
                    .zip(&sizes)
                    .map(|(&l, &s)| l % (s + 1))
                    .collect();
                let total = buf.commit_space(&lens).unwrap();
                assert_eq!(total, lens.iter().sum::<usize>());
                for (l, w) in lens.iter().zip(&written) {
                    self.models[t].extend(&w[..*l]);
                }
                // A second commit has nothing to commit.
                if !lens.is_empty() {
                    assert!(matches!(
                        buf.commit_space(&lens),
                        Err(Error::InvalidReservation)
                    ));
                }
            }
            Op::Peek(t, len, s) => {
                let m = contents(&self.models[t]);
                let Ok(p) = self.bufs[t].ptr_at(s) else {
                    return assert!(s > m.len());
                };
                let v = self.bufs[t].peek(len, Some(&p)).unwrap();
                let cat: Vec<u8> = v.concat();
                assert!(m[s..].starts_with(&cat));
                let want = len.map_or(m.len() - s, |l| l.min(m.len() - s));
                assert!(cat.len() >= want);
                assert!(v.iter().all(|s| !s.is_empty()));
            }
            Op::PtrAdd(t, p, n) => {
                let m = contents(&self.models[t]);
                let Ok(mut ptr) = self.bufs[t].ptr_at(p) else {
                    return assert!(p > m.len());
                };
                let before = ptr;
                match self.bufs[t].ptr_add(&mut ptr, n) {
                    Ok(()) => {
                        assert_eq!(ptr.pos(), p + n);
                        let mut b = [0u8; 1];
                        let got = self.bufs[t].copyout_from(&ptr, &mut b).unwrap();
                        assert_eq!(&b[..got], m.get(p + n..p + n + 1).unwrap_or(&[]));
                        self.stale[t] = Some(ptr);
                    }
                    Err(Error::OutOfRange) => {
                        assert!(!matches!(p.checked_add(n), Some(x) if x <= m.len()));
                        assert_eq!(ptr, before);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        self.check();
    }

    fn check(&self) {
        for t in 0..2 {
            let m = contents(&self.models[t]);
            assert_eq!(self.bufs[t].len(), m.len());
            assert_eq!(self.bufs[t].to_vec(), m);
            let first = self.bufs[t].contiguous_space();
            assert!(first <= m.len());
            assert_eq!(first == 0, m.is_empty());
        }
    }
}

/// Cases and the longest operation sequence: small under Miri, which is
/// about a thousand times slower.
const CASES: u32 = if cfg!(miri) { 2 } else { 96 };
const MAX_OPS: usize = if cfg!(miri) { 20 } else { 80 };

proptest! {
    #![proptest_config(ProptestConfig {
        cases: util::cases(CASES),
        // No failure persistence files under Miri's isolation.
        failure_persistence: if cfg!(miri) { None } else { ProptestConfig::default().failure_persistence },
        ..ProptestConfig::default()
    })]

    #[test]
    fn evbuffer_matches_vecdeque_model(ops in prop::collection::vec(op(), 1..MAX_OPS)) {
        let mut s = State {
            bufs: [EvBuffer::new(), EvBuffer::new()],
            models: [VecDeque::new(), VecDeque::new()],
            stale: [None, None],
        };
        for op in ops {
            s.step(op);
        }
    }
}
