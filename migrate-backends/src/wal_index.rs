//! Whether a SQLite database in WAL mode has changed, read without asking a connection.
//!
//! sqlx runs each SQLite connection on a thread of its own, so even `PRAGMA data_version` is a
//! hand-off to that thread and back (10–40 µs, most of it waking the thread). SQLite itself
//! answers the same question from shared memory: every connection to a database in WAL mode
//! maps its wal-index, the `-shm` file beside it, whose first bytes are the wal-index header
//! (<https://www.sqlite.org/walformat.html>, "the WAL-index header"). A commit rewrites that
//! header (its change counter, frame count and checksums), and a read transaction takes its
//! snapshot from it: the header is what makes a commit visible. A [`WalStamp`] is a copy of
//! the header; two stamps that are equal mean that nothing committed between them, so rows read
//! after the first are still the database's at the second. Reading it is one `pread` and one
//! `fstat` on the caller's thread.
//!
//! When a stamp can be trusted:
//! - the database is in WAL mode while the stamps are compared: the connection that keeps the
//!   rows says so when the executor connects (its `journal_mode`, in [`CONFIRM`]; a pool
//!   passed in says so at its first read), and a
//!   database cannot leave WAL mode while another connection (that one) is open. Read-only,
//!   immutable and custom-VFS connections, and in-memory databases, get no stamps (what the
//!   URL or the pool's options say: `sqlite_opened`);
//! - the file read is the live wal-index: SQLite names it after the database's full path
//!   (`PRAGMA database_list`, also in [`CONFIRM`]) with `-shm` appended, and it must still be
//!   linked. SQLite deletes it only when the last connection to the database closes (and never
//!   under `SQLITE_FCNTL_PERSIST_WAL`), and the rows are kept with an open connection;
//! - the header is whole: SQLite writes it twice, and a reader takes it only when both copies
//!   agree and it is initialised (anything else is "unknown", and the caller asks the
//!   connection);
//! - no read snapshot stays open on the connection between the stamp and the rows: the stamp
//!   is taken outside the connection's snapshot, where the data version is taken inside it.
//!   sqlx resets every statement when it is done, and whoever takes the kept connection ends a
//!   transaction left on it before reading; a path that kept a read snapshot open with the rows
//!   kept would have to drop them.
//!
//! The file is opened once per database per process and not closed while it is linked:
//! SQLite's locks on it are POSIX record locks, which belong to the process, and closing any
//! descriptor of the file would drop them under SQLite's feet (the "POSIX advisory locks
//! canceled by a separate thread doing close()" hazard of SQLite's "How To Corrupt" page). A
//! file confirmed deleted (its database's connections all closed; SQLite deletes it only then)
//! is let go, so at most [`MOST_FILES`] databases open at once have their files open; beyond
//! that, checks ask the connection. Only on Unix: elsewhere checks ask the connection.

// Only SQLite executors have a wal-index; the stamp type is kept with every state read.
#![cfg_attr(not(feature = "sqlite"), allow(dead_code))]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The wal-index header's length; SQLite keeps two copies of it, one after the other.
const HEADER_LEN: usize = 48;

/// The header's format (`iVersion`, the first four bytes, in the machine's byte order).
const WAL_INDEX_VERSION: u32 = 3_007_000;

/// Where the header's "initialised" flag (`isInit`) is.
const IS_INIT_AT: usize = 12;

/// How many wal-index files of databases still open a process keeps open at most.
pub(crate) const MOST_FILES: usize = 64;

/// What the connection says about its main database when the executor connects: its journal
/// mode (one row), then every database it has open with its full path (a row each; the name
/// SQLite gives the wal-index is the main database's path with `-shm`). Two plain pragmas: the
/// same answers asked as one `SELECT` over the pragma functions (`pragma_journal_mode`,
/// `pragma_database_list`) took SQLite about 40 µs to prepare, a connection's first check.
pub(crate) const CONFIRM: &str = "PRAGMA main.journal_mode; PRAGMA database_list";

/// Asked before [`CONFIRM`] of a connection whose options are not the executor's own (a pool
/// passed in): its locking mode (one row). In exclusive locking mode SQLite may keep the
/// wal-index in the process's memory instead of the `-shm` file. An executor that connected
/// opened its connections from a URL, which cannot set a locking mode, so they lock as usual
/// and the read started at connect does not ask.
pub(crate) const CONFIRM_LOCKING: &str = "PRAGMA main.locking_mode";

/// A copy of a database's wal-index header: equal stamps mean that nothing committed in
/// between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WalStamp([u8; HEADER_LEN]);

impl WalStamp {
    /// The stamp in `copies` (the header's two copies), if they agree and the header is
    /// initialised in the format this reads.
    fn of_copies(copies: &[u8; 2 * HEADER_LEN]) -> Option<WalStamp> {
        let (first, second) = copies.split_at(HEADER_LEN);
        let header: [u8; HEADER_LEN] = first.try_into().ok()?;
        let version = u32::from_ne_bytes(header[..4].try_into().ok()?);
        let whole = first == second && version == WAL_INDEX_VERSION && header[IS_INIT_AT] == 1;
        whole.then_some(WalStamp(header))
    }
}

/// The wal-index of one database file, shared by an executor's clones.
#[derive(Debug)]
pub(crate) struct WalIndex(Mutex<Found>);

/// What is known of an executor's wal-index.
#[derive(Debug)]
struct Found {
    /// The wal-index file's path: guessed from the database's path until the connection
    /// confirms it.
    path: PathBuf,
    /// Whether the connection confirmed the database in WAL mode at `path`'s database; until
    /// then, only the stamp taken before the connect-time read is taken.
    confirmed: bool,
    /// Whether a connection answered [`CONFIRM`] at all (in WAL mode or not): a connection's
    /// first read asks it until one did ([`WalIndex::to_confirm`]).
    asked: bool,
    /// The file, once opened: an entry of [`OPENED`].
    file: Option<Arc<File>>,
}

/// Every wal-index file this process opened, by path; kept open while linked (see the
/// module's documentation).
static OPENED: Mutex<Vec<(PathBuf, Arc<File>)>> = Mutex::new(Vec::new());

impl WalIndex {
    /// The wal-index of the database file at `database` (which exists: the executor has
    /// connected), where its name is guessed until [`confirm`](Self::confirm)ed; `None` when
    /// the path cannot be resolved, and off Unix.
    pub(crate) fn guessed(database: &Path) -> Option<WalIndex> {
        if !cfg!(unix) {
            return None;
        }
        let mut path = std::fs::canonicalize(database).ok()?.into_os_string();
        path.push("-shm");
        Some(WalIndex(Mutex::new(Found {
            path: path.into(),
            confirmed: false,
            asked: false,
            file: None,
        })))
    }

    /// Takes what the connection said in answer to [`CONFIRM`] (its main database's journal
    /// mode and full path) and whether it locks the database as usual ([`CONFIRM_LOCKING`]):
    /// from now on the stamps are read where SQLite keeps the wal-index, if the database is in
    /// WAL mode and locked as usual, else never. Whether the guessed name was that one, so that
    /// a stamp taken before may be kept.
    pub(crate) fn confirm(&self, journal_mode: &str, locks_as_usual: bool, database: &str) -> bool {
        let Ok(mut found) = self.0.lock() else {
            return false;
        };
        let wal =
            journal_mode.eq_ignore_ascii_case("wal") && locks_as_usual && !database.is_empty();
        let path = PathBuf::from(format!("{database}-shm"));
        let same = wal && path == found.path;
        if !same {
            found.file = None;
            found.path = path;
        }
        found.confirmed = wal;
        found.asked = true;
        same
    }

    /// Whether no connection has answered [`CONFIRM`] yet: the read started at connect did
    /// not (it failed before its first row), or there was none (a pool passed in). A
    /// connection's first read then sends it with its rows
    /// (`SqlxDb::read_packed`), as the read started at connect does.
    pub(crate) fn to_confirm(&self) -> bool {
        self.0.lock().is_ok_and(|found| !found.asked)
    }

    /// The database's stamp now; `None` when it cannot be read (no wal-index yet, a header
    /// being written, a file deleted) or not trusted: the caller then asks the connection.
    pub(crate) fn stamp(&self) -> Option<WalStamp> {
        self.read(false)
    }

    /// [`stamp`](Self::stamp) before the connection confirmed the guessed name: kept only if
    /// `confirm` then says that the guess was right.
    pub(crate) fn stamp_unconfirmed(&self) -> Option<WalStamp> {
        self.read(true)
    }

    fn read(&self, unconfirmed: bool) -> Option<WalStamp> {
        let mut found = self.0.lock().ok()?;
        if !found.confirmed && !unconfirmed {
            return None;
        }
        if found.file.is_none() {
            found.file = open_shared(&found.path);
        }
        let file = found.file.as_ref()?;
        let copies = read_copies(file)?;
        // Read before the link count: linked now, the file was the live one when it was read.
        match links(file)? {
            0 => {
                found.file.take();
                None
            }
            _ => WalStamp::of_copies(&copies),
        }
    }
}

/// The wal-index file at `path`, from [`OPENED`] or opened read-only and added there; files
/// confirmed deleted leave it first.
fn open_shared(path: &Path) -> Option<Arc<File>> {
    let mut opened = OPENED.lock().ok()?;
    // A wal-index is deleted once its database's last connection closed: no connection holds
    // a lock on it, so its descriptor may close (when no executor holds it any more).
    opened.retain(|(_, file)| links(file) != Some(0));
    if let Some((_, file)) = opened.iter().find(|(at, _)| at == path) {
        return Some(file.clone());
    }
    if opened.len() >= MOST_FILES {
        tracing::debug!(path = %path.display(), "wal-index files kept open at their limit; this database's checks ask the connection");
        return None;
    }
    // SQLite opens it without following a link: a link here is not its file.
    if std::fs::symlink_metadata(path)
        .ok()?
        .file_type()
        .is_symlink()
    {
        return None;
    }
    let file = Arc::new(File::open(path).ok()?);
    opened.push((path.to_path_buf(), file.clone()));
    Some(file)
}

/// How many names `file` has (a wal-index is deleted when its database's last connection
/// closes); `None` when that cannot be told.
#[cfg(unix)]
fn links(file: &File) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|meta| meta.nlink())
}

/// Both copies of the header, read at once.
#[cfg(unix)]
fn read_copies(file: &File) -> Option<[u8; 2 * HEADER_LEN]> {
    use std::os::unix::fs::FileExt;
    let mut copies = [0; 2 * HEADER_LEN];
    file.read_exact_at(&mut copies, 0).ok()?;
    Some(copies)
}

/// Elsewhere than on Unix no wal-index is found ([`WalIndex::guessed`]).
#[cfg(not(unix))]
fn links(_file: &File) -> Option<u64> {
    None
}

#[cfg(not(unix))]
fn read_copies(_file: &File) -> Option<[u8; 2 * HEADER_LEN]> {
    None
}

#[cfg(test)]
mod tests {
    use super::{WalIndex, WalStamp, HEADER_LEN, IS_INIT_AT, WAL_INDEX_VERSION};

    fn header(change: u8) -> [u8; 2 * HEADER_LEN] {
        let mut copies = [0; 2 * HEADER_LEN];
        for copy in copies.chunks_mut(HEADER_LEN) {
            copy[..4].copy_from_slice(&WAL_INDEX_VERSION.to_ne_bytes());
            copy[8] = change;
            copy[IS_INIT_AT] = 1;
        }
        copies
    }

    #[test]
    fn a_header_is_taken_only_whole_and_initialised() {
        let whole = header(7);
        assert!(WalStamp::of_copies(&whole).is_some());
        assert_ne!(WalStamp::of_copies(&whole), WalStamp::of_copies(&header(8)));
        let mut torn = whole;
        torn[HEADER_LEN + 8] = 8;
        assert_eq!(WalStamp::of_copies(&torn), None, "copies that disagree");
        let mut uninitialised = whole;
        uninitialised[IS_INIT_AT] = 0;
        uninitialised[HEADER_LEN + IS_INIT_AT] = 0;
        assert_eq!(WalStamp::of_copies(&uninitialised), None);
        let mut other_format = whole;
        other_format[0] ^= 1;
        other_format[HEADER_LEN] ^= 1;
        assert_eq!(WalStamp::of_copies(&other_format), None);
    }

    #[test]
    fn a_database_that_cannot_be_found_has_no_wal_index() {
        let missing = std::env::temp_dir().join("migrate-no-such-dir/app.db");
        assert!(WalIndex::guessed(&missing).is_none());
        let here = std::env::current_exe().expect("the test binary");
        assert_eq!(
            WalIndex::guessed(&here).is_some(),
            cfg!(unix),
            "only on Unix"
        );
    }

    #[test]
    #[cfg(unix)]
    fn stamps_wait_for_the_connection_to_confirm_wal_mode_at_the_guessed_name() {
        let dir = tempfile_dir();
        let database = dir.join("app.db");
        std::fs::write(&database, b"").unwrap();
        let mut shm = database.clone().into_os_string();
        shm.push("-shm");
        std::fs::write(&shm, header(1)).unwrap();
        let full = std::fs::canonicalize(&database).unwrap();
        let index = WalIndex::guessed(&database).unwrap();
        assert!(index.stamp_unconfirmed().is_some());
        assert_eq!(index.stamp(), None, "not confirmed yet");
        let full = full.to_str().unwrap();
        assert!(!index.confirm("delete", true, full));
        assert_eq!(index.stamp(), None, "not in WAL mode");
        assert!(!index.confirm("wal", false, full));
        assert_eq!(index.stamp(), None, "locked exclusively");
        assert!(index.confirm("wal", true, full));
        assert!(index.stamp().is_some());
        assert!(
            !index.confirm("wal", true, "/elsewhere/app.db"),
            "another name"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "migrate-wal-index-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
