//! With the `tokio-io` feature (the workspace's test run has it), evrs::rt's streams carry
//! tokio's `AsyncRead`/`AsyncWrite`: tokio's own `AsyncReadExt`/`AsyncWriteExt` utilities
//! drive them, on every backend.
#![cfg(feature = "tokio-io")]
mod util;
use evrs::rt::{self, Runtime, UnixStream};
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::*;

on_every_backend! {
    fn tokio_utilities_read_and_write(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            let (mut a, mut z) = UnixStream::pair()?;
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            let d2 = data.clone();
            let writer = rt::spawn(async move {
                a.write_all(&d2).await?;
                AsyncWriteExt::shutdown(&mut a).await
            })?;
            let mut got = Vec::new();
            z.read_to_end(&mut got).await?;
            writer.await??;
            assert_eq!(got, data);
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
    }
}
