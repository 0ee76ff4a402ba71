//! Incremental Server-Sent Events parser (PROTOCOLS.md §0). Bytes may be split anywhere, even
//! inside a UTF-8 character or between `\r` and `\n`, so raw bytes are buffered and only complete
//! lines are decoded. Written by hand rather than via `eventsource-stream` so EOF handling and
//! limits are ours.

/// One dispatched event. `event` is `None` for the default `message` type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// A line longer than this is refused rather than buffered without bound.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds bytes; complete events are appended to `out`. Errs only on an over-long line.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let mut start = 0;
        if self.after_cr {
            self.after_cr = false;
            if bytes.first() == Some(&b'\n') {
                start = 1;
            }
        }
        // Jump from line break to line break (memchr), not byte by byte.
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            let i = start + off;
            self.line.extend_from_slice(&bytes[start..i]);
            self.process_line(out);
            start = i + 1;
            if bytes[i] == b'\r' {
                match bytes.get(start) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(&bytes[start..]);
        if self.line.len() > MAX_LINE {
            return Err(format!("an event line exceeded {MAX_LINE} bytes"));
        }
        Ok(())
    }

    /// At EOF: a last line without its newline, and an event without its blank line, still
    /// count (lenient; whether the stream was complete is the provider's terminal marker's call).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            self.process_line(out);
        }
        self.dispatch(out);
    }

    fn process_line(&mut self, out: &mut Vec<SseEvent>) {
        // Borrow the line (no copy for valid UTF-8), then hand its buffer back for reuse.
        let raw = std::mem::take(&mut self.line);
        self.handle_line(&String::from_utf8_lossy(&raw), out);
        self.line = raw;
        self.line.clear();
    }

    fn handle_line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if self.has_data {
            self.has_data = false;
            out.push(SseEvent {
                event: event.filter(|e| !e.is_empty() && e != "message"),
                data: std::mem::take(&mut self.data),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in input.chunks(piece) {
            p.feed(c, &mut out).unwrap();
        }
        p.finish(&mut out);
        out
    }

    #[test]
    fn all_line_endings_comments_and_multi_data() {
        let input =
            "event: a\ndata: 1\n\n: comment\r\ndata:2\r\ndata: 3\r\n\r\nevent: b\rdata: é✓\r\r";
        for piece in 1..input.len() {
            let ev = parse_in_pieces(input.as_bytes(), piece);
            assert_eq!(
                ev,
                vec![
                    SseEvent {
                        event: Some("a".into()),
                        data: "1".into()
                    },
                    SseEvent {
                        event: None,
                        data: "2\n3".into()
                    },
                    SseEvent {
                        event: Some("b".into()),
                        data: "é✓".into()
                    },
                ],
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_eof_flushes() {
        let ev = parse_in_pieces(b"event: ping\n\ndata: last", 3);
        assert_eq!(
            ev,
            vec![SseEvent {
                event: None,
                data: "last".into()
            }]
        );
    }
}
