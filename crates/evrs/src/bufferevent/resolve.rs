//! Connecting by host name (libevent's `bufferevent_socket_connect_hostname`): the lookup
//! runs on a thread of its own with the system resolver (`getaddrinfo`), so the loop never
//! blocks on DNS; the answer comes back through the base's [`Handle`](crate::Handle) and
//! the connect starts from the loop. Reading and writing wait meanwhile, and a timer keeps
//! the loop alive (a lookup is work in progress). A bufferevent freed before the answer is
//! simply not connected. (evrs's own asynchronous DNS, a later layer, will plug in here.)

use super::ctx::Cb;
use super::{BevEvents, BufferEvent};
use crate::base::EventBase;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Which address families a host-name connect may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// IPv4 or IPv6, whichever the resolver lists first (`AF_UNSPEC`).
    Any,
    /// IPv4 only (`AF_INET`).
    V4,
    /// IPv6 only (`AF_INET6`).
    V6,
}

impl EventBase {
    /// Resolves `host` on a helper thread, then connects to the first address of `family`
    /// found (libevent's `bufferevent_socket_connect_hostname` without an `evdns_base`).
    /// Port 0 is refused. A failed lookup reaches the event callback as `ERROR`, with the
    /// reason in [`bev_dns_error`](Self::bev_dns_error).
    pub fn bev_connect_hostname(
        &mut self,
        bev: BufferEvent,
        family: Family,
        host: &str,
        port: u16,
    ) -> io::Result<()> {
        if port == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "port 0 cannot be connected to",
            ));
        }
        self.bev_live(bev)?;
        let handle = self.handle()?;
        // Keeps the loop alive while the answer is out (a lookup is pending work).
        let keepalive = self.new_timer(|_, _, _| {})?;
        self.add(keepalive, Some(Duration::from_secs(24 * 3600)))?;
        self.bev_live(bev)?.rare_mut().resolving = Some(keepalive);
        let host = host.to_string();
        let spawned = std::thread::Builder::new()
            .name("evrs-resolve".into())
            .spawn(move || {
                let res = (host.as_str(), port).to_socket_addrs().map(|addrs| {
                    addrs
                        .filter(|a| match family {
                            Family::Any => true,
                            Family::V4 => a.is_ipv4(),
                            Family::V6 => a.is_ipv6(),
                        })
                        .collect::<Vec<SocketAddr>>()
                });
                // If the base is gone the answer has nowhere to go: nothing to do.
                let _ = handle.run_in_loop(move |base| base.bev_resolved(bev, res));
            });
        if let Err(e) = spawned {
            self.bev_resolve_done(bev);
            return Err(e);
        }
        Ok(())
    }

    /// The reason the last host-name lookup failed, if it did.
    pub fn bev_dns_error(&mut self, bev: BufferEvent) -> io::Result<Option<String>> {
        Ok(self.bev_live(bev)?.rare().dns_error.clone())
    }

    fn bev_resolve_done(&mut self, bev: BufferEvent) {
        if let Some(ev) = self
            .bev_state_mut(bev)
            .and_then(|b| b.rare_if_any()?.resolving.take())
        {
            let _ = self.free(ev);
        }
    }

    /// The lookup's answer is back on the loop thread.
    fn bev_resolved(&mut self, bev: BufferEvent, res: io::Result<Vec<SocketAddr>>) {
        self.bev_resolve_done(bev);
        if self.bev_live(bev).is_err() {
            return;
        }
        let addr = match res {
            Ok(addrs) => addrs.into_iter().next().ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the name has no address of the family asked for",
                )
            }),
            Err(e) => Err(e),
        };
        let failure = match addr {
            Ok(a) => match self.bev_connect(bev, a) {
                Ok(()) => return,
                Err(e) => e,
            },
            Err(e) => e,
        };
        if let Ok(b) = self.bev_live(bev) {
            b.rare_mut().dns_error = Some(failure.to_string());
            b.set_error(&failure);
        }
        self.bev_callback(bev, Cb::Event(BevEvents::ERROR));
    }
}
