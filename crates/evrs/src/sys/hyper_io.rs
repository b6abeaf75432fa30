//! A `read(2)` straight into hyper's uninitialised read buffer (feature `hyper`): hyper's
//! `ReadBufCursor` hands out its unfilled memory only through `unsafe` calls, so the read
//! lives here with the other syscalls.

use super::syscall;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Reads once from `fd` into `cursor`'s unfilled part and advances it over what was read.
pub(crate) fn read_to_cursor(
    fd: BorrowedFd<'_>,
    cursor: &mut hyper::rt::ReadBufCursor<'_>,
) -> io::Result<usize> {
    // SAFETY: the slice is only written (by the kernel, below), never read uninitialised.
    let unfilled = unsafe { cursor.as_mut() };
    // SAFETY: the pointer and length describe `unfilled`, writable memory the cursor lent us
    // for this call; `read` writes at most that many bytes into it.
    let n = syscall!(read(
        fd.as_raw_fd(),
        unfilled.as_mut_ptr().cast(),
        unfilled.len()
    ))? as usize;
    // SAFETY: `read` initialised exactly the first `n` (≤ len) bytes of the unfilled part.
    unsafe { cursor.advance(n) };
    Ok(n)
}
