//! One run at a time per store, across processes: the daemon's scheduled runs and an admin's
//! `sync`, `resync` or `snapshot` take turns instead of pulling and writing at once (two runs
//! could send each other's queued writes, or an older value after a newer one).
//!
//! The lock is an OS file lock on `<store>.run.lock`, released when the run ends or its
//! process dies. It is distinct from the daemon's lifetime lock (`<store>.lock`), which keeps a
//! second daemon away but lets admin commands in.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::SyncError;

/// Held for the duration of a run.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// The run lock's file for a store file.
pub fn path_for(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".run.lock");
    PathBuf::from(name)
}

/// Waits for the run lock of the store at `store` (checking `cancel` between attempts).
/// An in-memory store has no file and needs no lock.
pub async fn acquire(
    store: &Path,
    cancel: &CancellationToken,
) -> Result<Option<RunLock>, SyncError> {
    if store.as_os_str().is_empty() || store == Path::new(":memory:") {
        return Ok(None);
    }
    let path = path_for(store);
    let lock_error = |source: std::io::Error| SyncError::RunLock {
        path: path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(RunLock { _file: file })),
            Err(TryLockError::WouldBlock) => {
                if !announced {
                    info!(lock = %path.display(), "another run on this store is in progress; waiting for it to finish");
                    announced = true;
                }
                if cancel.is_cancelled() {
                    return Err(SyncError::Stopped(
                        "shutdown requested while waiting for another run".into(),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(TryLockError::Error(source)) => return Err(lock_error(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_run_waits_until_the_first_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("plansync.db");
        let cancel = CancellationToken::new();
        let first = acquire(&store, &cancel).await.unwrap();
        assert!(first.is_some());
        let waiting = tokio::spawn({
            let store = store.clone();
            let cancel = cancel.clone();
            async move { acquire(&store, &cancel).await.map(|l| l.is_some()) }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "the second run must wait");
        drop(first);
        assert!(waiting.await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn waiting_ends_on_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("plansync.db");
        let cancel = CancellationToken::new();
        let _held = acquire(&store, &CancellationToken::new()).await.unwrap();
        cancel.cancel();
        assert!(matches!(
            acquire(&store, &cancel).await,
            Err(SyncError::Stopped(_))
        ));
    }
}
