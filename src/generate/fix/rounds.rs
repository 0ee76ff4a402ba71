//! The fix loop, one for every caller (auto-fix after `builder.generate`, `builder-lsp fix`,
//! `generate --serve --fix`): check the running app; while it shows errors, ask for a fix and
//! land it — until clean, the same errors come back, the rounds run out, a round fails, or
//! cancel. The callers only say how to check and how to land a fix ([`FixHost`]).

use std::future::Future;

use tokio_util::sync::CancellationToken;

use super::{key, FixRound, Problem, Stop};
use crate::events::{Event, Reporter};

/// Where the loop runs: the server's project with its sandbox, or the CLI's folder.
pub trait FixHost {
    /// The errors the app shows now, deduplicated; `Err` when the check itself could not run
    /// (the sandbox is gone, the browser failed to load the preview).
    fn check(&self) -> impl Future<Output = Result<Vec<Problem>, String>> + Send;
    /// Asks the model to fix `problems` and lands the answer (and pushes it to the sandbox).
    fn fix(&self, round: u32, problems: &[Problem]) -> impl Future<Output = Attempt> + Send;
}

/// What one fix round did.
#[derive(Debug, Default)]
pub struct Attempt {
    pub files_changed: Vec<String>,
    pub checkpoint: Option<String>,
    pub message: String,
    /// Nothing went wrong: no errors, and every planned file landed (an answer without
    /// files is ok, and a repeat).
    pub ok: bool,
}

/// How a fix loop ended.
#[derive(Debug)]
pub struct Outcome {
    pub rounds: Vec<FixRound>,
    /// Empty when clean.
    pub errors_left: Vec<String>,
    pub stop: Stop,
    /// Why a check could not run; `stop` is `Failed` then.
    pub error: Option<String>,
}

impl Outcome {
    pub fn clean(&self) -> bool {
        self.stop == Stop::Clean
    }
}

/// Runs at most `max` fix rounds on `host` (one check more than rounds: the last check says
/// whether the last fix worked).
pub async fn run(
    host: &impl FixHost,
    max: u32,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Outcome {
    let mut rounds = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    let mut left: Vec<String> = Vec::new();
    let mut error = None;
    let stop = 'rounds: {
        for round in 1..=max + 1 {
            reporter(Event::Status("Checking the app for errors".into()));
            let problems = match host.check().await {
                Ok(p) => p,
                Err(e) => {
                    error = Some(e);
                    break 'rounds Stop::Failed;
                }
            };
            left = problems.iter().map(key).collect();
            if cancel.is_cancelled() {
                break 'rounds Stop::Cancelled;
            }
            if problems.is_empty() {
                break 'rounds Stop::Clean;
            }
            if round > 1 && left.iter().all(|k| seen.contains(k)) {
                break 'rounds Stop::Repeated;
            }
            if round > max {
                break 'rounds Stop::MaxRounds;
            }
            reporter(Event::Status(format!(
                "Fixing {} (round {round} of {max})",
                crate::wording::count(problems.len(), "error")
            )));
            let a = host.fix(round, &problems).await;
            let unchanged = a.files_changed.is_empty();
            rounds.push(FixRound {
                round,
                errors: left.clone(),
                files_changed: a.files_changed,
                checkpoint: a.checkpoint,
                message: a.message,
            });
            seen.extend(left.iter().cloned());
            if !a.ok {
                break 'rounds if cancel.is_cancelled() {
                    Stop::Cancelled
                } else {
                    Stop::Failed
                };
            }
            // An answer that changes no file brings the same errors back: that is a repeat.
            if unchanged {
                break 'rounds Stop::Repeated;
            }
        }
        Stop::MaxRounds
    };
    tracing::info!(
        "fix loop stopped ({}) after {} with {} left",
        stop.as_str(),
        crate::wording::count(rounds.len(), "round"),
        crate::wording::count(left.len(), "error")
    );
    Outcome {
        rounds,
        errors_left: if stop == Stop::Clean {
            Vec::new()
        } else {
            left
        },
        stop,
        error,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A host whose checks return the scripted problem lists in turn and whose fixes change
    /// the files the script says.
    struct Scripted {
        checks: Mutex<Vec<Result<Vec<Problem>, String>>>,
        fixes: Mutex<Vec<Attempt>>,
        asked: Mutex<Vec<(u32, usize)>>,
    }

    impl Scripted {
        fn new(checks: Vec<Result<Vec<Problem>, String>>, fixes: Vec<Attempt>) -> Scripted {
            Scripted {
                checks: Mutex::new(checks.into_iter().rev().collect()),
                fixes: Mutex::new(fixes.into_iter().rev().collect()),
                asked: Mutex::new(Vec::new()),
            }
        }
    }

    impl FixHost for Scripted {
        async fn check(&self) -> Result<Vec<Problem>, String> {
            self.checks
                .lock()
                .unwrap()
                .pop()
                .expect("checked more often than scripted")
        }
        async fn fix(&self, round: u32, problems: &[Problem]) -> Attempt {
            self.asked.lock().unwrap().push((round, problems.len()));
            self.fixes
                .lock()
                .unwrap()
                .pop()
                .expect("fixed more often than scripted")
        }
    }

    fn err(msg: &str) -> Problem {
        Problem {
            path: Some("src/App.jsx".into()),
            line: Some(3),
            column: None,
            message: msg.into(),
            source: Some("vite".into()),
            stack: None,
        }
    }

    fn changed(files: &[&str]) -> Attempt {
        Attempt {
            files_changed: files.iter().map(|f| f.to_string()).collect(),
            checkpoint: Some("c1".into()),
            message: "fixed".into(),
            ok: true,
        }
    }

    async fn run_script(s: &Scripted, max: u32) -> Outcome {
        run(s, max, &crate::events::silent(), &CancellationToken::new()).await
    }

    #[tokio::test]
    async fn clean_after_one_fix() {
        let s = Scripted::new(
            vec![Ok(vec![err("boom")]), Ok(vec![])],
            vec![changed(&["src/App.jsx"])],
        );
        let o = run_script(&s, 2).await;
        assert_eq!(o.stop, Stop::Clean);
        assert!(o.errors_left.is_empty());
        assert_eq!(o.rounds.len(), 1);
        assert_eq!(o.rounds[0].errors, vec!["src/App.jsx:3: boom"]);
        assert_eq!(o.rounds[0].checkpoint.as_deref(), Some("c1"));
        assert_eq!(*s.asked.lock().unwrap(), vec![(1, 1)]);
    }

    #[tokio::test]
    async fn the_same_errors_again_stop_as_repeated() {
        let s = Scripted::new(
            vec![Ok(vec![err("boom")]), Ok(vec![err("boom")])],
            vec![changed(&["src/App.jsx"])],
        );
        let o = run_script(&s, 3).await;
        assert_eq!(o.stop, Stop::Repeated);
        assert_eq!(o.errors_left, vec!["src/App.jsx:3: boom"]);
        assert_eq!(o.rounds.len(), 1);
    }

    #[tokio::test]
    async fn an_answer_that_changes_nothing_is_a_repeat() {
        let s = Scripted::new(vec![Ok(vec![err("boom")])], vec![changed(&[])]);
        let o = run_script(&s, 3).await;
        assert_eq!(o.stop, Stop::Repeated);
        assert_eq!(o.rounds.len(), 1);
    }

    #[tokio::test]
    async fn new_errors_each_round_run_out_of_rounds() {
        let s = Scripted::new(
            vec![Ok(vec![err("a")]), Ok(vec![err("b")]), Ok(vec![err("c")])],
            vec![changed(&["src/App.jsx"]), changed(&["src/App.jsx"])],
        );
        let o = run_script(&s, 2).await;
        assert_eq!(o.stop, Stop::MaxRounds);
        assert_eq!(o.rounds.len(), 2);
        assert_eq!(o.errors_left, vec!["src/App.jsx:3: c"]);
    }

    #[tokio::test]
    async fn a_failed_round_or_check_stops_as_failed() {
        let mut bad = changed(&["src/App.jsx"]);
        bad.ok = false;
        let s = Scripted::new(vec![Ok(vec![err("a")])], vec![bad]);
        assert_eq!(run_script(&s, 2).await.stop, Stop::Failed);

        let s = Scripted::new(vec![Err("no browser".into())], vec![]);
        let o = run_script(&s, 2).await;
        assert_eq!(o.stop, Stop::Failed);
        assert_eq!(o.error.as_deref(), Some("no browser"));
        assert!(o.rounds.is_empty());
    }

    #[tokio::test]
    async fn cancel_stops_before_the_next_fix() {
        let s = Scripted::new(vec![Ok(vec![err("a")])], vec![]);
        let cancel = CancellationToken::new();
        cancel.cancel();
        let o = run(&s, 2, &crate::events::silent(), &cancel).await;
        assert_eq!(o.stop, Stop::Cancelled);
        assert!(s.asked.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn zero_rounds_only_checks() {
        let s = Scripted::new(vec![Ok(vec![err("a")])], vec![]);
        let o = run_script(&s, 0).await;
        assert_eq!(o.stop, Stop::MaxRounds);
        assert_eq!(o.errors_left.len(), 1);
    }
}
