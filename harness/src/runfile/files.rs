//! Where runs go and how they are written: atomic writes that never replace a file unforced,
//! default paths, run ids.

use super::*;

/// Write `bytes` to `path` through a temporary file in the same directory (`tempfile`), fsynced,
/// then moved into place and the directory fsynced. Without `force`, an existing `path` is never
/// replaced, even by a file that appears meanwhile: `tempfile`'s no-clobber persist links the
/// file into place, which fails if the name exists.
pub fn write_atomic(path: &Path, bytes: &[u8], force: bool) -> Result<(), RunFileError> {
    let werr = |cause: io::Error| RunFileError::Write {
        path: path.to_path_buf(),
        cause,
    };
    let exists = || RunFileError::Exists {
        path: path.to_path_buf(),
    };
    if !force && fs::symlink_metadata(path).is_ok() {
        return Err(exists());
    }
    let name = path.file_name().ok_or_else(|| {
        werr(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the path does not name a file",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(werr)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{}.", name.to_string_lossy()))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(werr)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(werr)?;
    let persisted = if force {
        tmp.persist(path).map(drop)
    } else {
        tmp.persist_noclobber(path).map(drop)
    };
    match persisted {
        Ok(()) => {
            // Make the rename durable; not every platform lets a directory be opened and synced.
            if let Ok(d) = fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
        // The temporary file is removed when the error (which owns it) is dropped.
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
        Err(e) => Err(werr(e.error)),
    }
}

/// `results/runs/<UTC yyyymmddThhmmssZ>-<host>-<id8>.json`, the host reduced to `[A-Za-z0-9-]`
/// (other characters become `-`, at most 63 kept) and `id8` the first 8 characters of the run id.
pub fn default_run_path(created: OffsetDateTime, hostname: &str, run_id: &str) -> PathBuf {
    let t = created.to_offset(UtcOffset::UTC);
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let clean = |s: &str, max: usize| -> String {
        let c: String = s
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(max)
            .collect();
        let c = c.trim_matches('-').to_string();
        if c.is_empty() {
            "unknown".to_string()
        } else {
            c
        }
    };
    let host = clean(hostname, 63);
    let id8 = clean(run_id, 8);
    Path::new(RUNS_DIR).join(format!("{stamp}-{host}-{id8}.json"))
}

/// A fresh random 128-bit run id, 32 lowercase hex digits. Mixes the clock, the process id, a
/// per-process counter and the standard library's randomly keyed hasher (seeded from the OS), so
/// ids from concurrent runs on many machines do not collide.
pub fn new_run_id() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(count);
        h.write_usize(i);
        *w = SplitMix64::new(h.finish()).next_u64();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}
