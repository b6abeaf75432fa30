//! What the in-process A/B binaries (`echo_ab`, `tls_echo_ab`) share: their command line and
//! the parent's end of their client child process.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::io::{AsRawFd, RawFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// `[ROUNDS] [n,n,..] [server,server,..]`: rounds (at least 1), sizes, and the servers of
/// `all` that were named (all of them if none was).
pub fn parse_args(
    args: &[String],
    default_rounds: usize,
    default_sizes: &[usize],
    all: &[&'static str],
) -> (usize, Vec<usize>, Vec<&'static str>) {
    let mut a = args.iter();
    let rounds = a
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default_rounds)
        .max(1);
    let sizes = a
        .next()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| default_sizes.to_vec());
    let servers = match a.next() {
        Some(list) => all
            .iter()
            .copied()
            .filter(|p| list.split(',').any(|x| x == *p))
            .collect(),
        None => all.to_vec(),
    };
    (rounds, sizes, servers)
}

/// The parent's end of the client: this binary run again with `--client` (and `extra`
/// arguments), taking one command per line on its stdin and answering one line each on its
/// stdout — whose fd the servers watch as their stop fd.
pub struct ClientProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    /// The client's stdout (readable when it has answered).
    pub fd: RawFd,
}

impl ClientProcess {
    /// Starts the client.
    pub fn spawn(extra: &[&str]) -> io::Result<ClientProcess> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--client")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("client stdout not piped"))?;
        let fd = stdout.as_raw_fd();
        Ok(ClientProcess {
            child,
            stdin,
            out: BufReader::new(stdout),
            fd,
        })
    }

    /// Sends one command line.
    pub fn send(&mut self, cmd: &str) -> io::Result<()> {
        let s = self
            .stdin
            .as_mut()
            .ok_or_else(|| io::Error::other("client stopped"))?;
        writeln!(s, "{cmd}")?;
        s.flush()
    }

    /// The client's next line, which must start with `want`: the rest of it.
    pub fn expect(&mut self, want: &str) -> io::Result<String> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        match line.trim().strip_prefix(want) {
            Some(rest) => Ok(rest.trim().to_string()),
            None => Err(io::Error::other(format!(
                "client said {line:?}, expected {want:?} (see its stderr)"
            ))),
        }
    }
}

impl Drop for ClientProcess {
    /// Closing its stdin ends the client; wait for it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
