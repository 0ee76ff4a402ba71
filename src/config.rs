//! Settings, merged in a fixed order: environment (then the project's `.env` for variables the
//! environment lacks), `initializationOptions`, then `workspace/configuration` section `builder`.
//! Later layers win key by key. Invalid values are reported, never fatal.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Default cap on a model answer given to `builder.apply`; larger answers are refused up front
/// so memory stays bounded.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Default model id, `provider/model`.
    pub model: Option<String>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// Largest answer `builder.apply` accepts, in bytes.
    pub max_response_bytes: u64,
    /// Let answers overwrite protected files (package.json, configs, .env).
    pub allow_protected: bool,
    /// Send `builder/generationDelta` notifications (clients that display raw model text).
    pub stream_deltas: bool,
    pub zip: ZipSettings,
    /// Per-provider base URLs (`anthropic`, `openai`, `google`, `groq`, `openrouter`, `ollama`,
    /// `compatible`), overriding the `*_BASE_URL` variables.
    pub base_urls: HashMap<String, String>,
    /// Per-provider API keys (the editor plugins pass these from their secret stores).
    pub api_keys: ApiKeys,
    /// Token budget for project files sent as context in edit mode.
    pub context_tokens: usize,
    /// Ask the model once to finish a file its answer cut off.
    pub continue_truncated: bool,
    pub sandbox: SandboxSettings,
    /// Missing-package diagnostics on open JS/TS files.
    pub diagnostics: bool,
    /// Quiet time after the last keystroke before diagnostics are recomputed.
    pub diagnostics_debounce_ms: u64,
    /// `builder.apply` and `builder.generate` install the packages an answer needs.
    pub install_packages: bool,
    /// Inline completions (ghost text) and the `textDocument/completion` fallback.
    pub completion: CompletionSettings,
    /// Checkpoints before every change set (`builder.history`, `builder.revert`).
    pub history: HistorySettings,
    /// `on`: `builder.apply` and `builder.generate` show their changes for review before
    /// anything lands (the editor's preview, or a pending set to accept or discard).
    pub review: ReviewMode,
    /// After a generation lands in a project whose sandbox runs: fix the errors the app then
    /// shows (compile, and runtime through a headless check), a few rounds at most.
    pub auto_fix: AutoFixSettings,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AutoFixMode {
    #[default]
    Off,
    On,
}

/// `autoFix`: `"on"` / `"off"`, or `{mode, maxRounds}` (so `autoFix.maxRounds` can be set
/// next to it in clients that flatten settings).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AutoFixSettings {
    pub mode: AutoFixMode,
    /// Fix rounds after one generation.
    pub max_rounds: u32,
}

impl Default for AutoFixSettings {
    fn default() -> Self {
        AutoFixSettings {
            mode: AutoFixMode::Off,
            max_rounds: 2,
        }
    }
}

impl<'de> Deserialize<'de> for AutoFixSettings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Full {
            #[serde(default)]
            mode: AutoFixMode,
            #[serde(default = "two")]
            max_rounds: u32,
        }
        fn two() -> u32 {
            2
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Mode(AutoFixMode),
            Full(Full),
        }
        match Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "expected \"on\", \"off\" or {\"mode\": \"on\"|\"off\", \"maxRounds\": N}",
            )
        })? {
            Form::Mode(mode) => Ok(AutoFixSettings {
                mode,
                ..Default::default()
            }),
            Form::Full(f) => Ok(AutoFixSettings {
                mode: f.mode,
                max_rounds: f.max_rounds.min(10),
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReviewMode {
    #[default]
    Off,
    On,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct CompletionSettings {
    pub enabled: bool,
    /// `provider/model` for completions, separate from the generation model: `llamacpp/…`,
    /// `ollama/…`, `compatible/…`, `mistral/…`, `deepseek/…` (fill-in-the-middle) or any chat
    /// provider. Unset: no completions.
    pub model: Option<String>,
    /// Quiet time before the request goes out (a newer keystroke supersedes it).
    pub debounce_ms: u64,
    pub max_tokens: u32,
    /// Lines of the file before the cursor sent as context (half as many after it).
    pub context_lines: usize,
    /// Token budget for everything sent (window, imports, related open files).
    pub context_tokens: usize,
    pub temperature: f64,
    /// The completion fallback also answers automatic requests (typing), not only explicit ones.
    pub on_typing: bool,
    /// Label of the fallback's completion item.
    pub label: String,
    /// The fallback answers within this, else with an empty `isIncomplete` list (the request
    /// goes on and fills the cache for the client's next ask).
    pub budget_ms: u64,
    /// Bound on one request to the provider.
    pub timeout_ms: u64,
}

impl Default for CompletionSettings {
    fn default() -> Self {
        CompletionSettings {
            enabled: true,
            model: None,
            debounce_ms: 50,
            max_tokens: 128,
            context_lines: 80,
            context_tokens: 2048,
            temperature: 0.2,
            on_typing: false,
            label: "✦ builder".into(),
            budget_ms: 1500,
            timeout_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct HistorySettings {
    /// Checkpoints kept per project; the oldest are pruned. 0 turns history off.
    pub max_checkpoints: usize,
    /// Bytes of history kept per project; the oldest checkpoints are pruned (whole ones).
    pub max_bytes: u64,
}

impl Default for HistorySettings {
    fn default() -> Self {
        HistorySettings {
            max_checkpoints: 100,
            max_bytes: 200 * 1024 * 1024,
        }
    }
}

impl HistorySettings {
    pub fn limits(&self) -> crate::history::Limits {
        crate::history::Limits {
            max_checkpoints: self.max_checkpoints,
            max_bytes: self.max_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SandboxSettings {
    /// `local` (default), `e2b` or `vercel`.
    pub provider: String,
    /// Local sandboxes: `auto` (bubblewrap when it works), `bwrap`, `none`.
    pub isolation: String,
    /// Open the preview in the browser when a sandbox starts.
    pub open_preview: bool,
    /// Local sandboxes behind a path-prefix proxy: the preview's URL path, `{{port}}` for the
    /// port (e.g. code-server's `/proxy/{{port}}/`). Empty: `/`.
    pub preview_base: String,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            provider: "local".into(),
            isolation: "auto".into(),
            open_preview: true,
            preview_base: String::new(),
        }
    }
}

/// API keys by provider id; `Debug` never shows a value.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct ApiKeys(pub HashMap<String, String>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        write!(f, "ApiKeys({names:?}, values hidden)")
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: None,
            temperature: None,
            max_tokens: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            allow_protected: false,
            stream_deltas: false,
            zip: ZipSettings::default(),
            base_urls: HashMap::new(),
            api_keys: ApiKeys::default(),
            context_tokens: 12_000,
            continue_truncated: true,
            sandbox: SandboxSettings::default(),
            diagnostics: true,
            diagnostics_debounce_ms: 150,
            install_packages: true,
            completion: CompletionSettings::default(),
            history: HistorySettings::default(),
            review: ReviewMode::Off,
            auto_fix: AutoFixSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ZipSettings {
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ZipSettings {
    fn default() -> Self {
        ZipSettings {
            max_files: 5000,
            max_file_bytes: 16 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// The process environment plus the project's `.env` (only for variables not already set:
/// the usual dotenv rule, so a shell export always wins).
pub fn environment(project_root: Option<&Path>) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    if let Some(root) = project_root {
        if let Ok(iter) = dotenvy::from_path_iter(root.join(".env")) {
            for (k, v) in iter.flatten() {
                env.entry(k).or_insert(v);
            }
        }
    }
    env
}

/// The environment layer as a settings object (the seed's variable names).
fn env_layer(env: &HashMap<String, String>, warnings: &mut Vec<String>) -> Value {
    let mut m = Map::new();
    if let Some(v) = env.get("DEFAULT_AI_MODEL").filter(|v| !v.trim().is_empty()) {
        m.insert("model".into(), Value::String(v.trim().to_string()));
    }
    let mut number = |var: &str, key: &str, float: bool| {
        if let Some(raw) = env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            let parsed = if float {
                raw.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            } else {
                raw.parse::<u64>().ok().map(|n| Value::Number(n.into()))
            };
            match parsed {
                Some(v) => {
                    m.insert(key.into(), v);
                }
                None => warnings.push(format!("{var}={raw} is not a valid number; ignored")),
            }
        }
    };
    number("DEFAULT_TEMPERATURE", "temperature", true);
    number("MAX_TOKENS", "maxTokens", false);
    number("BUILDER_MAX_RESPONSE_BYTES", "maxResponseBytes", false);
    if let Some(v) = env
        .get("BUILDER_COMPLETION_MODEL")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
    {
        m.insert("completion".into(), serde_json::json!({"model": v}));
    }
    let mut sandbox = Map::new();
    for (var, key) in [
        ("BUILDER_SANDBOX_PROVIDER", "provider"),
        ("SANDBOX_PROVIDER", "provider"),
        ("BUILDER_SANDBOX_ISOLATION", "isolation"),
    ] {
        if let Some(v) = env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            sandbox.entry(key).or_insert(Value::String(v.to_string()));
        }
    }
    if !sandbox.is_empty() {
        m.insert("sandbox".into(), Value::Object(sandbox));
    }
    Value::Object(m)
}

/// Recursively merges `over` into `base` (objects key by key; anything else replaces).
pub fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) if !v.is_null() => *slot = v.clone(),
        _ => {}
    }
}

/// Builds settings from the three layers. Each layer that fails to parse is reported in the
/// warnings (naming the offending field) and skipped, so one typo never disables the rest.
pub fn resolve(
    env: &HashMap<String, String>,
    init_options: Option<&Value>,
    workspace: Option<&Value>,
) -> (Settings, Vec<String>) {
    let mut warnings = Vec::new();
    let mut merged = serde_json::to_value(Settings::default()).unwrap_or(Value::Null);
    let layers = [
        ("environment", Some(env_layer(env, &mut warnings))),
        ("initializationOptions", init_options.cloned()),
        ("workspace/configuration", workspace.cloned()),
    ];
    for (name, layer) in layers {
        let Some(layer) = layer else { continue };
        if !layer.is_object() {
            if !layer.is_null() {
                warnings.push(format!("{name}: expected an object of builder settings"));
            }
            continue;
        }
        let mut candidate = merged.clone();
        merge(&mut candidate, &layer);
        match serde_path_to_error::deserialize::<_, Settings>(&candidate) {
            Ok(_) => merged = candidate,
            Err(e) => warnings.push(format!(
                "{name}: invalid setting `{}`: {}; that layer was ignored",
                e.path(),
                e.inner()
            )),
        }
    }
    let settings = serde_json::from_value(merged).unwrap_or_default();
    (settings, warnings)
}

/// An environment (or settings map) from pairs, for the tests of the modules that read one.
#[cfg(test)]
pub(crate) fn env_map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::env_map as env;
    use super::*;
    use serde_json::json;

    #[test]
    fn layers_merge_in_order() {
        let e = env(&[
            ("DEFAULT_AI_MODEL", "openai/gpt-4o"),
            ("MAX_TOKENS", "1000"),
        ]);
        let init = json!({"model": "anthropic/claude-sonnet-4-5", "zip": {"maxFiles": 10}});
        let ws = json!({"zip": {"maxFileBytes": 5}});
        let (s, w) = resolve(&e, Some(&init), Some(&ws));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.model.as_deref(), Some("anthropic/claude-sonnet-4-5"));
        assert_eq!(s.max_tokens, Some(1000));
        assert_eq!(s.zip.max_files, 10);
        assert_eq!(s.zip.max_file_bytes, 5);
        assert_eq!(
            s.zip.max_total_bytes,
            ZipSettings::default().max_total_bytes
        );
    }

    #[test]
    fn invalid_layer_is_reported_by_field_and_skipped() {
        let init = json!({"model": "a/b"});
        let ws = json!({"zip": {"maxFiles": "many"}, "model": "c/d"});
        let (s, w) = resolve(&HashMap::new(), Some(&init), Some(&ws));
        assert_eq!(s.model.as_deref(), Some("a/b"));
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("zip.maxFiles"), "{w:?}");
    }

    #[test]
    fn api_keys_never_show_in_debug() {
        let init = json!({"apiKeys": {"anthropic": "sk-ant-secret-123"}, "baseUrls": {"openai": "http://127.0.0.1:9/v1"}});
        let (s, w) = resolve(&HashMap::new(), Some(&init), None);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            s.api_keys.0.get("anthropic").map(String::as_str),
            Some("sk-ant-secret-123")
        );
        assert!(!format!("{s:?}").contains("sk-ant-secret-123"));
        assert_eq!(
            s.base_urls.get("openai").map(String::as_str),
            Some("http://127.0.0.1:9/v1")
        );
    }

    #[test]
    fn completion_settings_default_and_merge() {
        let (s, w) = resolve(
            &env(&[("BUILDER_COMPLETION_MODEL", "llamacpp/any")]),
            Some(&json!({"completion": {"maxTokens": 64}})),
            Some(&json!({"completion": {"onTyping": true}})),
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.completion.model.as_deref(), Some("llamacpp/any"));
        assert_eq!(s.completion.max_tokens, 64);
        assert!(s.completion.on_typing);
        assert_eq!(s.completion.debounce_ms, 50);
        assert_eq!(Settings::default().completion.max_tokens, 128);
        let (_, w) = resolve(
            &HashMap::new(),
            Some(&json!({"completion": {"debounceMs": "x"}})),
            None,
        );
        assert!(w[0].contains("completion.debounceMs"), "{w:?}");
    }

    #[test]
    fn auto_fix_takes_a_word_or_an_object() {
        assert_eq!(Settings::default().auto_fix.mode, AutoFixMode::Off);
        assert_eq!(Settings::default().auto_fix.max_rounds, 2);
        let (s, w) = resolve(&HashMap::new(), None, Some(&json!({"autoFix": "on"})));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.auto_fix.mode, AutoFixMode::On);
        assert_eq!(s.auto_fix.max_rounds, 2);
        let (s, _) = resolve(
            &HashMap::new(),
            Some(&json!({"autoFix": {"mode": "on"}})),
            Some(&json!({"autoFix": {"maxRounds": 3}})),
        );
        assert_eq!(
            (s.auto_fix.mode, s.auto_fix.max_rounds),
            (AutoFixMode::On, 3)
        );
        let (s, w) = resolve(
            &HashMap::new(),
            None,
            Some(&json!({"autoFix": "sometimes"})),
        );
        assert_eq!(s.auto_fix.mode, AutoFixMode::Off);
        assert!(w[0].contains("autoFix"), "{w:?}");
    }

    #[test]
    fn review_is_off_unless_set_and_refuses_other_words() {
        assert_eq!(Settings::default().review, ReviewMode::Off);
        let (s, w) = resolve(&HashMap::new(), None, Some(&json!({"review": "on"})));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s.review, ReviewMode::On);
        let (s, w) = resolve(&HashMap::new(), Some(&json!({"review": "maybe"})), None);
        assert_eq!(s.review, ReviewMode::Off);
        assert!(w[0].contains("review"), "{w:?}");
    }

    #[test]
    fn bad_env_number_warns() {
        let (s, w) = resolve(&env(&[("MAX_TOKENS", "lots")]), None, None);
        assert_eq!(s.max_tokens, None);
        assert!(w[0].contains("MAX_TOKENS"));
    }

    #[test]
    fn dotenv_fills_only_missing_vars() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "BUILDER_TEST_ONLY_IN_DOTENV=yes\nPATH=nope\n",
        )
        .unwrap();
        let e = environment(Some(dir.path()));
        assert_eq!(
            e.get("BUILDER_TEST_ONLY_IN_DOTENV").map(String::as_str),
            Some("yes")
        );
        assert_ne!(e.get("PATH").map(String::as_str), Some("nope"));
    }
}
