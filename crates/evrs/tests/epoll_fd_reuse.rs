//! epoll's fd-number reuse recovery, in a file of its own: it relies on the kernel handing
//! out the lowest free fd number, which other tests running in parallel threads of the same
//! process would disturb.
mod util;
use evrs::{Method, What};
use std::cell::Cell;
use std::rc::Rc;
use util::*;

#[test]
fn epoll_recovers_when_an_fd_is_closed_and_its_number_reused_within_an_iteration() {
    // Inside a callback: del (queued in the change list), close, a new socket that reuses the
    // number, add. The queued DEL was cancelled, but the kernel forgot the old registration
    // when the fd closed: evrs issues MOD, gets ENOENT, and retries as ADD (as libevent does).
    let mut b = base(Method::Epoll);
    let (x, y) = pair();
    let old = fd(&y);
    let slot: Rc<
        std::cell::RefCell<
            Option<(
                std::os::unix::net::UnixStream,
                std::os::unix::net::UnixStream,
            )>,
        >,
    > = Rc::new(std::cell::RefCell::new(None));
    let hit = Rc::new(Cell::new(false));
    let ev = b
        .new_event(old, What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    b.add(ev, None).unwrap();
    let (s2, h2) = (slot.clone(), hit.clone());
    let mut y = Some(y);
    let starter = b
        .new_timer(move |base, _, _| {
            base.del(ev).unwrap();
            drop(y.take());
            let (p, q) = pair();
            let h = h2.clone();
            assert_eq!(fd(&p), old, "the lowest free fd number is reused");
            let ev2 = base
                .new_event(fd(&p), What::READ, move |_, _, _| h.set(true))
                .unwrap();
            base.add(ev2, None).unwrap();
            write(&q, b"!");
            *s2.borrow_mut() = Some((p, q));
        })
        .unwrap();
    b.activate(starter, What::TIMEOUT, 1).unwrap();
    within(std::time::Duration::from_secs(5), || b.dispatch().unwrap());
    assert!(hit.get());
    drop(x);
}
