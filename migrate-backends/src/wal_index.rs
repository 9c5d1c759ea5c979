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
//! - the database is in WAL mode while the stamps are compared: the executor's connections
//!   are opened with `journal_mode = WAL`, and a database cannot leave WAL mode while another
//!   connection (the executor's own, which keeps the rows) is open. Read-only, immutable and
//!   custom-VFS connections, where that is not certain, and in-memory databases, get no stamps
//!   ([`WalIndex::for_url`]);
//! - the file read is the live wal-index: the one at the database's full path with `-shm`
//!   appended (the name SQLite gives it), still linked. SQLite deletes it only when the last
//!   connection to the database closes, and the rows are kept with an open connection;
//! - the header is whole: SQLite writes it twice, and a reader takes it only when both copies
//!   agree and it is initialised (anything else is "unknown", and the caller asks the
//!   connection).
//!
//! The file is opened once per database per process and **never closed**: SQLite's locks on
//! it are POSIX record locks, which belong to the process, and closing any descriptor of the
//! file would drop them under SQLite's feet (the "POSIX advisory locks canceled by a separate
//! thread doing close()" hazard of SQLite's "How To Corrupt" page). At most
//! [`MOST_FILES`] are opened; databases beyond that are checked by asking the connection.

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

/// How many wal-index files a process keeps open at most (they are never closed).
pub(crate) const MOST_FILES: usize = 64;

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

/// The wal-index of one database file, found when first needed (a new database has none until
/// a connection reads it) and shared by an executor's clones.
#[derive(Debug)]
pub(crate) struct WalIndex {
    /// The database file, as the executor was given it.
    database: PathBuf,
    /// The wal-index file, once found: an entry of [`OPENED`].
    file: Mutex<Option<Arc<File>>>,
}

/// Every wal-index file this process opened, by full path; never closed (see the module's
/// documentation). A file that was deleted (its database's connections all closed) is
/// replaced by the new one at the same path when that is opened.
static OPENED: Mutex<Vec<(PathBuf, Arc<File>)>> = Mutex::new(Vec::new());

impl WalIndex {
    /// The wal-index of the database a sqlx SQLite connection opened with `url` uses (its
    /// file, `database`), or `None` where its stamps could not be trusted: a URL that opens
    /// the database read-only or immutable, or through a VFS of its choosing (the URL's
    /// `mode=ro`, `immutable`, `vfs`).
    pub(crate) fn for_url(url: &str, database: &Path) -> Option<WalIndex> {
        let query = url.split_once('?').map_or("", |(_, query)| query);
        let untrusted = query.split('&').any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(key, _)| key);
            key == "vfs" || key == "immutable" || pair == "mode=ro"
        });
        (!untrusted).then(|| WalIndex::for_file(database))
    }

    /// The wal-index of the database file at `database`.
    pub(crate) fn for_file(database: &Path) -> WalIndex {
        WalIndex {
            database: database.to_path_buf(),
            file: Mutex::new(None),
        }
    }

    /// The database's stamp now; `None` when it cannot be read (no wal-index yet, a header
    /// being written, a file deleted): the caller then asks the connection.
    pub(crate) fn stamp(&self) -> Option<WalStamp> {
        let mut slot = self.file.lock().ok()?;
        if slot.is_none() {
            *slot = open_shared(&self.database);
        }
        let file = slot.as_ref()?;
        let copies = read_copies(file)?;
        // Read before the link count: linked now, the file was the live one when it was read.
        if !is_linked(file) {
            slot.take();
            return None;
        }
        WalStamp::of_copies(&copies)
    }
}

/// The wal-index file of `database` (its full path with `-shm` appended), from [`OPENED`] or
/// opened read-only and added there.
fn open_shared(database: &Path) -> Option<Arc<File>> {
    let mut path = std::fs::canonicalize(database).ok()?.into_os_string();
    path.push("-shm");
    let path = PathBuf::from(path);
    let mut opened = OPENED.lock().ok()?;
    let found = opened.iter().position(|(at, _)| *at == path);
    if let Some(index) = found {
        if is_linked(&opened[index].1) {
            return Some(opened[index].1.clone());
        }
    }
    if found.is_none() && opened.len() >= MOST_FILES {
        tracing::debug!(path = %path.display(), "wal-index files kept open at their limit; this database's checks ask the connection");
        return None;
    }
    let file = Arc::new(File::open(&path).ok()?);
    match found {
        // The deleted file's descriptor closes once no executor holds it: no connection uses
        // a deleted wal-index, so no lock goes with it.
        Some(index) => opened[index].1 = file.clone(),
        None => opened.push((path, file.clone())),
    }
    Some(file)
}

/// Whether `file` still has a name (a wal-index is deleted when its database's last
/// connection closes).
#[cfg(unix)]
fn is_linked(file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    file.metadata().is_ok_and(|meta| meta.nlink() > 0)
}

/// Both copies of the header, read at once.
#[cfg(unix)]
fn read_copies(file: &File) -> Option<[u8; 2 * HEADER_LEN]> {
    use std::os::unix::fs::FileExt;
    let mut copies = [0; 2 * HEADER_LEN];
    file.read_exact_at(&mut copies, 0).ok()?;
    Some(copies)
}

/// Elsewhere than on Unix the stamps are not read: the caller asks the connection.
#[cfg(not(unix))]
fn is_linked(_file: &File) -> bool {
    false
}

#[cfg(not(unix))]
fn read_copies(_file: &File) -> Option<[u8; 2 * HEADER_LEN]> {
    None
}

#[cfg(test)]
mod tests {
    use super::{WalIndex, WalStamp, HEADER_LEN, IS_INIT_AT, WAL_INDEX_VERSION};
    use std::path::Path;

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
    fn urls_that_may_not_be_in_wal_mode_get_no_wal_index() {
        let file = Path::new("app.db");
        for url in [
            "sqlite://app.db?mode=ro",
            "sqlite://app.db?immutable=true",
            "sqlite://app.db?mode=rwc&vfs=unix-excl",
        ] {
            assert!(WalIndex::for_url(url, file).is_none(), "{url}");
        }
        for url in ["sqlite://app.db", "sqlite://app.db?mode=rwc"] {
            assert!(WalIndex::for_url(url, file).is_some(), "{url}");
        }
    }

    #[test]
    fn a_database_without_a_wal_index_has_no_stamp() {
        let missing = std::env::temp_dir().join("migrate-no-such-dir/app.db");
        assert_eq!(WalIndex::for_file(&missing).stamp(), None);
    }
}
