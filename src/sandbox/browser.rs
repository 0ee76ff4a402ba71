//! The headless check: loads the preview in a headless Chromium found on PATH (never
//! downloaded), so the app's modules are requested (compile errors) and run (runtime errors,
//! which the preview plugin reports on the dev server's output). Optionally a screenshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::exec::{process, CommandSpec};

/// Names a Chromium goes by on Linux distributions and macOS installs.
const NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
];

/// The longest a page load may take before the browser is stopped.
pub const LOAD_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "no headless Chromium found (looked for {} on PATH, and $BUILDER_CHROMIUM); install one, e.g. Debian's `chromium` package — nothing is downloaded",
        NAMES.join(", ")
    )]
    NotFound,
    #[error("Chromium did not finish loading {url} within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("cannot run Chromium ({program}): {error}")]
    Spawn { program: String, error: String },
}

/// `$BUILDER_CHROMIUM`, else the first known name on `PATH`.
pub fn find() -> Result<PathBuf, BrowserError> {
    if let Some(p) = std::env::var_os("BUILDER_CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BrowserError::NotFound)
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for n in NAMES {
            let c = dir.join(n);
            if is_executable(&c) {
                return Ok(c);
            }
        }
    }
    Err(BrowserError::NotFound)
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What a load did.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub browser: PathBuf,
    pub screenshot: Option<PathBuf>,
    pub elapsed: Duration,
}

/// The command line: headless, no GPU, a throwaway profile, and a virtual-time budget so
/// timers after `load` (the page's settle marker) run without waiting in real time.
pub fn command_line(
    browser: &Path,
    url: &str,
    profile: &Path,
    screenshot: Option<&Path>,
) -> CommandSpec {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-extensions".into(),
        "--mute-audio".into(),
        format!("--user-data-dir={}", profile.display()),
        "--virtual-time-budget=5000".into(),
    ];
    match screenshot {
        Some(p) => {
            args.push("--window-size=1280,800".into());
            args.push(format!("--screenshot={}", p.display()));
        }
        None => args.push("--dump-dom".into()),
    }
    args.push(url.to_string());
    CommandSpec::new(browser.to_string_lossy(), args)
}

/// Loads `url` once and waits for the browser to exit (its process group is killed on
/// timeout or when the future is dropped).
pub async fn load(
    url: &str,
    screenshot: Option<&Path>,
    limit: Duration,
) -> Result<Loaded, BrowserError> {
    let browser = find()?;
    let profile = tempfile::tempdir().map_err(|e| BrowserError::Spawn {
        program: browser.display().to_string(),
        error: e.to_string(),
    })?;
    let spec = command_line(&browser, url, profile.path(), screenshot);
    let mut cmd = process::command(&spec, profile.path());
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let t = std::time::Instant::now();
    let mut child = cmd.spawn().map_err(|e| BrowserError::Spawn {
        program: browser.display().to_string(),
        error: e.to_string(),
    })?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    // Chromium leaves helper processes behind its main one: the group goes in every case.
    struct Group(i32);
    impl Drop for Group {
        fn drop(&mut self) {
            process::signal_group(self.0, libc::SIGKILL);
        }
    }
    let _group = Group(pgid);
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(BrowserError::Spawn {
                program: browser.display().to_string(),
                error: e.to_string(),
            })
        }
        Err(_) => {
            return Err(BrowserError::Timeout {
                url: url.to_string(),
                secs: limit.as_secs(),
            })
        }
    }
    Ok(Loaded {
        browser,
        screenshot: screenshot.filter(|p| p.is_file()).map(Path::to_path_buf),
        elapsed: t.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_headless_with_a_private_profile() {
        let c = command_line(
            Path::new("/usr/bin/chromium"),
            "http://127.0.0.1:5173/?__builder_check=a",
            Path::new("/tmp/p"),
            None,
        );
        assert!(c.args.contains(&"--headless".to_string()));
        assert!(c.args.contains(&"--user-data-dir=/tmp/p".to_string()));
        assert!(c.args.contains(&"--dump-dom".to_string()));
        assert_eq!(
            c.args.last().map(String::as_str),
            Some("http://127.0.0.1:5173/?__builder_check=a")
        );
        let s = command_line(
            Path::new("/usr/bin/chromium"),
            "http://x/",
            Path::new("/tmp/p"),
            Some(Path::new("/tmp/s.png")),
        );
        assert!(s.args.contains(&"--screenshot=/tmp/s.png".to_string()));
        assert!(!s.args.contains(&"--dump-dom".to_string()));
    }
}
