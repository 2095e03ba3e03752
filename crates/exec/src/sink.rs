//! Where the bytes of a delivered video are written.
//!
//! **Why a trait.** The CLI writes videos into a directory ([`DirSink`]); the service, a test or
//! an embedding program may keep them elsewhere. The walk only needs a path or URI back, to
//! check the file's frames and to return it.

/// Where bytes returned by a backend are written.
pub trait VideoSink: Send + Sync {
    /// Stores bytes and returns a path or URI for them.
    fn store(&self, request_id: &str, data: &[u8], mime: &str) -> Result<String, String>;
}

/// Writes videos into a directory.
#[derive(Debug, Clone)]
pub struct DirSink(pub std::path::PathBuf);

impl VideoSink for DirSink {
    fn store(&self, request_id: &str, data: &[u8], mime: &str) -> Result<String, String> {
        let ext = if mime.contains("webm") { "webm" } else { "mp4" };
        std::fs::create_dir_all(&self.0)
            .map_err(|e| format!("cannot create `{}`: {e}", self.0.display()))?;
        let path = self.0.join(format!("{request_id}.{ext}"));
        std::fs::write(&path, data)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        Ok(path.display().to_string())
    }
}

/// genroute's data directory, where the SQLite ledger and the CLI's videos live: `flag` (the
/// CLI's `--data-dir`), else `$GENROUTE_DATA_DIR`, else the user's data directory
/// (`~/.local/share/genroute` on Linux), else `./.genroute`. The CLI and the Python package
/// both resolve it here, so they find the same ledger.
pub fn data_dir(flag: Option<std::path::PathBuf>) -> std::path::PathBuf {
    flag.or_else(|| std::env::var_os("GENROUTE_DATA_DIR").map(Into::into))
        .or_else(|| dirs::data_local_dir().map(|d| d.join("genroute")))
        .unwrap_or_else(|| ".genroute".into())
}
