//! The reactor downloader against its local HTTP server.

mod common;

use evrs_examples::downloader::{document, download_all, download_all_async, serve_documents};
use std::net::TcpListener;

/// Both versions: the callback one and the async one.
fn fetch(sizes: Vec<usize>, parallel: usize) {
    fetch_with(&sizes, parallel, download_all);
    fetch_with(&sizes, parallel, download_all_async);
}

type DownloadAll =
    fn(std::net::SocketAddr, &[String], usize) -> std::io::Result<Vec<Result<Vec<u8>, String>>>;

fn fetch_with(sizes: &[usize], parallel: usize, download: DownloadAll) {
    let n = sizes.len();
    let (addr, server) = serve_documents(sizes.to_vec()).unwrap();
    let paths: Vec<String> = (0..n).map(|i| format!("/doc/{i}")).collect();
    let results = download(addr, &paths, parallel).unwrap();
    server.join().unwrap();
    assert_eq!(results.len(), n);
    let mut total = 0;
    for (i, r) in results.into_iter().enumerate() {
        let body = r.unwrap_or_else(|e| panic!("doc {i}: {e}"));
        assert_eq!(body.len(), sizes[i], "doc {i}");
        assert!(body == document(i, sizes[i]), "doc {i} content");
        total += body.len();
    }
    assert_eq!(total, sizes.iter().sum::<usize>());
}

on_every_backend! {
    fn all_at_once() {
        // Sizes from empty to 2 MiB, so some replies take many reads.
        fetch(
            vec![
                0,
                1,
                100,
                4096,
                65_537,
                300_000,
                2 << 20,
                12_345,
                7,
                999_999,
            ],
            10,
        );
    }

    fn a_few_at_a_time() {
        // More documents than connections: each finished reader starts the next download.
        let sizes: Vec<usize> = (0..30).map(|i| i * 10_007 % 200_000).collect();
        fetch(sizes, 4);
    }

    fn failures_are_reported_not_fatal() {
        // A port nobody listens on: the non-blocking connect fails, the writer event sees it
        // (the socket turns writable with an error pending) and reports it.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        for download in [download_all as DownloadAll, download_all_async] {
            let results = download(addr, &["/doc/0".into(), "/doc/1".into()], 2).unwrap();
            for r in results {
                let e = r.unwrap_err();
                assert!(e.contains("refused"), "unexpected error: {e}");
            }
            // And a 404 from a live server.
            let (addr, server) = serve_documents(vec![10]).unwrap();
            let results = download(addr, &["/doc/5".into()], 1).unwrap();
            server.join().unwrap();
            assert!(results[0].as_ref().unwrap_err().contains("404"));
        }
    }
}
