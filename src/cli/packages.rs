//! `builder-lsp detect --dir DIR` and `builder-lsp install --dir DIR PKG…`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use builder_lsp::apply::DiskDeliver;
use builder_lsp::conversation::ConversationStore;
use builder_lsp::events::Reporter;
use builder_lsp::install::install_in_project;
use builder_lsp::packages::index::PackageIndex;
use builder_lsp::packages::install::InstallRequest;
use builder_lsp::project::Project;
use tokio_util::sync::CancellationToken;

pub fn detect(dir: &Path) -> Result<ExitCode, String> {
    let root = std::fs::canonicalize(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let missing = PackageIndex::build(&root).missing();
    crate::print_json(&serde_json::json!({
        "imports": missing.imports,
        "packages": missing.packages,
        "typePackages": missing.type_packages,
    }));
    Ok(if missing.packages.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn install(
    dir: &Path,
    packages: Vec<String>,
    dev: bool,
    reporter: Reporter,
) -> Result<ExitCode, String> {
    let root = std::fs::canonicalize(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    for p in &packages {
        builder_lsp::packages::specifier::parse_install_arg(p)
            .map_err(|why| format!("`{p}` {why}"))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let project = Arc::new(Project::new(
        root,
        Arc::new(ConversationStore::new(ConversationStore::default_dir())),
    ));
    let out = rt.block_on(async move {
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            c2.cancel();
        });
        let deliver = DiskDeliver {
            reporter: reporter.clone(),
        };
        install_in_project(
            &project,
            &InstallRequest { packages, dev },
            &deliver,
            &reporter,
            &cancel,
        )
        .await
    });
    crate::print_json(&out);
    Ok(if out.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
