//! Connect server-streaming framing (envelopes) and the process events and output lines
//! carried in it.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Connect framing

/// One Connect envelope: flags byte, big-endian u32 length, message.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Envelope {
    pub(super) flags: u8,
    pub(super) data: Vec<u8>,
}

pub(super) const FLAG_COMPRESSED: u8 = 0x01;
pub(super) const FLAG_END_STREAM: u8 = 0x02;

pub(super) fn encode_envelope(flags: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + data.len());
    out.push(flags);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Reassembles envelopes from bytes split anywhere (TCP reads, HTTP chunks).
#[derive(Debug, Default)]
pub(super) struct EnvelopeDecoder {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
}

impl EnvelopeDecoder {
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received that are not yet a whole envelope.
    pub(super) fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next complete envelope. Errs on flags this client never negotiated (compression:
    /// no `Connect-Accept-Encoding` is sent) and on absurd lengths, as soon as the header is in.
    pub(super) fn next(&mut self) -> Result<Option<Envelope>, String> {
        let rest = &self.buf[self.start..];
        if rest.len() < 5 {
            return Ok(None);
        }
        let flags = rest[0];
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        if flags & FLAG_COMPRESSED != 0 {
            return Err(
                "a message arrived compressed although no compression was negotiated".into(),
            );
        }
        if flags & !FLAG_END_STREAM != 0 {
            return Err(format!("a message has unknown flags 0x{flags:02x}"));
        }
        if len > MAX_ENVELOPE {
            return Err(format!(
                "a message of {len} bytes exceeds the {MAX_ENVELOPE} byte limit"
            ));
        }
        if rest.len() < 5 + len {
            return Ok(None);
        }
        let data = rest[5..5 + len].to_vec();
        self.start += 5 + len;
        if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(Envelope { flags, data }))
    }
}

/// What a `process.Process/Start` stream reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ProcEvent {
    Start { pid: u32 },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Keepalive,
    End(EndInfo),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EndInfo {
    /// envd reports -1 when a signal ended the process.
    pub(super) exit_code: i32,
    pub(super) exited: bool,
    pub(super) status: String,
}

pub(super) fn json_int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(), // proto3 JSON parsers accept quoted ints
        _ => None,
    }
}

pub(super) fn decode_bytes(v: &Value) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    // proto3 JSON: standard base64 with padding; parsers also accept URL-safe and no padding.
    const CFG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CFG);
    const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CFG);
    let s = v.as_str().ok_or("output bytes are not a base64 string")?;
    STD.decode(s)
        .or_else(|_| URL.decode(s))
        .map_err(|e| format!("output is not valid base64 ({e})"))
}

/// One `StartResponse` message; `None` for event kinds this client does not know.
pub(super) fn parse_event(data: &[u8]) -> Result<Option<ProcEvent>, String> {
    let v: Value =
        serde_json::from_slice(data).map_err(|e| format!("an event was not valid JSON ({e})"))?;
    let Some(ev) = v.get("event") else {
        return Ok(None);
    };
    if let Some(s) = ev.get("start") {
        let pid = json_int(s.get("pid"))
            .and_then(|p| u32::try_from(p).ok())
            .ok_or("the start event has no pid")?;
        return Ok(Some(ProcEvent::Start { pid }));
    }
    if let Some(d) = ev.get("data") {
        if let Some(b) = d.get("stdout") {
            return Ok(Some(ProcEvent::Stdout(decode_bytes(b)?)));
        }
        if let Some(b) = d.get("stderr").or_else(|| d.get("pty")) {
            return Ok(Some(ProcEvent::Stderr(decode_bytes(b)?)));
        }
        return Ok(None);
    }
    if let Some(e) = ev.get("end") {
        let code = json_int(e.get("exitCode")).unwrap_or(0); // proto3 omits zero
        return Ok(Some(ProcEvent::End(EndInfo {
            exit_code: i32::try_from(code).unwrap_or(-1),
            exited: e.get("exited").and_then(Value::as_bool).unwrap_or(false),
            status: e
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })));
    }
    if ev.get("keepalive").is_some() {
        return Ok(Some(ProcEvent::Keepalive));
    }
    Ok(None)
}

/// The response stream of one `process.Process/Start` call.
pub(super) struct ProcessStream {
    pub(super) resp: reqwest::Response,
    pub(super) decoder: EnvelopeDecoder,
    pub(super) queue: VecDeque<ProcEvent>,
    pub(super) done: bool,
    pub(super) sandbox_id: String,
    pub(super) secrets: Vec<String>,
}

impl ProcessStream {
    /// The next event; `Ok(None)` once the server closed the stream cleanly (end-stream `{}`).
    /// Cancel-safe: dropping the future loses no bytes.
    pub(super) async fn next(&mut self) -> Result<Option<ProcEvent>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Ok(Some(ev));
            }
            if self.done {
                return Ok(None);
            }
            match self.decoder.next().map_err(protocol)? {
                Some(env) => self.handle(env)?,
                None => {
                    let chunk = tokio::time::timeout(STREAM_IDLE_TIMEOUT, self.resp.chunk())
                        .await
                        .map_err(|_| {
                            SandboxError::Timeout(format!(
                                "the E2B command stream was silent for {} s",
                                STREAM_IDLE_TIMEOUT.as_secs()
                            ))
                        })?;
                    match chunk {
                        Ok(Some(bytes)) => self.decoder.feed(&bytes),
                        Ok(None) => {
                            let partial = if self.decoder.buffered() > 0 {
                                " in the middle of a message"
                            } else {
                                ""
                            };
                            return Err(SandboxError::Network {
                                provider: PROVIDER,
                                message: format!(
                                    "the command stream closed{partial} before its end-of-stream \
                                     message (the command may still be running)"
                                ),
                            });
                        }
                        Err(e) => {
                            return Err(SandboxError::Network {
                                provider: PROVIDER,
                                message: format!("the command stream broke: {}", error_chain(&e)),
                            })
                        }
                    }
                }
            }
        }
    }

    pub(super) fn handle(&mut self, env: Envelope) -> Result<()> {
        if env.flags & FLAG_END_STREAM != 0 {
            self.done = true;
            let v: Value = if env.data.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&env.data)
                    .map_err(|e| protocol(format!("the end-of-stream message is not JSON ({e})")))?
            };
            if let Some(err) = v.get("error") {
                let code = err.get("code").and_then(Value::as_str).unwrap_or("unknown");
                let message = err.get("message").and_then(Value::as_str).unwrap_or("");
                let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
                return Err(connect_error(code, message, &self.sandbox_id, &secrets));
            }
            return Ok(());
        }
        if let Some(ev) = parse_event(&env.data).map_err(protocol)? {
            self.queue.push_back(ev);
        }
        Ok(())
    }

    /// Reads until the start event (envd sends it first); `None` if the stream ends before.
    pub(super) async fn pid(&mut self) -> Result<Option<u32>> {
        while let Some(ev) = self.next().await? {
            if let ProcEvent::Start { pid } = ev {
                return Ok(Some(pid));
            }
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------
// Output lines

/// Splits one pipe's bytes into lines (a line may span many events; `\r\n` tolerated) and
/// keeps a bounded copy of everything for `CommandOutput`.
#[derive(Default)]
pub(super) struct Pipe {
    pub(super) line: Vec<u8>,
    pub(super) all: Vec<u8>,
    pub(super) truncated: bool,
}

impl Pipe {
    pub(super) fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&str)) {
        let room = MAX_CAPTURE.saturating_sub(self.all.len());
        self.all.extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.truncated |= bytes.len() > room;
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            self.line.extend_from_slice(&rest[..i]);
            self.flush(&mut emit);
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            self.flush(&mut emit);
        }
    }

    pub(super) fn flush(&mut self, emit: &mut impl FnMut(&str)) {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        emit(&String::from_utf8_lossy(&self.line));
        self.line.clear();
    }

    /// A last line without its newline still counts.
    pub(super) fn finish(&mut self, mut emit: impl FnMut(&str)) -> String {
        if !self.line.is_empty() {
            self.flush(&mut emit);
        }
        let mut s = String::from_utf8_lossy(&self.all).into_owned();
        if self.truncated {
            s.push_str("\n[output truncated]");
        }
        s
    }
}
