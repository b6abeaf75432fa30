//! libevent's evbuffer API (buffer.h, buffer_compat.h) through evrs, checked against
//! Debian's libevent with one C program printing the same lines on both; then evrs-only
//! checks of input libevent leaves undefined (NULL buffers, bad positions, huge sizes).

mod util;

use evrs_capi::buffer::{self as eb, callbacks, data, fileio, find, CPtr};
use std::os::raw::c_void;
use std::ptr;

#[test]
fn the_evbuffer_api_behaves_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("buffer", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(out.ends_with("done\n"), "{out}");
}

/// A buffer holding `data`.
fn buffer_with(data: &[u8]) -> *mut eb::CBuffer {
    // SAFETY: a new buffer and a readable slice.
    unsafe {
        let b = data::evbuffer_new();
        assert_eq!(data::evbuffer_add(b, data.as_ptr().cast(), data.len()), 0);
        b
    }
}

fn contents(b: *mut eb::CBuffer) -> Vec<u8> {
    // SAFETY: a live buffer; the copy fits the vector.
    unsafe {
        let n = data::evbuffer_get_length(b);
        let mut v = vec![0u8; n];
        assert_eq!(
            data::evbuffer_copyout(b, v.as_mut_ptr().cast(), n),
            n as isize
        );
        v
    }
}

#[test]
fn null_buffers_give_error_values() {
    let nul = ptr::null_mut();
    // SAFETY: NULL is what is being checked; the other pointers are valid.
    unsafe {
        assert_eq!(data::evbuffer_add(nul, b"x".as_ptr().cast(), 1), -1);
        assert_eq!(data::evbuffer_get_length(nul), 0);
        assert_eq!(data::evbuffer_drain(nul, 1), -1);
        assert_eq!(data::evbuffer_remove(nul, ptr::null_mut(), 0), -1);
        assert!(data::evbuffer_pullup(nul, -1).is_null());
        assert_eq!(data::evbuffer_add_buffer(nul, nul), -1);
        assert_eq!(data::evbuffer_expand(nul, 10), -1);
        assert_eq!(data::evbuffer_freeze(nul, 1), -1);
        assert_eq!(data::evbuffer_enable_locking(nul, ptr::null_mut()), -1);
        data::evbuffer_lock(nul);
        data::evbuffer_unlock(nul);
        data::evbuffer_free(nul);
        let mut n = 7usize;
        assert!(find::evbuffer_readln(nul, &mut n, 0).is_null());
        assert_eq!(n, 0);
        assert_eq!(
            find::evbuffer_search(nul, c"a".as_ptr(), 1, ptr::null()).pos,
            -1
        );
        assert!(callbacks::evbuffer_add_cb(nul, None, ptr::null_mut()).is_null());
        assert_eq!(fileio::evbuffer_read(nul, 0, 10), -1);
        assert_eq!(fileio::evbuffer_write(nul, 1), -1);
        let b = buffer_with(b"abc");
        assert_eq!(data::evbuffer_add_buffer(b, nul), -1);
        assert_eq!(data::evbuffer_remove_buffer(nul, b, 1), -1);
        assert_eq!(contents(b), b"abc");
        data::evbuffer_free(b);
    }
}

#[test]
fn impossible_sizes_and_null_data_are_refused() {
    let b = buffer_with(b"hello");
    // SAFETY: a live buffer; the bad pointers and sizes are what is being checked.
    unsafe {
        assert_eq!(data::evbuffer_add(b, ptr::null(), 4), -1);
        assert_eq!(data::evbuffer_add(b, b"x".as_ptr().cast(), usize::MAX), -1);
        assert_eq!(data::evbuffer_prepend(b, ptr::null(), 1), -1);
        assert_eq!(data::evbuffer_expand(b, usize::MAX), -1);
        let mut v = [libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        }; 2];
        assert_eq!(
            data::evbuffer_reserve_space(b, isize::MAX, v.as_mut_ptr(), 2),
            -1
        );
        assert_eq!(data::evbuffer_reserve_space(b, -5, v.as_mut_ptr(), 1), -1);
        assert_eq!(data::evbuffer_reserve_space(b, 5, ptr::null_mut(), 1), -1);
        assert_eq!(data::evbuffer_commit_space(b, ptr::null(), 1), -1);
        assert!(data::evbuffer_pullup(b, isize::MAX).is_null());
        let mut out = [0u8; 4];
        let p = CPtr {
            pos: 1,
            chain: ptr::null_mut(),
            pos_in_chain: 0,
        };
        assert_eq!(
            find::evbuffer_copyout_from(b, &p, out.as_mut_ptr().cast(), usize::MAX),
            -1
        );
        assert_eq!(data::evbuffer_remove(b, ptr::null_mut(), 3), -1);
        assert_eq!(fileio::evbuffer_add_file(b, -1, 0, -1), -1);
        assert!(fileio::evbuffer_file_segment_new(-1, 0, 1, 0).is_null());
        assert_eq!(
            fileio::evbuffer_add_file_segment(b, ptr::null_mut(), 0, -1),
            -1
        );
        assert_eq!(contents(b), b"hello");
        data::evbuffer_free(b);
    }
}

#[test]
fn invalid_positions_and_styles_are_refused() {
    let b = buffer_with(b"key=value\r\n");
    // SAFETY: a live buffer; positions are plain C structs.
    unsafe {
        let mut p = CPtr {
            pos: 0,
            chain: ptr::null_mut(),
            pos_in_chain: 0,
        };
        assert_eq!(find::evbuffer_ptr_set(b, &mut p, 1, 9), -1);
        assert_eq!(find::evbuffer_ptr_set(b, ptr::null_mut(), 1, 0), -1);
        // Made by hand, or stale: found again from `pos`, refused past the end.
        let far = CPtr {
            pos: 100,
            chain: b.cast(),
            pos_in_chain: 3,
        };
        assert_eq!(find::evbuffer_search(b, c"v".as_ptr(), 1, &far).pos, -1);
        let mut out = [0u8; 2];
        assert_eq!(
            find::evbuffer_copyout_from(b, &far, out.as_mut_ptr().cast(), 2),
            -1
        );
        let neg = CPtr { pos: -1, ..far };
        assert_eq!(
            find::evbuffer_copyout_from(b, &neg, out.as_mut_ptr().cast(), 2),
            -1
        );
        let mut v = [libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 0,
        }; 2];
        assert_eq!(
            find::evbuffer_peek(b, -1, &far as *const CPtr as *mut CPtr, v.as_mut_ptr(), 2),
            0
        );
        let mut el = 9usize;
        let bad = find::evbuffer_search_eol(b, ptr::null_mut(), &mut el, 17);
        assert_eq!((bad.pos, el), (-1, 0));
        assert!(find::evbuffer_readln(b, ptr::null_mut(), 99).is_null());
        let hand = CPtr {
            pos: 4,
            chain: ptr::null_mut(),
            pos_in_chain: 77,
        };
        assert_eq!(find::evbuffer_search(b, c"v".as_ptr(), 1, &hand).pos, 4);
        // A position taken before a change is re-resolved from its offset.
        let mut q = CPtr {
            pos: 0,
            chain: ptr::null_mut(),
            pos_in_chain: 0,
        };
        assert_eq!(find::evbuffer_ptr_set(b, &mut q, 4, 0), 0);
        assert_eq!(data::evbuffer_drain(b, 2), 0);
        assert_eq!(
            find::evbuffer_copyout_from(b, &q, out.as_mut_ptr().cast(), 2),
            2
        );
        assert_eq!(&out, b"lu");
        assert_eq!(contents(b), b"y=value\r\n");
        data::evbuffer_free(b);
    }
}

#[test]
fn locking_can_be_enabled_once_and_nests() {
    let b = buffer_with(b"x");
    let addr = b as usize;
    let other = move || {
        let b = addr as *mut eb::CBuffer;
        // SAFETY: the buffer is live; its lock serializes the access.
        unsafe { assert_eq!(data::evbuffer_add(b, b"z".as_ptr().cast(), 1), 0) };
    };
    // SAFETY: a live buffer.
    unsafe {
        assert_eq!(data::evbuffer_enable_locking(b, ptr::null_mut()), 0);
        assert_eq!(data::evbuffer_enable_locking(b, ptr::null_mut()), -1);
        data::evbuffer_lock(b);
        assert_eq!(data::evbuffer_add(b, b"y".as_ptr().cast(), 1), 0);
        data::evbuffer_unlock(b);
    }
    std::thread::spawn(other).join().unwrap();
    assert_eq!(contents(b), b"xyz");
    // SAFETY: a live buffer, not used after this.
    unsafe { data::evbuffer_free(b) };
}

static REENTERED: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

unsafe extern "C" fn cleanup_reenters(_d: *const c_void, _l: usize, extra: *mut c_void) {
    // SAFETY: `extra` is the buffer, which is being drained right now.
    let r = unsafe { data::evbuffer_add(extra.cast(), b"!".as_ptr().cast(), 1) };
    REENTERED.store(r as isize, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn a_cleanup_that_reenters_its_buffer_gets_an_error() {
    static DATA: &[u8] = b"referenced";
    // SAFETY: static memory; the cleanup gets the live buffer.
    unsafe {
        let b = data::evbuffer_new();
        assert_eq!(
            fileio::evbuffer_add_reference(
                b,
                DATA.as_ptr().cast(),
                DATA.len(),
                Some(cleanup_reenters),
                b.cast()
            ),
            0
        );
        assert_eq!(data::evbuffer_drain(b, 100), 0);
        assert_eq!(REENTERED.load(std::sync::atomic::Ordering::SeqCst), -1);
        assert_eq!(data::evbuffer_get_length(b), 0);
        data::evbuffer_free(b);
    }
}

unsafe extern "C" fn frees_its_buffer(
    b: *mut eb::CBuffer,
    _i: *const callbacks::CallbackInfoC,
    arg: *mut c_void,
) {
    // SAFETY: the buffer running this callback; `arg` counts the calls.
    unsafe {
        *arg.cast::<u32>() += 1;
        data::evbuffer_free(b);
    }
}

#[test]
fn a_callback_may_free_its_buffer() {
    let mut calls = 0u32;
    // SAFETY: a live buffer; the callback's argument outlives it.
    unsafe {
        let b = data::evbuffer_new();
        let arg: *mut u32 = &mut calls;
        callbacks::evbuffer_add_cb(b, Some(frees_its_buffer), arg.cast());
        callbacks::evbuffer_add_cb(b, Some(frees_its_buffer), arg.cast());
        // The first callback frees; the second never runs; the free waits for the call.
        assert_eq!(data::evbuffer_add(b, b"x".as_ptr().cast(), 1), 0);
    }
    assert_eq!(calls, 1);
}

#[test]
fn foreign_callback_entries_are_refused() {
    // SAFETY: live buffers.
    unsafe {
        let a = data::evbuffer_new();
        let b = data::evbuffer_new();
        let e = callbacks::evbuffer_add_cb(a, None, ptr::null_mut());
        assert!(!e.is_null());
        assert_eq!(callbacks::evbuffer_remove_cb_entry(b, e), -1);
        assert_eq!(callbacks::evbuffer_cb_set_flags(b, e, 1), -1);
        assert_eq!(callbacks::evbuffer_remove_cb_entry(a, e), 0);
        assert_eq!(callbacks::evbuffer_remove_cb(a, None, ptr::null_mut()), -1);
        assert_eq!(callbacks::evbuffer_defer_callbacks(a, ptr::null_mut()), -1);
        data::evbuffer_free(a);
        data::evbuffer_free(b);
    }
}
