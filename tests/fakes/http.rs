//! The HTTP/1.1 plumbing every loopback fake shares: reading one request (with a
//! `content-length` or chunked body), reason phrases, and the sandbox fakes' path rule.
#![allow(dead_code)]

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One request as read off the socket.
pub struct RawRequest {
    pub method: String,
    /// Path plus query, as sent.
    pub target: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// (path, query pairs) of the target.
    pub fn split_target(&self) -> (String, Vec<(String, String)>) {
        let (path, query) = match self.target.split_once('?') {
            Some((p, q)) => (p.to_string(), q),
            None => (self.target.clone(), ""),
        };
        let query = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        (path, query)
    }
}

/// A canned answer: any status with a body, plus extra headers (`retry-after`, …).
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Canned {
    pub fn new(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Canned {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Canned {
            status,
            headers,
            body: body.into(),
        }
    }
}

/// The value of header `name` (any case) among `headers` whose names are lowercased.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// Reads and drops what the client sends until it closes the connection: a server that never
/// answers. Always `false` (the connection is gone).
pub async fn hang_until_closed(sock: &mut TcpStream) -> bool {
    let mut tmp = [0u8; 1024];
    loop {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut tmp = [0u8; 65536];
    let n = sock.read(&mut tmp).await.ok()?;
    if n == 0 {
        return None;
    }
    buf.extend_from_slice(&tmp[..n]);
    Some(())
}

/// Reads one request from `buf`/`sock` (bytes after it stay in `buf`); `None` at EOF.
pub async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RawRequest> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        fill(sock, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    buf.drain(..head_end + 4);
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                fill(sock, buf).await?;
            };
            let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            buf.drain(..line_end + 2);
            while buf.len() < size + 2 {
                fill(sock, buf).await?;
            }
            body.extend_from_slice(&buf[..size]);
            buf.drain(..size + 2);
            if size == 0 {
                break;
            }
        }
        body
    } else {
        let len: usize = get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < len {
            fill(sock, buf).await?;
        }
        buf.drain(..len).collect()
    };
    Some(RawRequest {
        method,
        target,
        headers,
        body,
    })
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        507 => "Insufficient Storage",
        529 => "Overloaded",
        _ => "Status",
    }
}

/// `path` (absolute, or relative to `cwd`) normalized; `..` stops at the root.
pub fn resolve(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A loopback fake's server: a thread with a current-thread runtime that accepts on each of its
/// listeners until `stop`. Dropping it cancels `stop` and joins the thread, so a fake ends with
/// its test.
pub struct Server {
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `127.0.0.1:0`, non-blocking (for the runtime of [`serve`]).
pub fn bind_loopback() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    l.set_nonblocking(true).expect("nonblocking");
    l
}

/// Serves every listener, each connection (Nagle off) handed to `handle` with its listener's
/// tag, until `stop` is cancelled.
pub fn serve<T, F, Fut>(
    listeners: Vec<(std::net::TcpListener, T)>,
    stop: tokio_util::sync::CancellationToken,
    handle: F,
) -> Server
where
    T: Copy + Send + 'static,
    F: Fn(TcpStream, T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let stopped = stop.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fake runtime");
        rt.block_on(async move {
            let handle = std::sync::Arc::new(handle);
            for (listener, tag) in listeners {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let (handle, stop) = (handle.clone(), stopped.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            accepted = listener.accept() => {
                                let Ok((sock, _)) = accepted else { continue };
                                let _ = sock.set_nodelay(true);
                                tokio::spawn(handle(sock, tag));
                            }
                        }
                    }
                });
            }
            stopped.cancelled().await;
        });
    });
    Server {
        stop,
        thread: Some(thread),
    }
}
