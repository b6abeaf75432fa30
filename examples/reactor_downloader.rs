//! Concurrent downloads with the "Reactor" pattern: for each document, a writer event sends
//! the HTTP request, kills itself and makes a reader event, which collects the reply in its
//! own storage and kills itself at end of file. Code: `src/downloader.rs`.
//!
//! The example first starts its own tiny HTTP server (plain blocking `std::net`, on a
//! thread, on 127.0.0.1) serving documents of known sizes, then fetches them all through
//! evrs events on the main thread and prints each document's byte count and the total.
//!
//! ```text
//! cargo run --release --example reactor_downloader              # 20 documents, 8 at a time
//! cargo run --release --example reactor_downloader -- 100 25    # 100 documents, 25 at a time
//! cargo run --release --example reactor_downloader -- 100 25 async  # the same with async tasks
//! ```

use evrs_examples::downloader::{document, download_all, download_all_async, serve_documents};

/// Document sizes: a spread from empty to ~1 MB.
fn sizes(n: usize) -> Vec<usize> {
    (0..n).map(|i| (i * 7919 * 131) % 1_000_003).collect()
}

fn main() -> std::io::Result<()> {
    let asynchronous = std::env::args().any(|a| a == "async");
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a != "async")
        .map(|a| a.parse::<usize>().expect("a number"));
    let n = args.next().unwrap_or(20);
    let parallel = args.next().unwrap_or(8);
    let sizes = sizes(n);
    let (addr, server) = serve_documents(sizes.clone())?;
    println!("fetching {n} documents from http://{addr}/ ({parallel} at a time)");
    let paths: Vec<String> = (0..n).map(|i| format!("/doc/{i}")).collect();
    let results = if asynchronous {
        download_all_async(addr, &paths, parallel)?
    } else {
        download_all(addr, &paths, parallel)?
    };
    let mut total = 0;
    for (i, (path, result)) in paths.iter().zip(&results).enumerate() {
        match result {
            Ok(body) => {
                let ok = *body == document(i, sizes[i]);
                println!(
                    "{path}: {} bytes{}",
                    body.len(),
                    if ok { "" } else { " (WRONG CONTENT)" }
                );
                total += body.len();
            }
            Err(e) => println!("{path}: failed: {e}"),
        }
    }
    println!(
        "total: {total} bytes in {} documents",
        results.iter().filter(|r| r.is_ok()).count()
    );
    server.join().expect("document server panicked");
    Ok(())
}
