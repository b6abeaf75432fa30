//! The ROT13 server against real TCP clients.

mod common;

use common::{connect, read_line, spawn_server, Server, TIMEOUT};
use evrs::{Count, EventBase, What};
use evrs_examples::rot13::{self, rot13_char, MAX_LINE};
use std::io::{BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::io::AsRawFd;
use std::thread;
use std::time::Duration;

/// (accepted, closed, user events still registered) when the server stopped.
type Report = (u64, u64, usize);

fn server() -> Server<Report> {
    spawn_server(
        rot13::listen,
        |base: &mut EventBase, c: std::rc::Rc<rot13::Counters>| {
            (
                c.accepted.get(),
                c.closed.get(),
                base.num_events(Count::Added),
            )
        },
    )
}

fn rot13(s: &[u8]) -> Vec<u8> {
    s.iter().map(|&c| rot13_char(c)).collect()
}

on_every_backend! {
    fn hello_becomes_uryyb() {
        let srv = server();
        let mut c = BufReader::new(connect(srv.addr));
        c.get_mut().write_all(b"Hello\n").unwrap();
        assert_eq!(read_line(&mut c), "Uryyb\n");
        c.get_mut()
            .write_all(b"Why did the chicken cross the road?\n")
            .unwrap();
        assert_eq!(read_line(&mut c), "Jul qvq gur puvpxra pebff gur ebnq?\n");
        // Two lines in one segment, and one line split over two segments.
        c.get_mut().write_all(b"abc\nxyz\nNOP").unwrap();
        assert_eq!(read_line(&mut c), "nop\n");
        assert_eq!(read_line(&mut c), "klm\n");
        c.get_mut().write_all(b"QRS\n").unwrap();
        assert_eq!(read_line(&mut c), "ABCDEF\n");
        drop(c);
        let (accepted, _, _) = srv.stop();
        assert_eq!(accepted, 1);
    }

    fn eof_answers_the_last_partial_line_then_closes() {
        let srv = server();
        let mut c = connect(srv.addr);
        c.write_all(b"one\ntwo").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut all = Vec::new();
        c.read_to_end(&mut all).unwrap(); // returns only once the server closed the connection
        assert_eq!(all, b"bar\ngjb");
        let (accepted, closed, added) = srv.stop();
        assert_eq!((accepted, closed), (1, 1));
        assert_eq!(added, 1, "only the listener's event should be left");
    }

    fn many_clients_at_once() {
        const CLIENTS: usize = 100;
        let srv = server();
        let mut clients: Vec<_> = (0..CLIENTS)
            .map(|_| BufReader::new(connect(srv.addr)))
            .collect();
        // Interleave: every client sends a line before anyone reads an answer.
        for round in 0..3 {
            for (i, c) in clients.iter_mut().enumerate() {
                writeln!(c.get_mut(), "client {i} round {round}").unwrap();
            }
            for (i, c) in clients.iter_mut().enumerate() {
                let want = rot13(format!("client {i} round {round}\n").as_bytes());
                assert_eq!(read_line(c).as_bytes(), want);
            }
        }
        // Close them all; the server must notice every end of file and free every connection.
        for c in &clients {
            c.get_ref().shutdown(Shutdown::Write).unwrap();
        }
        for c in &mut clients {
            let mut rest = Vec::new();
            c.read_to_end(&mut rest).unwrap();
            assert!(rest.is_empty());
        }
        let (accepted, closed, added) = srv.stop();
        assert_eq!((accepted, closed), (CLIENTS as u64, CLIENTS as u64));
        assert_eq!(added, 1, "connections' events must all be freed");
    }

    fn overlong_line_is_answered_in_pieces() {
        let srv = server();
        let mut c = connect(srv.addr);
        let long: Vec<u8> = (0..MAX_LINE * 3 + 123)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let mut msg = long.clone();
        msg.extend_from_slice(b"\nok\n");
        // Write from another thread: the server answers while we are still sending.
        let mut w = c.try_clone().unwrap();
        let writer = thread::spawn(move || {
            w.write_all(&msg).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        let mut want = rot13(&long);
        want.extend_from_slice(b"\nbx\n");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "answer differs");
        srv.stop();
    }

    fn client_that_does_not_read_is_paused_not_buffered_forever() {
        // The client sends 6 MiB of lines but reads nothing until the server has paused it. The
        // answers can only go into the client's receive buffer (which does not grow while the
        // client does not read), the server's send buffer (at most 4 MiB: the default maximum
        // of net.ipv4.tcp_wmem) and MAX_PENDING bytes of the server's own, so the server *must*
        // stop reading. Once it has, the client drains everything; it must all
        // come back intact, and the server must have resumed reading to produce it.
        let (paused_tx, paused_rx) = std::sync::mpsc::channel();
        let srv = spawn_server(
            move |base, listener| {
                let counters = rot13::listen(base, listener)?;
                // Tell the test thread (once) that a connection was paused: a 1 ms timer checks.
                let c = counters.clone();
                let watch = base.new_event(-1, What::PERSIST, move |base, ev, _| {
                    if c.paused.get() > 0 {
                        paused_tx.send(()).unwrap();
                        let _ = base.del(ev);
                    }
                })?;
                base.add(watch, Some(Duration::from_millis(1)))?;
                Ok(counters)
            },
            |_base, c: std::rc::Rc<rot13::Counters>| (c.paused.get(), c.closed.get()),
        );
        let mut c = connect(srv.addr);
        let line = b"The quick brown fox jumps over the lazy dog\n";
        let n = 6 * 1024 * 1024 / line.len();
        let mut w = c.try_clone().unwrap();
        let writer = thread::spawn(move || {
            let chunk: Vec<u8> = line.repeat(1000);
            let mut left = n;
            while left > 0 {
                let k = left.min(1000);
                w.write_all(&chunk[..k * line.len()]).unwrap();
                left -= k;
            }
            w.shutdown(Shutdown::Write).unwrap();
        });
        paused_rx
            .recv_timeout(TIMEOUT)
            .expect("the server never paused the client");
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), n * line.len());
        let want_line = rot13(line);
        assert!(got.chunks(line.len()).all(|l| l == want_line.as_slice()));
        let (paused, closed) = srv.stop();
        assert!(paused >= 1);
        assert_eq!(closed, 1);
    }

    fn reset_connection_is_cleaned_up() {
        let srv = server();
        {
            let c = connect(srv.addr);
            // SO_LINGER 0: close() sends RST instead of FIN, so the server's recv fails.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            let fd = c.as_raw_fd();
            // SAFETY: valid socket and option struct.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0);
            (&c).write_all(b"half a line").unwrap();
        }
        // The reset reached the server's socket before close() returned. A second client then
        // talks to the server: the reset connection was readable before this client's data, so
        // the server handled (and closed) it no later than the loop iteration that answers us.
        let mut c = BufReader::new(connect(srv.addr));
        c.get_mut().write_all(b"ping\n").unwrap();
        assert_eq!(read_line(&mut c), "cvat\n");
        c.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap(); // the server closed this one too
        let (accepted, closed, added) = srv.stop();
        assert_eq!((accepted, closed, added), (2, 2, 1));
    }
}
