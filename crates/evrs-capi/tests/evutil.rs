//! evutil (util.h and the internal evutil functions) through evrs, checked against Debian's
//! libevent: `tests/c/util.c` prints the same lines on both. Plus direct checks of what a
//! C program cannot see the same way on both (the allocator hooks).

mod util;

use evrs_capi::util::{addrinfo, net};
use std::ffi::CStr;
use std::os::raw::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn evutil_behaves_as_libevent() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("util", &["-levent_core"]);
    let out = util::same_on_both(&bin, &[]);
    assert!(out.ends_with("done\n"), "{out}");
}

#[test]
fn event_err_and_errx_log_then_run_the_fatal_callback() {
    if !util::have_debian_libevent() {
        return;
    }
    let bin = util::compile("util", &["-levent_core"]);
    let out = util::same_on_both(&bin, &["errx"]);
    assert_eq!(out, "log 3 'errx bye'\nfatal callback 7\n");
    let out = util::same_on_both(&bin, &["err"]);
    assert_eq!(out, "log 3 'err bye: Broken pipe'\nfatal callback 9\n");
}

#[test]
fn addresses_parse_and_print_by_libevents_rules() {
    assert_eq!(net::parse_v4(b"1.2.3.4"), Some([1, 2, 3, 4]));
    assert_eq!(net::parse_v4(b" 1.2.3.4"), Some([1, 2, 3, 4]));
    assert_eq!(net::parse_v4(b"1.2.3.4 "), None);
    assert_eq!(net::parse_v4(b"1.2.3.256"), None);
    let v6 = net::parse_v6(b"1::2:").expect("a trailing colon is accepted");
    assert_eq!(net::format_v6(v6), "1::2");
    assert_eq!(net::parse_v6(b"1:::2"), None);
    let mapped = net::parse_v6(b"::ffff:10.0.0.1").unwrap();
    assert_eq!(net::format_v6(mapped), "::ffff:10.0.0.1");
    assert_eq!(
        net::format_v6(net::parse_v6(b"1:0:0:2:0:0:0:3").unwrap()),
        "1:0:0:2::3"
    );
}

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static FREES: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn counting_malloc(n: usize) -> *mut c_void {
    ALLOCS.fetch_add(1, Ordering::SeqCst);
    // SAFETY: plain malloc.
    unsafe { libc::malloc(n) }
}

unsafe extern "C" fn counting_realloc(p: *mut c_void, n: usize) -> *mut c_void {
    // SAFETY: plain realloc of a malloc'ed pointer.
    unsafe { libc::realloc(p, n) }
}

unsafe extern "C" fn counting_free(p: *mut c_void) {
    if !p.is_null() {
        FREES.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: plain free of a malloc'ed pointer.
    unsafe { libc::free(p) }
}

#[test]
fn getaddrinfo_results_come_from_and_go_back_to_the_allocator_hooks() {
    // SAFETY: the C entry points with valid arguments; the hooks are plain malloc/free, and
    // no other test in this binary allocates through the library in-process.
    unsafe {
        evrs_capi::mm::event_set_mem_functions(
            Some(counting_malloc),
            Some(counting_realloc),
            Some(counting_free),
        );
        let mut hints: libc::addrinfo = std::mem::zeroed();
        hints.ai_family = libc::AF_INET;
        hints.ai_flags = libc::AI_NUMERICHOST | libc::AI_CANONNAME;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        let r =
            addrinfo::evutil_getaddrinfo(c"127.0.0.1".as_ptr(), c"80".as_ptr(), &hints, &mut res);
        assert_eq!(r, 0);
        let mut nodes = 0;
        let mut cur = res;
        while !cur.is_null() {
            nodes += 1;
            assert_eq!((*cur).ai_family, libc::AF_INET);
            assert_eq!(
                (*(*cur).ai_addr.cast::<libc::sockaddr_in>()).sin_port,
                80u16.to_be()
            );
            cur = (*cur).ai_next;
        }
        assert!(nodes >= 1);
        let allocated = ALLOCS.load(Ordering::SeqCst);
        assert!(
            allocated >= nodes,
            "{allocated} allocations for {nodes} nodes"
        );
        addrinfo::evutil_freeaddrinfo(res);
        assert_eq!(FREES.load(Ordering::SeqCst), allocated);
        evrs_capi::mm::event_set_mem_functions(None, None, None);
        let msg = CStr::from_ptr(addrinfo::evutil_gai_strerror(addrinfo::EAI_CANCEL));
        assert_eq!(msg.to_str().unwrap(), "Request canceled");
    }
}
