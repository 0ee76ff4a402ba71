//! The one HTTP client of the preview checks (tests and benchmarks): a plain HTTP/1.0 GET over
//! a socket (no chunked bodies; the server closes after the body). Returns (status, body), or
//! `None` when nothing answers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// GET `path` from 127.0.0.1:`port`.
pub fn get(port: u16, path: &str) -> Option<(u16, String)> {
    fetch(
        SocketAddr::from(([127, 0, 0, 1], port)),
        &format!("127.0.0.1:{port}"),
        path,
    )
}

/// GET an `http://host:port/path` URL.
pub fn get_url(url: &str) -> Option<(u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = host.to_socket_addrs().ok()?.next()?;
    fetch(addr, host, path)
}

fn fetch(addr: SocketAddr, host: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: */*\r\n\r\n"
    )
    .ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}
