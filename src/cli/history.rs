//! `builder-lsp history --dir DIR` and `builder-lsp revert --dir DIR ID`: the project's
//! checkpoints (the same store the server writes) and taking one back on disk, recorded as a
//! checkpoint itself, through the same engine as `builder.revert`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use builder_lsp::config;
use builder_lsp::conversation::ConversationStore;
use builder_lsp::history::revert::{self, RecordingDisk};
use builder_lsp::history::{self, HistoryError, HistoryStore};

fn project(dir: &Path) -> Result<(PathBuf, HistoryStore), String> {
    if !dir.is_dir() {
        return Err(format!("--dir {}: not a folder", dir.display()));
    }
    let root = std::fs::canonicalize(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let store = HistoryStore::for_project(&ConversationStore::default_dir(), &root);
    Ok((root, store))
}

fn cli_error(e: HistoryError) -> String {
    match e {
        HistoryError::UnknownCheckpoint(_) => format!("ID: {e}"),
        HistoryError::UnknownFile { .. } => format!("--files: {e}"),
        other => format!("{other}; nothing was written"),
    }
}

pub fn list(dir: &Path, limit: Option<usize>, json: bool) -> Result<ExitCode, String> {
    let (_, store) = project(dir)?;
    let entries = history::list(&store, limit).map_err(cli_error)?;
    if json {
        crate::print_json(&entries);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() {
        println!("no checkpoints for {}", dir.display());
    }
    for e in &entries {
        let files: Vec<String> = e
            .files
            .iter()
            .map(|f| {
                let c = match f.change {
                    history::Change::Created => "+",
                    history::Change::Updated => "~",
                    history::Change::Deleted => "-",
                };
                format!("{c}{}", f.path)
            })
            .collect();
        println!(
            "{}  {}  {:<8} {}{}\n    {}",
            e.id,
            e.time,
            e.source,
            e.summary,
            e.model
                .as_deref()
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            files.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn revert(
    dir: &Path,
    id: &str,
    files: Option<Vec<String>>,
    force: bool,
) -> Result<ExitCode, String> {
    let (root, store) = project(dir)?;
    let env = config::environment(Some(&root));
    let (settings, warnings) = config::resolve(&env, None, None);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let d = RecordingDisk::new(
        store.clone(),
        revert::meta(id),
        settings.history.limits(),
        builder_lsp::events::silent(),
    );
    let r = rt
        .block_on(revert::revert(
            &store,
            &root,
            id,
            files.as_deref(),
            force,
            &d,
            &|| d.checkpoint_id(),
        ))
        .map_err(cli_error)?;
    crate::print_json(&r);
    // Conflicts left alone mean the project is not fully back: a script must notice.
    Ok(
        if r.applied && r.errors.is_empty() && r.conflicts.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        },
    )
}
