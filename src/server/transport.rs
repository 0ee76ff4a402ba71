//! Guards around the JSON-RPC stream. tower-lsp-server ends the whole session on the first frame
//! it cannot decode (invalid JSON, a batch array, invalid UTF-8, a lone UTF-16 surrogate escape
//! such as `"\ud800"` that `JSON.stringify` happily produces). So every incoming frame is checked
//! first: invalid UTF-8 and lone surrogates are repaired to U+FFFD (the message still means what
//! the client meant), frames that are still not a JSON object are answered with a JSON-RPC
//! parse error (`id: null`), and JSON objects that are not a message tower-lsp-server can decode
//! (no `jsonrpc: "2.0"`, an id that is an object or out of range, …) are answered with `-32600
//! Invalid Request` (the id echoed when it is a number or string), or dropped with a log line when
//! they look like a response. Answers go on the output between whole frames; the bad frame never
//! reaches the server.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::sync::mpsc;

/// Largest frame accepted; larger ones are skipped without being buffered.
const MAX_FRAME: usize = 256 * 1024 * 1024;

enum Frame {
    Body,
    Skipped(String),
    Eof,
}

/// Reads one `Content-Length` frame into `body`.
async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut String,
    body: &mut Vec<u8>,
) -> Frame {
    let mut length: Option<usize> = None;
    let mut saw_header = false;
    loop {
        line.clear();
        match reader.read_line(line).await {
            Ok(0) => return Frame::Eof,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Frame::Skipped(format!("unreadable header line: {e}"));
            }
            Err(_) => return Frame::Eof,
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            if saw_header {
                break;
            }
            continue;
        }
        saw_header = true;
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            }
        }
    }
    let Some(len) = length else {
        return Frame::Skipped("a message without a valid Content-Length header".into());
    };
    if len > MAX_FRAME {
        let mut skip = reader.take(len as u64);
        if tokio::io::copy(&mut skip, &mut tokio::io::sink())
            .await
            .is_err()
        {
            return Frame::Eof;
        }
        return Frame::Skipped(format!("a message of {len} bytes (limit {MAX_FRAME})"));
    }
    body.clear();
    body.resize(len, 0);
    if reader.read_exact(body).await.is_err() {
        return Frame::Eof;
    }
    Frame::Body
}

async fn write_frame<W: AsyncWrite + Unpin>(out: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(format!("Content-Length: {}\r\n\r\n", bytes.len()).as_bytes())
        .await?;
    out.write_all(bytes).await?;
    out.flush().await
}

/// `-32600` for a JSON object that is not a valid request, echoing its id when it is a number or
/// a string (JSON-RPC 2.0 §5: null when the id cannot be determined).
fn invalid_request(id: serde_json::Value, why: &str) -> Vec<u8> {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": -32600, "message": format!("Invalid Request: {why}")}
    })
    .to_string()
    .into_bytes()
}

fn parse_error(why: &str) -> Vec<u8> {
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {why}")}
    })
    .to_string()
    .into_bytes()
}

/// An error answer and the signal that it has been written.
pub type ErrorFrame = (Vec<u8>, tokio::sync::oneshot::Sender<()>);

/// Queues an error answer and waits until it is written, so it precedes the answers to any
/// later message (clients read them in the order they sent).
async fn send_error(errors: &mpsc::UnboundedSender<ErrorFrame>, frame: Vec<u8>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    if errors.send((frame, tx)).is_ok() {
        let _ = rx.await;
    }
}

/// Copies checked frames from `input` to `to_server` until `input` ends; bad frames become a
/// parse error sent through `errors`.
pub async fn guard<R, W>(input: R, mut to_server: W, errors: mpsc::UnboundedSender<ErrorFrame>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        match read_frame(&mut reader, &mut line, &mut body).await {
            Frame::Eof => return,
            Frame::Skipped(why) => {
                tracing::warn!("dropped {why}");
                send_error(&errors, parse_error(&why)).await;
                continue;
            }
            Frame::Body => {}
        }
        let fixed = match check(&body) {
            Checked::Ok => None,
            Checked::Fixed(fixed) => Some(fixed),
            Checked::Bad(why) => {
                tracing::warn!("dropped a malformed message: {why}");
                send_error(&errors, parse_error(&why)).await;
                continue;
            }
        };
        let frame = fixed.as_deref().unwrap_or(&body);
        if let Err(bad) = shape(frame) {
            match bad {
                BadShape::Request { id, why } => {
                    tracing::warn!("answered an invalid request: {why}");
                    send_error(&errors, invalid_request(id, &why)).await;
                }
                BadShape::Response(why) => {
                    tracing::warn!("dropped an invalid response: {why}");
                }
            }
            continue;
        }
        if write_frame(&mut to_server, frame).await.is_err() {
            return;
        }
    }
}

/// Copies the server's frames to `output` whole, and the guard's error answers in between.
/// Two tasks share the writer through a lock, so neither read is ever cancelled mid-frame.
pub async fn pump<R, W>(from_server: R, output: W, mut errors: mpsc::UnboundedReceiver<ErrorFrame>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let output = std::sync::Arc::new(tokio::sync::Mutex::new(output));
    let out2 = output.clone();
    let errors_task = tokio::spawn(async move {
        while let Some((err, written)) = errors.recv().await {
            if write_frame(&mut *out2.lock().await, &err).await.is_err() {
                return;
            }
            let _ = written.send(());
        }
    });
    let mut reader = BufReader::with_capacity(64 * 1024, from_server);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        match read_frame(&mut reader, &mut line, &mut body).await {
            Frame::Body => {
                if write_frame(&mut *output.lock().await, &body).await.is_err() {
                    break;
                }
            }
            Frame::Skipped(_) => {}
            Frame::Eof => break,
        }
    }
    errors_task.abort();
}

enum Checked {
    Ok,
    Fixed(Vec<u8>),
    Bad(String),
}

fn check(body: &[u8]) -> Checked {
    if std::str::from_utf8(body).is_err() {
        let lossy = String::from_utf8_lossy(body).into_owned().into_bytes();
        return match check(&lossy) {
            Checked::Ok => Checked::Fixed(lossy),
            other => other,
        };
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Checked::Bad("not a JSON object".into());
    }
    if serde_json::from_slice::<Strict>(body).is_ok() {
        return Checked::Ok;
    }
    // Valid apart from lone surrogate escapes? Repair those and check again.
    if serde_json::from_slice::<IgnoredAny>(body).is_ok() {
        let fixed = replace_lone_surrogates(body);
        if serde_json::from_slice::<Strict>(&fixed).is_ok() {
            tracing::warn!("replaced lone UTF-16 surrogate escapes with U+FFFD");
            return Checked::Fixed(fixed);
        }
    }
    match serde_json::from_slice::<Strict>(body) {
        Err(e) => Checked::Bad(e.to_string()),
        Ok(_) => Checked::Ok,
    }
}

/// Why a JSON object is not a message the server can decode.
#[derive(Debug)]
enum BadShape {
    /// Not a request or notification: answer it (with its id when usable).
    Request { id: serde_json::Value, why: String },
    /// Looks like a response (`result`/`error`, no `method`): there is nobody to answer.
    Response(String),
}

/// Checks a valid JSON object against tower-lsp-server's own message types — exactly what it
/// decodes, so no frame that passes can end the session. A request is tried first: it is what
/// almost every frame is, and it parses without buffering the whole body (the response type
/// flattens, which would).
fn shape(body: &[u8]) -> Result<(), BadShape> {
    use tower_lsp_server::jsonrpc::{Request, Response};
    let as_request = match serde_json::from_slice::<Request>(body) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let as_response = match serde_json::from_slice::<Response>(body) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // The bad path only: a full parse to see what the frame was meant to be.
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(body).unwrap_or_default();
    let is_response =
        !v.contains_key("method") && (v.contains_key("result") || v.contains_key("error"));
    if is_response {
        return Err(BadShape::Response(as_response.to_string()));
    }
    let why = if v.get("jsonrpc").and_then(serde_json::Value::as_str) != Some("2.0") {
        "`jsonrpc` must be \"2.0\"".to_string()
    } else {
        as_request.to_string()
    };
    let id = match v.get("id") {
        Some(id @ (serde_json::Value::Number(_) | serde_json::Value::String(_))) => id.clone(),
        _ => serde_json::Value::Null,
    };
    Err(BadShape::Request { id, why })
}

/// Validates like a real parse (strings decoded, so bad escapes fail) without building values.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Strict, A::Error> {
        while s.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Strict, A::Error> {
        while m.next_key::<Strict>()?.is_some() {
            m.next_value::<Strict>()?;
        }
        Ok(Strict)
    }
}

fn hex4(b: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(b.get(..4)?).ok()?;
    u16::from_str_radix(s, 16).ok()
}

/// Rewrites `\uD800`–`\uDFFF` escapes that are not part of a valid pair as `\uFFFD`.
fn replace_lone_surrogates(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' && i + 1 < body.len() {
            if body[i + 1] == b'u' {
                if let Some(cu) = hex4(&body[i + 2..]) {
                    if (0xD800..0xDC00).contains(&cu) {
                        let low = (body.get(i + 6) == Some(&b'\\')
                            && body.get(i + 7) == Some(&b'u'))
                        .then(|| hex4(&body[i + 8..]))
                        .flatten();
                        if low.is_some_and(|lo| (0xDC00..0xE000).contains(&lo)) {
                            out.extend_from_slice(&body[i..i + 12]);
                            i += 12;
                            continue;
                        }
                        out.extend_from_slice(b"\\uFFFD");
                        i += 6;
                        continue;
                    }
                    if (0xDC00..0xE000).contains(&cu) {
                        out.extend_from_slice(b"\\uFFFD");
                        i += 6;
                        continue;
                    }
                }
            }
            out.extend_from_slice(&body[i..i + 2]);
            i += 2;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

/// Standard input read by a dedicated thread. `tokio::io::stdin` hands every read to the
/// blocking pool (a thread hop per read, and a pool thread kept alive); one thread that only
/// reads, feeding a channel, wakes the server directly.
pub struct StdinReader {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// Standard output written by a dedicated thread, for the same reason as [`StdinReader`].
/// Writes are queued (frames are whole already); the thread writes and flushes whatever is
/// queued, so several frames can go out in one write.
pub struct StdoutWriter {
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

/// Ends when the stdout thread has written everything queued before its writer was dropped.
pub struct StdoutDone(std::sync::mpsc::Receiver<()>);

impl StdoutDone {
    /// Waits at most `limit` for the queued output to be written (a client that stopped reading
    /// must not keep the process alive).
    pub fn wait(self, limit: std::time::Duration) {
        let _ = self.0.recv_timeout(limit);
    }
}

/// Starts the stdin and stdout threads. Thread creation fails only when the system is out of
/// threads; the caller reports it.
pub fn stdio() -> std::io::Result<(StdinReader, StdoutWriter, StdoutDone)> {
    use std::io::{Read, Write};
    let (in_tx, in_rx) = mpsc::channel::<std::io::Result<Vec<u8>>>(16);
    std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            // One buffer reused; each chunk sent is exactly as long as what was read, so
            // queued chunks do not each hold 64 KiB.
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        if in_tx.blocking_send(Ok(buf[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = in_tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        })?;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("stdout".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut stdout = std::io::stdout().lock();
            while let Some(first) = out_rx.blocking_recv() {
                if stdout.write_all(&first).is_err() {
                    break;
                }
                let mut failed = false;
                while let Ok(more) = out_rx.try_recv() {
                    if stdout.write_all(&more).is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || stdout.flush().is_err() {
                    break;
                }
            }
            let _ = done_tx.send(());
        })?;
    Ok((
        StdinReader {
            rx: in_rx,
            chunk: Vec::new(),
            pos: 0,
        },
        StdoutWriter { tx: Some(out_tx) },
        StdoutDone(done_rx),
    ))
}

impl AsyncRead for StdinReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        while this.pos >= this.chunk.len() {
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    this.chunk = chunk;
                    this.pos = 0;
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                // End of input: a read of zero bytes.
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = buf.remaining().min(this.chunk.len() - this.pos);
        buf.put_slice(&this.chunk[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for StdoutWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(buf.to_vec()).is_ok());
        std::task::Poll::Ready(if sent {
            Ok(buf.len())
        } else {
            Err(std::io::ErrorKind::BrokenPipe.into())
        })
    }

    /// The thread flushes after each batch it writes; nothing is held here.
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.tx = None;
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_are_replaced_pairs_kept() {
        let body = br#"{"a":"x\ud800y","b":"\ud83d\ude00","c":"\\ud800","d":"\udc00"}"#;
        let fixed = replace_lone_surrogates(body);
        let v: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(v["a"], "x\u{FFFD}y");
        assert_eq!(v["b"], "😀");
        assert_eq!(v["c"], "\\ud800");
        assert_eq!(v["d"], "\u{FFFD}");
    }

    #[test]
    fn check_classifies_frames() {
        assert!(matches!(check(b"{\"jsonrpc\":\"2.0\"}"), Checked::Ok));
        assert!(matches!(check(b"[]"), Checked::Bad(_)));
        assert!(matches!(check(b"{nope"), Checked::Bad(_)));
        assert!(matches!(check(b"{\"a\":\"\\ud800\"}"), Checked::Fixed(_)));
        assert!(matches!(check(&[b'{', 0xff, b'}']), Checked::Bad(_)));
        assert!(matches!(check(b"{\"a\":\"\xff\"}"), Checked::Fixed(_)));
    }

    #[test]
    fn shape_accepts_what_tower_decodes_and_names_the_rest() {
        for ok in [
            r#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"x","params":[1]}"#,
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-1,"message":"no"}}"#,
        ] {
            assert!(shape(ok.as_bytes()).is_ok(), "{ok}");
        }
        let bad = |s: &str| shape(s.as_bytes()).unwrap_err();
        match bad(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"shutdown"}"#) {
            BadShape::Request { id, .. } => assert!(id.is_null()),
            other => panic!("{other:?}"),
        }
        match bad(r#"{"id":9,"method":"workspace/executeCommand"}"#) {
            BadShape::Request { id, why } => {
                assert_eq!(id, 9);
                assert!(why.contains("jsonrpc"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        match bad(r#"{"jsonrpc":"2.0","id":"s","method":7}"#) {
            BadShape::Request { id, .. } => assert_eq!(id, "s"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(bad("{}"), BadShape::Request { .. }));
        assert!(matches!(
            bad(r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"x"}"#),
            BadShape::Request { .. }
        ));
        assert!(matches!(
            bad(r#"{"jsonrpc":"2.0","id":{},"result":1}"#),
            BadShape::Response(_)
        ));
    }

    #[tokio::test]
    async fn guard_forwards_good_frames_and_answers_bad_ones() {
        let input = b"Content-Length: 2\r\n\r\n[]Content-Length: 17\r\n\r\n{\"jsonrpc\":\"2.0\"}garbage\r\n\r\nContent-Length: 4\r\n\r\n{x}}".to_vec();
        let mut out = Vec::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<ErrorFrame>();
        let acks = tokio::spawn(async move {
            let mut errors = 0;
            while let Some((e, written)) = rx.recv().await {
                let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
                assert_eq!(v["error"]["code"], -32700);
                assert!(v["id"].is_null());
                errors += 1;
                let _ = written.send(());
            }
            errors
        });
        guard(&input[..], &mut out, tx).await;
        assert_eq!(out, b"Content-Length: 17\r\n\r\n{\"jsonrpc\":\"2.0\"}");
        assert_eq!(acks.await.unwrap(), 3);
    }
}
