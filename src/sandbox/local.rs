//! STUB
use std::path::PathBuf;
use super::*;
#[derive(Debug, Clone, Copy)]
pub enum Isolation { Auto, Bwrap, None }
impl Isolation { pub fn parse(s: &str) -> Option<Isolation> { match s { "auto" => Some(Isolation::Auto), "bwrap" => Some(Isolation::Bwrap), "none" => Some(Isolation::None), _ => None } } }
pub struct LocalOptions { pub base_dir: PathBuf, pub isolation: Isolation, pub project_key: String }
pub fn default_base_dir() -> PathBuf { PathBuf::new() }
pub struct LocalSandbox;
#[async_trait]
impl Sandbox for LocalSandbox {
    fn info(&self) -> SandboxInfo { todo!() }
    async fn write_files(&self, _f: &[SandboxFile]) -> Result<()> { todo!() }
    async fn read_file(&self, _p: &str) -> Result<Option<Vec<u8>>> { todo!() }
    async fn list_files(&self) -> Result<Vec<String>> { todo!() }
    async fn run(&self, _c: &CommandSpec, _s: LineSink, _t: CancellationToken) -> Result<CommandOutput> { todo!() }
    async fn start_dev_server(&self, _s: LineSink) -> Result<()> { todo!() }
    async fn healthy(&self) -> bool { todo!() }
    async fn keep_alive(&self) -> Result<()> { todo!() }
    async fn kill(&self) -> Result<()> { todo!() }
}
pub async fn create(_o: LocalOptions) -> Result<LocalSandbox> { todo!() }
