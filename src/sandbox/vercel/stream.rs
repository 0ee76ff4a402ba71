//! Vercel's framing (NDJSON records, output lines) and file transfer (tarball uploads).

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Framing: NDJSON records and output lines.

/// Splits a byte stream into NDJSON records. Bytes arrive cut anywhere, so only complete lines
/// are handed out; `\r\n` endings and blank lines are tolerated, and [`finish`] hands out a
/// last record that has no line break.
///
/// [`finish`]: NdjsonSplitter::finish
#[derive(Debug, Default)]
pub struct NdjsonSplitter {
    pub(super) buf: Vec<u8>,
}

impl NdjsonSplitter {
    /// Appends `bytes`; complete records (without their line break) go to `out`.
    pub fn push(
        &mut self,
        bytes: &[u8],
        out: &mut VecDeque<Vec<u8>>,
    ) -> std::result::Result<(), String> {
        // Bytes already buffered hold no line break, so only the new ones are scanned.
        let mut from = self.buf.len();
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(off) = self.buf[from..].iter().position(|&b| b == b'\n') {
            let end = from + off;
            push_record(&self.buf[start..end], out);
            start = end + 1;
            from = start;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_RECORD {
            return Err(format!("an NDJSON record exceeded {MAX_RECORD} bytes"));
        }
        Ok(())
    }

    /// At EOF: the last record, if it came without a line break.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let mut out = VecDeque::new();
        push_record(&std::mem::take(&mut self.buf), &mut out);
        out.pop_front()
    }
}

pub(super) fn push_record(line: &[u8], out: &mut VecDeque<Vec<u8>>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        out.push_back(line.to_vec());
    }
}

/// An NDJSON response read record by record.
pub(super) struct NdjsonStream {
    pub(super) resp: reqwest::Response,
    pub(super) split: NdjsonSplitter,
    pub(super) ready: VecDeque<Vec<u8>>,
    pub(super) eof: bool,
    pub(super) what: &'static str,
}

impl NdjsonStream {
    /// Refuses any other content type, as the SDK does: a JSON error page is not a stream.
    pub(super) fn new(resp: reqwest::Response, what: &'static str) -> Result<NdjsonStream> {
        let ct = crate::http::content_type(&resp);
        if !ct.starts_with("application/x-ndjson") {
            return Err(protocol(format!(
                "the {what} stream came as `{ct}`, not application/x-ndjson"
            )));
        }
        Ok(NdjsonStream {
            resp,
            split: NdjsonSplitter::default(),
            ready: VecDeque::new(),
            eof: false,
            what,
        })
    }

    /// The next record; `None` at a clean end of the stream.
    pub(super) async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    protocol(format!(
                        "a record of the {} stream is not JSON ({e}); the stream was cut?",
                        self.what
                    ))
                });
            }
            if self.eof {
                return Ok(None);
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.split.push(&bytes, &mut self.ready).map_err(protocol)?,
                Ok(None) => {
                    self.eof = true;
                    self.ready.extend(self.split.finish());
                }
                Err(e) => {
                    return Err(protocol(format!(
                        "the {} stream broke off ({})",
                        self.what,
                        e.without_url()
                    )))
                }
            }
        }
    }
}

/// Assembles output lines from pieces of text: a line may span several `data` values.
#[derive(Debug, Default)]
pub struct LineBuffer {
    pub(super) partial: String,
}

impl LineBuffer {
    /// Appends `data`; each complete line (without `\n` / `\r\n`) goes to `emit`.
    pub fn push(&mut self, data: &str, emit: &mut dyn FnMut(&str)) {
        let mut rest = data;
        while let Some(i) = rest.find('\n') {
            self.partial.push_str(&rest[..i]);
            emit(self.partial.strip_suffix('\r').unwrap_or(&self.partial));
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.partial.push_str(rest);
        // Progress bars redraw with `\r` and never end a line; do not buffer them forever.
        if self.partial.len() > MAX_OUTPUT_LINE {
            self.finish(emit);
        }
    }

    /// At the end: the last line, if it had no line break.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            emit(self.partial.strip_suffix('\r').unwrap_or(&self.partial));
            self.partial.clear();
        }
    }
}

/// One command's output: lines go to the sink as they complete; the text is kept whole for
/// `run`, only as a tail for the dev server (which runs for hours).
pub(super) struct Collected {
    pub(super) keep_all: bool,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) out_lines: LineBuffer,
    pub(super) err_lines: LineBuffer,
    pub(super) tail: VecDeque<String>,
}

impl Collected {
    pub(super) fn new(keep_all: bool) -> Collected {
        Collected {
            keep_all,
            stdout: String::new(),
            stderr: String::new(),
            out_lines: LineBuffer::default(),
            err_lines: LineBuffer::default(),
            tail: VecDeque::new(),
        }
    }

    pub(super) fn push(&mut self, which: OutputStream, data: &str, sink: &LineSink) {
        let (text, lines) = match which {
            OutputStream::Stdout => (&mut self.stdout, &mut self.out_lines),
            OutputStream::Stderr => (&mut self.stderr, &mut self.err_lines),
        };
        if self.keep_all {
            text.push_str(data);
        }
        let tail = &mut self.tail;
        lines.push(data, &mut |line| {
            sink(which, line);
            remember(tail, line);
        });
    }

    pub(super) fn finish(&mut self, sink: &LineSink) {
        let tail = &mut self.tail;
        self.out_lines.finish(&mut |line| {
            sink(OutputStream::Stdout, line);
            remember(tail, line);
        });
        self.err_lines.finish(&mut |line| {
            sink(OutputStream::Stderr, line);
            remember(tail, line);
        });
    }

    pub(super) fn tail_text(&self) -> String {
        if self.tail.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = self.tail.iter().map(String::as_str).collect();
        format!("; last output:\n{}", lines.join("\n"))
    }
}

pub(super) fn remember(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

// ---------------------------------------------------------------------------------------------
// Files.

/// A project-relative path as the tarball and `fs/read` carry it: `/`-separated, no `.`
/// segments; absolute paths, `..` and NUL are refused.
pub(super) fn clean_path(path: &str) -> Result<String> {
    let refuse = |why: &str| {
        SandboxError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing sandbox path {path:?}: {why}"),
        ))
    };
    if path.starts_with('/') {
        return Err(refuse("it is absolute"));
    }
    if path.contains('\0') {
        return Err(refuse("it contains NUL"));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(refuse("it leaves the project dir"));
    }
    if parts.is_empty() {
        return Err(refuse("it is empty"));
    }
    Ok(parts.join("/"))
}

/// A gzip'd tar of `files` (paths already cleaned), as `fs/write` takes it: explicit directory
/// entries (0755) for every parent, parents first, then the files (0644) stamped `mtime`.
pub fn build_tarball(files: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let dirs: BTreeSet<&str> = files
        .iter()
        .flat_map(|(path, _)| {
            path.match_indices('/')
                .map(move |(i, _)| &path[..i])
                .collect::<Vec<_>>()
        })
        .collect();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    // BTreeSet order puts `src` before `src/components`, so parents precede children.
    for dir in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(mtime);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    }
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(mtime);
        tar.append_data(&mut h, path, bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        for c in chunks {
            s.push(c, &mut out).unwrap();
        }
        out.extend(s.finish());
        out.into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn ndjson_records_split_anywhere() {
        let text = "{\"a\":1}\n{\"b\":\"é\"}\r\n\n{\"c\":3}";
        let whole = split_all(&[text.as_bytes()]);
        assert_eq!(whole, ["{\"a\":1}", "{\"b\":\"é\"}", "{\"c\":3}"]);
        // Every split point, including inside the two-byte `é` and between `\r` and `\n`.
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for j in i..bytes.len() {
                let got = split_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, whole, "split at {i}/{j}");
            }
        }
        // Byte by byte.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split_all(&singles), whole);
    }

    #[test]
    fn ndjson_holds_incomplete_record_until_finish() {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        s.push(b"{\"stream\":\"stdout\",\"da", &mut out).unwrap();
        assert!(out.is_empty());
        s.push(b"ta\":\"x\"}\n{\"tail\":", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(s.finish().unwrap(), b"{\"tail\":");
        assert!(s.finish().is_none());
    }

    #[test]
    fn ndjson_refuses_endless_record() {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        let big = vec![b'x'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..17 {
            if s.push(&big, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn lines_span_data_values() {
        let mut lb = LineBuffer::default();
        let mut got = Vec::new();
        for piece in [
            "added 3 pack",
            "ages\r\nfound ",
            "0 vulner",
            "abilities\n\nlast",
        ] {
            lb.push(piece, &mut |l| got.push(l.to_string()));
        }
        assert_eq!(got, ["added 3 packages", "found 0 vulnerabilities", ""]);
        lb.finish(&mut |l| got.push(l.to_string()));
        assert_eq!(got.last().unwrap(), "last");
        let n = got.len();
        lb.finish(&mut |l| got.push(l.to_string()));
        assert_eq!(got.len(), n, "finish twice emits once");
    }

    #[test]
    fn overlong_partial_line_is_flushed() {
        let mut lb = LineBuffer::default();
        let mut got = Vec::new();
        lb.push(&"#".repeat(MAX_OUTPUT_LINE + 1), &mut |l| got.push(l.len()));
        assert_eq!(got, [MAX_OUTPUT_LINE + 1]);
    }

    #[test]
    fn collected_keeps_streams_apart() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink: LineSink =
            std::sync::Arc::new(move |w, l: &str| s2.lock().unwrap().push((w, l.to_string())));
        let mut c = Collected::new(true);
        c.push(OutputStream::Stdout, "a", &sink);
        c.push(OutputStream::Stderr, "warn\n", &sink);
        c.push(OutputStream::Stdout, "b\n", &sink);
        c.push(OutputStream::Stderr, "tail", &sink);
        c.finish(&sink);
        assert_eq!(c.stdout, "ab\n");
        assert_eq!(c.stderr, "warn\ntail");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (OutputStream::Stderr, "warn".to_string()),
                (OutputStream::Stdout, "ab".to_string()),
                (OutputStream::Stderr, "tail".to_string()),
            ]
        );
        assert!(c.tail_text().ends_with("warn\nab\ntail"));
    }

    #[test]
    fn tarball_round_trips() {
        let files = vec![
            ("package.json".to_string(), b"{}".to_vec()),
            ("src/components/Hero.jsx".to_string(), b"export {}".to_vec()),
            ("src/App.jsx".to_string(), Vec::new()),
            (
                format!("{}/deep.txt", "d".repeat(120)),
                b"long name".to_vec(),
            ),
        ];
        let gz = build_tarball(&files, 1_700_000_000).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        let mut dirs = Vec::new();
        let mut got = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            match h.entry_type() {
                tar::EntryType::Directory => {
                    assert_eq!(h.mode().unwrap(), 0o755);
                    assert!(got.is_empty(), "directories come first");
                    dirs.push(path.trim_end_matches('/').to_string());
                }
                tar::EntryType::Regular => {
                    assert_eq!(h.mode().unwrap(), 0o644);
                    let size = h.size().unwrap();
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes).unwrap();
                    assert_eq!(size, bytes.len() as u64);
                    got.push((path, bytes));
                }
                other => panic!("unexpected entry {other:?}"),
            }
        }
        assert_eq!(
            dirs,
            ["d".repeat(120), "src".into(), "src/components".into()]
        );
        assert_eq!(got, files);
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("./src//App.jsx").unwrap(), "src/App.jsx");
        assert_eq!(clean_path("a/./b").unwrap(), "a/b");
        for bad in ["/etc/passwd", "../x", "a/../../b", "", ".", "a\0b"] {
            assert!(
                matches!(clean_path(bad), Err(SandboxError::Io(_))),
                "{bad:?}"
            );
        }
    }
}
