//! [`WatchedFile`]: a file the relay re-reads when it changes (the multifile, the tokens
//! file), shared by every shard. Each use stats the file (one syscall); a new version is
//! loaded once; a version that fails to load is reported once and the last good contents
//! stay in use.

use std::fmt::Display;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What identifies a version of a file: a rewrite, a rename over it, a chmod all show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub fn of(md: &Metadata) -> Stamp {
        Stamp {
            dev: md.dev(),
            ino: md.ino(),
            size: md.size(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
        }
    }
}

/// Loads a version of the file: its stamp (taken from the opened file) and its contents.
pub type Loader<T, E> = fn(&Path) -> Result<(Stamp, T), E>;

#[derive(Debug)]
struct State<T> {
    current: Arc<T>,
    /// The version last looked at, loaded or not: a broken version is reported once.
    seen: Option<Stamp>,
}

/// A file loaded at start and re-read whenever it changes.
#[derive(Debug)]
pub struct WatchedFile<T, E> {
    path: PathBuf,
    /// What the file is, for log lines ("token file", "password file").
    what: &'static str,
    load: Loader<T, E>,
    state: Mutex<State<T>>,
}

impl<T, E: Display> WatchedFile<T, E> {
    /// Loads `path` now; an error here is the caller's to report (start-up fails).
    pub fn open(path: PathBuf, what: &'static str, load: Loader<T, E>) -> Result<Self, E> {
        let (stamp, contents) = load(&path)?;
        Ok(Self {
            path,
            what,
            load,
            state: Mutex::new(State {
                current: Arc::new(contents),
                seen: Some(stamp),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The contents as the file is now (re-read if it changed; the last good contents if
    /// the new version does not load).
    pub fn current(&self) -> Arc<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.refresh(&mut state);
        Arc::clone(&state.current)
    }

    fn refresh(&self, state: &mut State<T>) {
        let now = match fs::metadata(&self.path) {
            Ok(md) => Stamp::of(&md),
            Err(error) => {
                if state.seen.take().is_some() {
                    tracing::warn!(path = %self.path.display(), %error,
                        "{} unreadable; keeping what was loaded before", self.what);
                }
                return;
            }
        };
        if state.seen == Some(now) {
            return;
        }
        state.seen = Some(now);
        match (self.load)(&self.path) {
            Ok((stamp, contents)) => {
                tracing::info!(path = %self.path.display(), "{} reloaded", self.what);
                state.current = Arc::new(contents);
                state.seen = Some(stamp);
            }
            Err(error) => {
                tracing::warn!(%error, "{} reload failed; keeping what was loaded before", self.what);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LOADS: AtomicUsize = AtomicUsize::new(0);

    /// Reads a number; anything else is an error.
    fn load_number(path: &Path) -> Result<(Stamp, u32), String> {
        LOADS.fetch_add(1, Ordering::SeqCst);
        let file = fs::File::open(path).map_err(|e| e.to_string())?;
        let stamp = Stamp::of(&file.metadata().map_err(|e| e.to_string())?);
        let text = std::io::read_to_string(file).map_err(|e| e.to_string())?;
        let n = text
            .trim()
            .parse()
            .map_err(|_| format!("not a number: {text:?}"))?;
        Ok((stamp, n))
    }

    #[test]
    fn each_version_is_loaded_once_and_a_broken_one_keeps_the_last_good() {
        let dir = std::env::temp_dir().join(format!("watched-file-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n");
        fs::write(&path, "1").unwrap();
        let file = WatchedFile::open(path.clone(), "number file", load_number).unwrap();
        let loads = || LOADS.load(Ordering::SeqCst);
        assert_eq!((*file.current(), *file.current(), loads()), (1, 1, 1));

        fs::write(&path, "22").unwrap();
        assert_eq!((*file.current(), *file.current(), loads()), (22, 22, 2));

        fs::write(&path, "three").unwrap();
        assert_eq!((*file.current(), *file.current(), loads()), (22, 22, 3));

        fs::remove_file(&path).unwrap();
        assert_eq!((*file.current(), loads()), (22, 3));

        fs::write(&path, "4444").unwrap();
        assert_eq!((*file.current(), loads()), (4444, 4));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_does_not_load_at_start_is_the_callers_error() {
        let refuse: Loader<u32, String> = |_| Err("refused".into());
        let opened = WatchedFile::open(PathBuf::from("/nonexistent"), "number file", refuse);
        assert_eq!(opened.unwrap_err(), "refused");
    }
}
