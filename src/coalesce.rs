//! Batches a stream of text pieces for a sink whose per-call cost is high. One JSON-RPC
//! notification through tower-lsp-server costs ~0.1 ms of CPU, so one per model token made a fast
//! generation 25× slower; a person reading raw model text cannot tell 60 updates a second from
//! 2,000. The first piece (and the first after a pause) goes at once, later ones at most once per
//! frame or when the batch reaches its byte cap, and whatever is left is flushed at the end.

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

/// When a batch is sent.
#[derive(Debug, Clone, Copy)]
pub struct Batching {
    /// At most one batch per this interval (unless the byte cap is reached first).
    pub frame: Duration,
    /// A batch this large is sent without waiting for the frame.
    pub max_bytes: usize,
}

impl Batching {
    /// One display frame (~60 per second) or 8 KB, whichever comes first.
    pub const DISPLAY: Batching = Batching {
        frame: Duration::from_millis(16),
        max_bytes: 8 * 1024,
    };
}

/// Forwards everything `rx` yields to `sink` in batches until the sender is dropped; nothing is
/// lost and order is kept. Returns the number of batches sent.
pub async fn forward<F, Fut>(
    mut rx: UnboundedReceiver<String>,
    policy: Batching,
    mut sink: F,
) -> usize
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut buf = String::new();
    let mut last: Option<Instant> = None;
    let mut open = true;
    let mut sent = 0;
    loop {
        if buf.is_empty() {
            if !open {
                break;
            }
            match rx.recv().await {
                Some(t) => buf.push_str(&t),
                None => break,
            }
        }
        // Take what is already queued without waiting.
        while open && buf.len() < policy.max_bytes {
            match rx.try_recv() {
                Ok(t) => buf.push_str(&t),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => open = false,
            }
        }
        let due = last.map(|l| l + policy.frame);
        if !open || buf.len() >= policy.max_bytes || due.is_none_or(|d| Instant::now() >= d) {
            sink(std::mem::take(&mut buf)).await;
            sent += 1;
            last = Some(Instant::now());
            continue;
        }
        // Within the frame: gather until it is due, the cap is reached or the sender is gone.
        let deadline = due.unwrap_or_else(Instant::now);
        while open && buf.len() < policy.max_bytes {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                t = rx.recv() => match t {
                    Some(t) => buf.push_str(&t),
                    None => open = false,
                },
            }
        }
        if !open || buf.len() >= policy.max_bytes || Instant::now() >= deadline {
            sink(std::mem::take(&mut buf)).await;
            sent += 1;
            last = Some(Instant::now());
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::sync::mpsc::unbounded_channel;

    type Log = Arc<Mutex<Vec<(Instant, String)>>>;

    fn sink(log: &Log) -> impl FnMut(String) -> std::future::Ready<()> {
        let log = log.clone();
        move |s| {
            log.lock().unwrap().push((Instant::now(), s));
            std::future::ready(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_becomes_one_batch_after_the_first_piece() {
        let (tx, rx) = unbounded_channel();
        let log: Log = Default::default();
        let t0 = Instant::now();
        let h = tokio::spawn(forward(rx, Batching::DISPLAY, sink(&log)));
        tx.send("a".into()).unwrap();
        tokio::task::yield_now().await;
        for i in 0..1000 {
            tx.send(format!("{i} ")).unwrap();
        }
        drop(tx);
        let n = h.await.unwrap();
        let log = log.lock().unwrap();
        assert_eq!(n, log.len());
        assert_eq!(log[0].1, "a", "the first piece goes alone, at once");
        assert_eq!(log[0].0, t0);
        let all: String = log.iter().map(|(_, s)| s.as_str()).collect();
        let want: String = std::iter::once("a".to_string())
            .chain((0..1000).map(|i| format!("{i} ")))
            .collect();
        assert_eq!(all, want, "nothing lost, order kept");
        assert!(log.len() <= 3, "{} batches", log.len());
    }

    #[tokio::test(start_paused = true)]
    async fn paced_pieces_are_sent_at_most_once_per_frame() {
        let (tx, rx) = unbounded_channel();
        let log: Log = Default::default();
        let h = tokio::spawn(forward(rx, Batching::DISPLAY, sink(&log)));
        let t0 = Instant::now();
        for i in 0..100 {
            tx.send(format!("w{i} ")).unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(tx);
        h.await.unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log[0].0, t0, "first delta immediate");
        // Every batch but the final flush waits out the frame of the one before.
        for w in log[..log.len() - 1].windows(2) {
            assert!(w[1].0 - w[0].0 >= Duration::from_millis(16));
        }
        // 500 ms of pieces in 16 ms frames: ~32 batches, not 100.
        assert!(log.len() <= 36 && log.len() >= 25, "{} batches", log.len());
        let all: String = log.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(all, (0..100).map(|i| format!("w{i} ")).collect::<String>());
        // No piece waits longer than one frame.
        let mut at = 0;
        for (i, (when, s)) in log.iter().enumerate() {
            let pieces = s.split_whitespace().count();
            let first_sent = t0 + Duration::from_millis(5 * at as u64);
            assert!(
                *when - first_sent <= Duration::from_millis(16),
                "batch {i} waited too long"
            );
            at += pieces;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_without_waiting_for_the_frame() {
        let (tx, rx) = unbounded_channel();
        let log: Log = Default::default();
        let policy = Batching {
            frame: Duration::from_secs(10),
            max_bytes: 100,
        };
        let h = tokio::spawn(forward(rx, policy, sink(&log)));
        let t0 = Instant::now();
        tx.send("x".into()).unwrap();
        tokio::task::yield_now().await;
        for _ in 0..30 {
            tx.send("0123456789".into()).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        {
            let log = log.lock().unwrap();
            assert!(log.len() >= 3, "cap reached → sent at once: {}", log.len());
            assert!(log.iter().all(|(t, _)| *t == t0));
        }
        drop(tx);
        h.await.unwrap();
        let total: usize = log.lock().unwrap().iter().map(|(_, s)| s.len()).sum();
        assert_eq!(total, 301);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tail_is_flushed_when_the_sender_goes() {
        let (tx, rx) = unbounded_channel();
        let log: Log = Default::default();
        let h = tokio::spawn(forward(rx, Batching::DISPLAY, sink(&log)));
        tx.send("a".into()).unwrap();
        tokio::task::yield_now().await;
        tx.send("b".into()).unwrap();
        tokio::task::yield_now().await;
        drop(tx);
        h.await.unwrap();
        let log = log.lock().unwrap();
        let all: String = log.iter().map(|(_, s)| s.as_str()).collect();
        assert_eq!(all, "ab");
    }
}
