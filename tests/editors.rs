//! The shipped editor integrations against the real binary: the Neovim plugin in headless
//! Neovim (editors/neovim, driven by tests/nvim/*.lua with fake models inside Neovim),
//! and the Helix languages.toml. Needs `nvim` ≥ 0.10 (BUILDER_NVIM or PATH) and python3;
//! BUILDER_SKIP_NVIM=1 skips the Neovim part deliberately.

use std::path::Path;
use std::process::Command;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs one script of tests/nvim in headless Neovim through plugin_test.sh; panics with its output.
fn run_nvim_script(script: &str) {
    run_nvim_script_within(script, 90);
}

fn run_nvim_script_within(script: &str, timeout_s: u32) {
    if std::env::var_os("BUILDER_SKIP_NVIM").is_some() {
        eprintln!("SKIPPED: BUILDER_SKIP_NVIM is set");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo().join("tests/nvim/plugin_test.sh"))
        .arg(repo().join("tests/nvim").join(script))
        .env("BUILDER_LSP", env!("CARGO_BIN_EXE_builder-lsp"))
        .env("BUILDER_STATE_DIR", state.path())
        .env("BUILDER_TEST_TIMEOUT_S", timeout_s.to_string())
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
        "the Neovim test {script} failed:\n{text}"
    );
}

#[test]
fn neovim_plugin_generates_applies_and_reports_the_sandbox() {
    run_nvim_script("plugin.lua");
}

/// Neovim 0.11: the `✦ builder` item from <C-x><C-o> inserts the whole multi-line completion
/// (from a fake OpenAI-compatible `/v1/completions`), and `:wall` writes exactly it.
#[test]
fn neovim_plugin_completes_from_the_menu_and_saves_the_whole_completion() {
    run_nvim_script("completion.lua");
}

/// :BuilderApply → :wall → :BuilderHistory (and its diff) → :BuilderRevert → :wall: bytes as
/// before, created files gone; reverting the revert brings the answer back.
#[test]
fn neovim_plugin_history_reverts_to_identical_bytes() {
    run_nvim_script("history.lua");
}

/// With `review = "on"`: :BuilderApply holds the set (nothing written) → :BuilderReview show
/// opens the read-only diff → accept one file → :wall: only it changed, the created file never
/// appears → a second apply, discard: every byte as it was.
#[test]
fn neovim_plugin_review_holds_shows_accepts_one_file_and_discards() {
    run_nvim_script("review.lua");
}

/// `save_after_apply` (the default): :BuilderApply (open, closed, no-final-newline and created
/// files) and :BuilderRevert are on disk byte for byte with no :wall, a modified buffer the edit
/// did not touch stays unsaved, a 'readonly' one is reported once; `save_after_apply = false`
/// leaves them unsaved until :wall, which then writes exactly the server's bytes.
#[test]
fn neovim_plugin_saves_builders_edits_as_they_land() {
    run_nvim_script("save.lua");
}

/// `save_after_apply = false`, yet :BuilderSandbox create local writes the template's files to
/// disk at once, byte for byte (a real sandbox: real npm and Vite; skipped, and passing, when
/// the npm registry cannot be reached).
#[test]
fn neovim_plugin_always_saves_the_sandbox_template() {
    let registry = Command::new("npm")
        .args(["view", "vite", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !registry {
        eprintln!("SKIPPED: no npm registry (`npm view vite version` failed)");
        return;
    }
    run_nvim_script_within("template.lua", 180);
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
