//! Starting Vite in the sandbox: the preview-error overlay written beside the app, Vite spawned
//! on the reserved port, a startup watcher that tells listening from failing, and one retry on
//! a fresh port when the first one turns out to be taken.

use std::collections::{HashMap, VecDeque};
use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::procs::{release_port, reserve_port, stop_dev, DevServer, Startup};
use super::{LocalSandbox, KILL_GRACE};
use crate::exec::process::{exit_code, pump, strip_ansi};
use crate::sandbox::{preview, LineSink, OutputStream, Result, SandboxError};

/// How long `start_dev_server` waits for Vite to either listen or fail before returning
/// anyway (readiness is then up to `wait_ready`).
const LISTEN_WAIT: Duration = Duration::from_secs(30);

impl LocalSandbox {
    /// [`crate::sandbox::Sandbox::start_dev_server`]: stops a running dev server, writes the
    /// overlay and starts Vite (again on a fresh port if the first is taken).
    pub(super) async fn start_vite(&self, sink: LineSink) -> Result<()> {
        self.check_alive()?;
        let mut dev = self.dev.lock().await;
        if let Some(old) = dev.take() {
            stop_dev(old, KILL_GRACE).await;
        }
        let vite = self.dir.join("node_modules").join(".bin").join("vite");
        if !tokio::fs::try_exists(&vite).await.unwrap_or(false) {
            return Err(SandboxError::Failed(
                "the dev server is not installed (node_modules/.bin/vite is missing); run the \
                 install (npm install) in the sandbox first"
                    .into(),
            ));
        }
        // The preview-error overlay (see `sandbox/preview`); without it the app still runs.
        let overlay = self.dir.join(preview::OVERLAY_PATH);
        let overlay = match overlay.parent().map(std::fs::create_dir_all) {
            Some(Ok(())) => std::fs::write(&overlay, preview::OVERLAY_CONFIG),
            Some(Err(e)) => Err(e),
            None => Ok(()),
        };
        if let Err(e) = &overlay {
            tracing::warn!("the preview-error overlay was not written: {e}");
        }
        for attempt in 0..2 {
            let port = self.port();
            let (server, startup) = self.spawn_vite(port, &sink, overlay.is_ok()).await?;
            match startup {
                Startup::Listening => {
                    *dev = Some(server);
                    return Ok(());
                }
                Startup::Undecided => {
                    tracing::warn!("Vite neither listened nor failed within {LISTEN_WAIT:?}");
                    *dev = Some(server);
                    return Ok(());
                }
                Startup::PortInUse if attempt == 0 => {
                    stop_dev(server, KILL_GRACE).await;
                    let next = reserve_port()?;
                    release_port(port);
                    self.port.store(next, Ordering::SeqCst);
                    tracing::info!("port {port} was taken; retrying the dev server on {next}");
                }
                Startup::PortInUse => {
                    stop_dev(server, KILL_GRACE).await;
                    return Err(SandboxError::Failed(format!(
                        "the dev server could not get a port: {port} is in use too"
                    )));
                }
                Startup::Exited(why) => {
                    stop_dev(server, KILL_GRACE).await;
                    return Err(SandboxError::Failed(why));
                }
            }
        }
        Err(SandboxError::Failed(
            "the dev server could not be started".into(),
        ))
    }

    /// Starts Vite on `port` and waits until it listens, fails, or [`LISTEN_WAIT`] passes.
    async fn spawn_vite(
        &self,
        port: u16,
        sink: &LineSink,
        overlay: bool,
    ) -> Result<(DevServer, Startup)> {
        let vite = self.dir.join("node_modules").join(".bin").join("vite");
        let program = vite.to_string_lossy().into_owned();
        let mut args: Vec<String> = [
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--strictPort",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut env = HashMap::new();
        if overlay {
            args.extend(preview::config_args());
            if let Some(base) = &self.preview_base {
                env.insert(
                    preview::BASE_ENV.to_string(),
                    preview::base_for_port(base, port),
                );
            }
        }
        let mut cmd = self.command(&program, &args, &env);
        let (mut child, guard) = self.spawn(&mut cmd, "vite")?;
        // Lines also go to the startup watcher until it has decided (then the channel closes).
        let (tx, mut rx) = mpsc::channel::<String>(512);
        let mut pumps = Vec::new();
        let out = child.stdout.take();
        let err = child.stderr.take();
        for (stream, reader) in [
            (
                OutputStream::Stdout,
                out.map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
            (
                OutputStream::Stderr,
                err.map(|r| Box::new(r) as Box<dyn AsyncRead + Send + Unpin>),
            ),
        ] {
            let sink = sink.clone();
            let tx = tx.clone();
            pumps.push(tokio::spawn(pump(reader, move |line| {
                let line = strip_ansi(line);
                sink(stream, &line);
                if !tx.is_closed() {
                    let _ = tx.try_send(line);
                }
            })));
        }
        drop(tx);

        let mut tail: VecDeque<String> = VecDeque::new();
        let mut in_use = false;
        let mut note = |line: String, tail: &mut VecDeque<String>| {
            if line.contains("is already in use") {
                in_use = true;
            }
            // "VITE v8.3.8  ready in 227 ms" (not "already in use"), then "➜  Local: http://…".
            let listening = (line.contains("VITE") && line.contains(" ready in "))
                || line
                    .trim_start()
                    .trim_start_matches('➜')
                    .trim_start()
                    .starts_with("Local:");
            if tail.len() == 12 {
                tail.pop_front();
            }
            tail.push_back(line);
            listening
        };
        let deadline = tokio::time::sleep(LISTEN_WAIT);
        tokio::pin!(deadline);
        let startup = loop {
            tokio::select! {
                line = rx.recv() => match line {
                    Some(line) => {
                        if note(line, &mut tail) {
                            break Startup::Listening;
                        }
                    }
                    // Both pipes closed: Vite is exiting.
                    None => {
                        let status = tokio::time::timeout(KILL_GRACE, child.wait()).await;
                        break exited(status.ok().and_then(|s| s.ok()), &tail);
                    }
                },
                status = child.wait() => {
                    // Take the lines still in flight (the error comes just before the exit).
                    while let Ok(Some(line)) =
                        tokio::time::timeout(Duration::from_millis(300), rx.recv()).await
                    {
                        note(line, &mut tail);
                    }
                    break exited(status.ok(), &tail);
                }
                _ = &mut deadline => break Startup::Undecided,
            }
        };
        let startup = match startup {
            Startup::Exited(_) if in_use => Startup::PortInUse,
            s => s,
        };
        Ok((
            DevServer {
                child,
                guard,
                pumps,
            },
            startup,
        ))
    }
}

fn exited(status: Option<ExitStatus>, tail: &VecDeque<String>) -> Startup {
    let code = status
        .map(|s| exit_code(s).to_string())
        .unwrap_or_else(|| "?".into());
    let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
    Startup::Exited(format!(
        "the dev server exited while starting (exit {code}):\n{}",
        lines.join("\n")
    ))
}
