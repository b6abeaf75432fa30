//! [`PeerAddr`]: a socket address as the listener reports it.

use socket2::SockAddr;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The address of a socket: the peer's in an accept callback, the listener's own from
/// [`EventBase::listener_local_addr`](crate::EventBase::listener_local_addr) (libevent hands
/// out a `struct sockaddr *` and its length instead).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PeerAddr {
    /// An IPv4 or IPv6 address (`AF_INET`, `AF_INET6`).
    Inet(SocketAddr),
    /// A Unix-domain socket (`AF_UNIX`) bound to a path, or `None` for an unnamed one (a
    /// client that connected without binding: the usual case).
    Unix(Option<PathBuf>),
    /// A Unix-domain socket in Linux's abstract namespace: the name without its leading NUL.
    UnixAbstract(Vec<u8>),
    /// Another address family (its `sa_family` value).
    Other(u16),
}

impl PeerAddr {
    /// The IP address and port, if this is one.
    pub fn as_inet(&self) -> Option<SocketAddr> {
        match self {
            PeerAddr::Inet(a) => Some(*a),
            _ => None,
        }
    }

    pub(crate) fn from_sockaddr(a: &SockAddr) -> PeerAddr {
        if let Some(inet) = a.as_socket() {
            return PeerAddr::Inet(inet);
        }
        if a.is_unix() {
            if let Some(name) = a.as_abstract_namespace() {
                return PeerAddr::UnixAbstract(name.to_vec());
            }
            return PeerAddr::Unix(a.as_pathname().map(PathBuf::from));
        }
        PeerAddr::Other(a.family())
    }
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Inet(a) => write!(f, "{a}"),
            PeerAddr::Unix(Some(p)) => write!(f, "unix:{}", p.display()),
            PeerAddr::Unix(None) => write!(f, "unix:(unnamed)"),
            PeerAddr::UnixAbstract(n) => write!(f, "unix:@{}", String::from_utf8_lossy(n)),
            PeerAddr::Other(fam) => write!(f, "(address family {fam})"),
        }
    }
}
