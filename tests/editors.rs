//! The shipped editor integrations against the real binary: the Neovim plugin in headless
//! Neovim (editors/neovim, driven by tests/nvim/plugin.lua with a fake model inside Neovim),
//! and the Helix languages.toml. Needs `nvim` ≥ 0.10 (BUILDER_NVIM or PATH) and python3;
//! BUILDER_SKIP_NVIM=1 skips the Neovim part deliberately.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn neovim_plugin_generates_applies_and_reports_the_sandbox() {
    if std::env::var_os("BUILDER_SKIP_NVIM").is_some() {
        eprintln!("SKIPPED: BUILDER_SKIP_NVIM is set");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("tests/nvim/plugin_test.sh"))
        .env("BUILDER_LSP", env!("CARGO_BIN_EXE_builder-lsp"))
        .env("BUILDER_STATE_DIR", state.path())
        .env_remove("BUILDER_TEST_ALLOW_NO_SANDBOX")
        .output()
        .expect("run plugin_test.sh");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the Neovim plugin test failed:\n{text}"
    );
}

#[test]
fn helix_languages_toml_names_the_server_and_languages() {
    let out = Command::new("python3")
        .arg(repo().join("editors/helix/check_languages.py"))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
