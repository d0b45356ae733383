use anyhow::Context;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// A directory under the system temp dir for one private server's data and logs, removed
/// when dropped. Kept short: Postgres puts its unix socket in it (108-byte path limit).
pub(crate) struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub(crate) fn new(kind: &str) -> anyhow::Result<Self> {
        let id = Uuid::new_v4().simple().to_string();
        let path = std::env::temp_dir().join(format!("pf-{kind}-{}", &id[..12]));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self { path })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Set `PF_KEEP_SERVER_DIRS=1` to read a failed test's server logs afterwards.
        if std::env::var_os("PF_KEEP_SERVER_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
