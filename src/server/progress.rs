//! Turns core events into `$/progress` begin/report/end on one token, throttled to at most
//! ten reports a second so a fast job never floods the editor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tower_lsp_server::ls_types::notification::Progress as ProgressNotification;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use crate::events::{Event, Reporter};

const MIN_INTERVAL: Duration = Duration::from_millis(100);

enum Msg {
    Event(Event),
    End(String, tokio::sync::oneshot::Sender<()>),
}

/// A live progress stream. Without a token it only collects nothing and costs nothing.
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<Msg>>,
}

impl Progress {
    pub fn none() -> Self {
        Progress { tx: None }
    }

    /// Sends `begin` on `token` and starts the forwarding task.
    pub async fn begin(
        client: &Client,
        token: ProgressToken,
        title: &str,
        cancellable: bool,
    ) -> Self {
        send(
            client,
            &token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_string(),
                cancellable: Some(cancellable),
                message: None,
                percentage: Some(0),
            }),
        )
        .await;
        let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
        let client = client.clone();
        tokio::spawn(async move {
            let mut last_sent: Option<Instant> = None;
            let mut pending: Option<Event> = None;
            loop {
                let wait = match (&pending, last_sent) {
                    (Some(_), Some(t)) => MIN_INTERVAL.saturating_sub(t.elapsed()),
                    _ => Duration::from_secs(3600),
                };
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(Msg::Event(ev)) => {
                            // A warning is never replaced by a later report: what is pending
                            // goes first, then the warning, at once.
                            if matches!(ev, Event::Warning(_)) {
                                if let Some(p) = pending.take() {
                                    report(&client, &token, &p).await;
                                }
                                report(&client, &token, &ev).await;
                                last_sent = Some(Instant::now());
                                continue;
                            }
                            let due = last_sent.is_none_or(|t| t.elapsed() >= MIN_INTERVAL);
                            if due {
                                report(&client, &token, &ev).await;
                                last_sent = Some(Instant::now());
                                pending = None;
                            } else {
                                pending = Some(ev);
                            }
                        }
                        Some(Msg::End(message, done)) => {
                            if let Some(ev) = pending.take() {
                                report(&client, &token, &ev).await;
                            }
                            send(&client, &token, WorkDoneProgress::End(WorkDoneProgressEnd {
                                message: Some(message),
                            })).await;
                            let _ = done.send(());
                            return;
                        }
                        None => return,
                    },
                    _ = tokio::time::sleep(wait), if pending.is_some() => {
                        if let Some(ev) = pending.take() {
                            report(&client, &token, &ev).await;
                            last_sent = Some(Instant::now());
                        }
                    }
                }
            }
        });
        Progress { tx: Some(tx) }
    }

    /// A reporter the core can call from any thread.
    pub fn reporter(&self) -> Reporter {
        match &self.tx {
            Some(tx) => {
                let tx = tx.clone();
                Arc::new(move |ev| {
                    let _ = tx.send(Msg::Event(ev));
                })
            }
            None => crate::events::silent(),
        }
    }

    /// Sends `end` after every queued report, and waits until it is written.
    pub async fn end(self, message: impl Into<String>) {
        if let Some(tx) = self.tx {
            let (done_tx, done_rx) = tokio::sync::oneshot::channel();
            if tx.send(Msg::End(message.into(), done_tx)).is_ok() {
                let _ = done_rx.await;
            }
        }
    }
}

async fn report(client: &Client, token: &ProgressToken, ev: &Event) {
    send(
        client,
        token,
        WorkDoneProgress::Report(WorkDoneProgressReport {
            cancellable: None,
            message: Some(ev.message()),
            percentage: ev.percentage(),
        }),
    )
    .await;
}

async fn send(client: &Client, token: &ProgressToken, value: WorkDoneProgress) {
    client
        .send_notification::<ProgressNotification>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}
