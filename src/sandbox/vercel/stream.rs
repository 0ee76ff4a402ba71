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
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
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
