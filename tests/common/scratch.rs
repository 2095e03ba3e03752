//! Scratch directories for tests, removed when the test's thread ends.

use std::cell::RefCell;
use std::path::PathBuf;

thread_local! {
    static DIRS: RefCell<Vec<tempfile::TempDir>> = const { RefCell::new(Vec::new()) };
}

/// A new empty directory that lives until the current test finishes.
pub fn scratch() -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("genroute-test-")
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().to_path_buf();
    DIRS.with(|d| d.borrow_mut().push(dir));
    path
}
