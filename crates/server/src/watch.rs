//! Hot reload: watching the policy file (and the tenants file) and reloading on change.
//!
//! **Why apart from the reload itself.** [`App::reload`] is what the admin endpoint and the
//! watcher both call; this module is only the file-system side: which events count as a change,
//! and how a burst of them becomes one reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;

/// Watches the policy file (and the tenants file) and reloads on change. Editors often
/// replace a file by renaming, so each file's directory is watched and events are filtered by
/// name, then debounced.
pub fn watch(app: Arc<App>) -> Result<notify::RecommendedWatcher, notify::Error> {
    use notify::{RecursiveMode, Watcher};
    let files: Vec<PathBuf> = std::iter::once(app.config.policy_path.clone())
        .chain(app.config.tenants_path.clone())
        .collect();
    let names: Vec<std::ffi::OsString> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_os_string()))
        .collect();
    let dir_of = |path: &Path| {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event {
            // Only changes: reading the file (as every reload does) raises access events,
            // which would otherwise reload it again and again.
            let change = matches!(
                e.kind,
                notify::EventKind::Create(_)
                    | notify::EventKind::Modify(_)
                    | notify::EventKind::Remove(_)
            );
            if change
                && e.paths.iter().any(|p| {
                    p.file_name()
                        .is_some_and(|n| names.iter().any(|x| x.as_os_str() == n))
                })
            {
                let _ = tx.send(());
            }
        }
    })?;
    let mut dirs: Vec<PathBuf> = files.iter().map(|f| dir_of(f)).collect();
    dirs.dedup();
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(Duration::from_millis(150)).await;
            while rx.try_recv().is_ok() {}
            let _ = app.reload().await;
        }
    });
    Ok(watcher)
}
