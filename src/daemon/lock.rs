//! One daemon per store: an exclusive lock on `<store path>.lock`, held for the daemon's
//! life, with the holder's process id written inside so a second daemon can name it.
//! Admin commands never take this lock; SQLite's own locking keeps them safe.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another plansync daemon{holder} already runs on the store {store}: it holds the lock \
         file {lock}; stop it first (one daemon per store), or point this one at another \
         [store] path"
    )]
    Held {
        store: PathBuf,
        lock: PathBuf,
        /// ` (pid N)` when the holder wrote its pid.
        holder: String,
    },
    #[error("cannot use the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

/// The lock file of the store at `store`: the same path with `.lock` appended.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl StoreLock {
    /// Takes the lock of the store at `store` without waiting, and writes this process's id
    /// into the lock file.
    pub fn acquire(store: &Path) -> Result<StoreLock, LockError> {
        let path = lock_path(store);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Not truncated on open: the holder's pid must survive a refused attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!(" (pid {pid})"),
                    Err(_) => String::new(),
                };
                return Err(LockError::Held {
                    store: store.to_path_buf(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(StoreLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("plansync.db");
        let first = StoreLock::acquire(&store).unwrap();
        assert_eq!(first.path(), dir.path().join("plansync.db.lock"));
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());

        let err = StoreLock::acquire(&store).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("plansync.db.lock"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        // The refused attempt left the holder's pid in place.
        let text = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());

        drop(first);
        let again = StoreLock::acquire(&store).unwrap();
        drop(again);
    }

    /// Whether taking the lock of `store` now is refused because it is held, and by which
    /// lock file.
    fn held_by(store: &Path) -> Option<PathBuf> {
        match StoreLock::acquire(store) {
            Ok(_) => None,
            Err(LockError::Held { lock, .. }) => Some(lock),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn stores_do_not_share_locks() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let lock_a = StoreLock::acquire(&a).unwrap();
        // Holding one store's lock leaves another store's free...
        let lock_b = match StoreLock::acquire(&b) {
            Ok(lock) => lock,
            Err(e) => panic!("store b is locked by store a's daemon: {e}"),
        };
        assert_ne!(lock_a.path(), lock_b.path());
        // ...while each still refuses a second daemon on its own store.
        assert_eq!(held_by(&a).as_deref(), Some(lock_a.path()));
        assert_eq!(held_by(&b).as_deref(), Some(lock_b.path()));
        // Releasing one store's lock does not release the other's.
        drop(lock_a);
        assert_eq!(held_by(&a), None);
        assert_eq!(held_by(&b).as_deref(), Some(lock_b.path()));
    }
}
