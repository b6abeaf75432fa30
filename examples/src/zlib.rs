//! A zlib filter pair for bufferevents (libevent's `test/regress_zlib.c` idea, with
//! `flate2`): [`deflate`] compresses what the program writes, [`inflate`] decompresses
//! what arrives; [`round_trip`] sends a text through two compressing filters over a
//! bufferevent pair and returns what came out, with the compressed byte count.

use evrs::buffer::EvBuffer;
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, FilterResult, Flush};
use evrs::{EventBase, LoopFlags, What};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

/// The output filter: zlib-compresses, with a sync flush after each batch so the peer can
/// decode what it has (and a finish on [`Flush::Finished`]).
pub fn deflate(
    sent: Rc<Cell<usize>>,
) -> impl FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult {
    let mut c = Compress::new(Compression::default(), true);
    move |src, dst, _limit, mode| {
        let flush = match mode {
            Flush::Finished => FlushCompress::Finish,
            _ => FlushCompress::Sync,
        };
        let data = match src.pullup_all() {
            Ok(d) => d.to_vec(),
            Err(_) => return FilterResult::Error,
        };
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(16 * 1024);
            }
            let before = c.total_in();
            let st = match c.compress_vec(&data[consumed..], &mut out, flush) {
                Ok(st) => st,
                Err(_) => return FilterResult::Error,
            };
            consumed += (c.total_in() - before) as usize;
            // Done when all input is in and the flush fit (spare room was left).
            if st == Status::StreamEnd || (consumed == data.len() && out.len() < out.capacity()) {
                break;
            }
        }
        let _ = src.drain(consumed);
        sent.set(sent.get() + out.len());
        match dst.add(&out) {
            Ok(()) => FilterResult::Ok,
            Err(_) => FilterResult::Error,
        }
    }
}

/// The input filter: zlib-decompresses; garbage is a filter error.
pub fn inflate() -> impl FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult {
    let mut d = Decompress::new(true);
    move |src, dst, _limit, _mode| {
        let data = match src.pullup_all() {
            Ok(d) => d.to_vec(),
            Err(_) => return FilterResult::Error,
        };
        let mut out = Vec::with_capacity(data.len() * 4 + 64);
        let mut consumed = 0;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(64 * 1024);
            }
            let before = d.total_in();
            let st = match d.decompress_vec(&data[consumed..], &mut out, FlushDecompress::None) {
                Ok(st) => st,
                Err(_) => return FilterResult::Error,
            };
            consumed += (d.total_in() - before) as usize;
            if st == Status::StreamEnd || (consumed == data.len() && out.len() < out.capacity()) {
                break;
            }
        }
        let _ = src.drain(consumed);
        match dst.add(&out) {
            Ok(()) if out.is_empty() => FilterResult::NeedMore,
            Ok(()) => FilterResult::Ok,
            Err(_) => FilterResult::Error,
        }
    }
}

/// Sends `text` from one end of a bufferevent pair to the other through a compressing
/// filter on each end. Returns (what arrived, bytes that crossed compressed).
pub fn round_trip(text: &[u8]) -> io::Result<(Vec<u8>, usize)> {
    let mut base = EventBase::new()?;
    let (x, y) = base.bufferevent_pair(BevOptions::empty())?;
    let sent = Rc::new(Cell::new(0));
    let fx = base.bufferevent_filter(
        x,
        Some(inflate()),
        Some(deflate(sent.clone())),
        BevOptions::CLOSE_ON_FREE,
    )?;
    let fy = base.bufferevent_filter(
        y,
        Some(inflate()),
        Some(deflate(Rc::new(Cell::new(0)))),
        BevOptions::CLOSE_ON_FREE,
    )?;
    let got = Rc::new(RefCell::new(Vec::new()));
    let failed = Rc::new(Cell::new(false));
    let (g, f) = (got.clone(), failed.clone());
    base.bev_setcb(
        fy,
        Some(move |bev: &mut BevCtx<'_>| {
            let input = bev.input();
            let v = input.to_vec();
            let _ = input.drain(v.len());
            g.borrow_mut().extend_from_slice(&v);
        }),
        None::<fn(&mut BevCtx<'_>)>,
        Some(move |_: &mut BevCtx<'_>, what: BevEvents| {
            if what.contains(BevEvents::ERROR) {
                f.set(true);
            }
        }),
    )?;
    for bev in [x, y, fx, fy] {
        base.bev_enable(bev, What::READ | What::WRITE)?;
    }
    base.bev_write(fx, text)?;
    // Bounded: each pass moves data or the loop has nothing left to do.
    for _ in 0..10_000 {
        if got.borrow().len() >= text.len() || failed.get() {
            break;
        }
        base.run(LoopFlags::NONBLOCK)?;
    }
    base.bev_free(fx)?;
    base.bev_free(fy)?;
    if failed.get() {
        return Err(io::Error::other("a zlib filter reported an error"));
    }
    let out = got.borrow().clone();
    Ok((out, sent.get()))
}
