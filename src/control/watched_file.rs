//! [`WatchedFile`]: a file the relay re-reads when it changes (the multifile, the tokens
//! file), shared by every shard. Each use stats the file (one syscall); a new version is
//! loaded once; a version that fails to load is reported once and the last good contents
//! stay in use. [`reread_all`] (SIGHUP) loads every watched file of the process again,
//! changed or not, with the same rule: a broken file keeps the last good contents.

use std::fmt::Display;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

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

/// A file loaded at start and re-read whenever it changes (and on [`reread_all`]).
#[derive(Debug)]
pub struct WatchedFile<T, E> {
    inner: Arc<Inner<T, E>>,
}

#[derive(Debug)]
struct Inner<T, E> {
    path: PathBuf,
    /// What the file is, for log lines ("token file", "password file").
    what: &'static str,
    load: Loader<T, E>,
    state: Mutex<State<T>>,
}

/// What [`reread_all`] does to one file, whatever its contents' type.
trait Reread: Send + Sync {
    /// Loads the file again; returns the log line's words (`password file PATH reloaded`).
    fn reread(&self) -> Result<String, String>;
}

/// Every watched file still open in this process, for [`reread_all`].
static ALL: Mutex<Vec<Weak<dyn Reread>>> = Mutex::new(Vec::new());

/// Loads every watched file of the process again, changed or not (SIGHUP), and logs what
/// each did: reloaded, or not (the last good contents stay). Returns how many there were.
/// Runs on the caller's thread; a shard using a file meanwhile waits for its load.
pub fn reread_all() -> usize {
    let files: Vec<Arc<dyn Reread>> = {
        let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|f| f.strong_count() > 0);
        all.iter().filter_map(Weak::upgrade).collect()
    };
    for file in &files {
        match file.reread() {
            Ok(done) => tracing::info!("SIGHUP: {done}"),
            Err(failed) => tracing::warn!("SIGHUP: {failed}"),
        }
    }
    files.len()
}

impl<T: Send + Sync + 'static, E: Display + 'static> WatchedFile<T, E> {
    /// Loads `path` now; an error here is the caller's to report (start-up fails).
    pub fn open(path: PathBuf, what: &'static str, load: Loader<T, E>) -> Result<Self, E> {
        let (stamp, contents) = load(&path)?;
        let inner = Arc::new(Inner {
            path,
            what,
            load,
            state: Mutex::new(State {
                current: Arc::new(contents),
                seen: Some(stamp),
            }),
        });
        let weak: Weak<dyn Reread> = Arc::downgrade(&inner) as Weak<dyn Reread>;
        let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|f| f.strong_count() > 0);
        all.push(weak);
        Ok(Self { inner })
    }
}

impl<T, E: Display> WatchedFile<T, E> {
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The contents as the file is now (re-read if it changed; the last good contents if
    /// the new version does not load).
    pub fn current(&self) -> Arc<T> {
        self.inner.current()
    }
}

impl<T: Send + Sync, E: Display> Reread for Inner<T, E> {
    fn reread(&self) -> Result<String, String> {
        let path = self.path.display();
        // Under the lock, as a change seen by a shard is: one version loaded at a time.
        let mut state = self.lock();
        // Stamped before loading, as `refresh` does: a version written during the load is
        // then newer than the stamp and is read at the next use.
        let before = fs::metadata(&self.path).ok().map(|md| Stamp::of(&md));
        match (self.load)(&self.path) {
            Ok((stamp, contents)) => {
                state.current = Arc::new(contents);
                state.seen = Some(stamp);
                Ok(format!("{} {path} reloaded", self.what))
            }
            Err(error) => {
                // This version is reported here; the next use need not report it again.
                state.seen = before;
                Err(format!(
                    "{} {path} not reloaded, keeping what was loaded before: {error}",
                    self.what
                ))
            }
        }
    }
}

impl<T, E: Display> Inner<T, E> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn current(&self) -> Arc<T> {
        let mut state = self.lock();
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
    /// [`reread_all`] loads every file of the process: the tests that count loads take turns.
    static COUNTING: Mutex<()> = Mutex::new(());

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
        let _turn = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
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
    fn reread_all_loads_an_unchanged_file_again_and_a_broken_one_keeps_the_last_good() {
        let _turn = COUNTING.lock().unwrap_or_else(|e| e.into_inner());
        let dir = std::env::temp_dir().join(format!("watched-reread-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n");
        fs::write(&path, "5").unwrap();
        let file = WatchedFile::open(path.clone(), "number file", load_number).unwrap();
        let loads = || LOADS.load(Ordering::SeqCst);
        let before = loads();
        assert_eq!(*file.current(), 5);
        assert_eq!(loads(), before, "an unchanged file is not loaded on use");
        assert!(reread_all() >= 1);
        assert_eq!(
            loads(),
            before + 1,
            "reread_all loads it although unchanged"
        );
        assert_eq!((*file.current(), loads()), (5, before + 1));

        fs::write(&path, "six").unwrap();
        reread_all();
        // The broken version was reported by reread_all; using the file does not load it again.
        assert_eq!((*file.current(), loads()), (5, before + 2));
        fs::write(&path, "7").unwrap();
        reread_all();
        assert_eq!(*file.current(), 7);

        drop(file);
        let left = loads();
        reread_all();
        assert_eq!(loads(), left, "a dropped file is not re-read");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_that_does_not_load_at_start_is_the_callers_error() {
        let refuse: Loader<u32, String> = |_| Err("refused".into());
        let opened = WatchedFile::open(PathBuf::from("/nonexistent"), "number file", refuse);
        assert_eq!(opened.unwrap_err(), "refused");
    }
}
