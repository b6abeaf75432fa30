//! The crate's error type.

use std::fmt;
use std::io;

/// Which end of a buffer a freeze applies to (see [`EvBuffer::freeze`]).
///
/// [`EvBuffer::freeze`]: crate::EvBuffer::freeze
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum End {
    /// The front: draining, removing, copying out, reading lines, writing to
    /// an fd, prepending.
    Start,
    /// The back: adding, formatting, references, files, reading from an fd,
    /// reserving and committing space.
    End,
}

/// Everything that can go wrong in an [`EvBuffer`](crate::EvBuffer) call.
///
/// Every failing call leaves the buffer unchanged unless its documentation
/// says otherwise. `Error` converts into [`io::Error`] for callers that want
/// one error type.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The operation touches an end of the buffer that is frozen.
    Frozen(End),
    /// A position or length lies beyond the end of the buffer.
    OutOfRange,
    /// [`readln`](crate::EvBuffer::readln) found no end of line within the
    /// caller's limit: the line is longer than `limit` bytes. Nothing was
    /// consumed.
    LineTooLong {
        /// The limit the caller passed.
        limit: usize,
    },
    /// [`commit_space`](crate::EvBuffer::commit_space) was called without a
    /// live reservation, with more vectors or bytes than were reserved, or
    /// after the buffer changed.
    InvalidReservation,
    /// The memory asked for (by [`expand`](crate::EvBuffer::expand),
    /// [`reserve_space`](crate::EvBuffer::reserve_space),
    /// [`read_from`](crate::EvBuffer::read_from), or a contiguous copy:
    /// [`pullup`](crate::EvBuffer::pullup),
    /// [`remove_bytes`](crate::EvBuffer::remove_bytes), a line, reading
    /// file data in) could not be allocated; nothing changed.
    NoMemory,
    /// A `Display` implementation failed while formatting
    /// ([`add_fmt`](crate::EvBuffer::add_fmt)); nothing was added.
    Format,
    /// The operating system reported an error.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Frozen(End::Start) => f.write_str("the start of the buffer is frozen"),
            Error::Frozen(End::End) => f.write_str("the end of the buffer is frozen"),
            Error::OutOfRange => f.write_str("position or length out of range"),
            Error::LineTooLong { limit } => write!(f, "line longer than {limit} bytes"),
            Error::InvalidReservation => f.write_str("no matching reservation to commit"),
            Error::NoMemory => f.write_str("cannot allocate that much memory"),
            Error::Format => f.write_str("formatting failed"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match &e {
            Error::Io(_) => {
                if let Error::Io(inner) = e {
                    return inner;
                }
                io::ErrorKind::Other
            }
            Error::Frozen(_) => io::ErrorKind::PermissionDenied,
            Error::OutOfRange | Error::InvalidReservation => io::ErrorKind::InvalidInput,
            Error::LineTooLong { .. } | Error::Format => io::ErrorKind::InvalidData,
            Error::NoMemory => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, e)
    }
}

/// Shorthand for `Result<T, evrs_buffer::Error>`.
pub type Result<T> = std::result::Result<T, Error>;
