//! STUB
use super::*;
#[derive(Debug, Clone, Copy)]
pub struct VercelConfig;
impl VercelConfig { pub fn from_env(_g: &dyn Fn(&str) -> Option<String>) -> Result<VercelConfig> { todo!() } }
pub struct VercelSandbox;
#[async_trait]
impl Sandbox for VercelSandbox {
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
pub async fn create(_h: reqwest::Client, _o: VercelConfig) -> Result<VercelSandbox> { todo!() }
