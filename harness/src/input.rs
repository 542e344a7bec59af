//! Reading the files perfledger does not trust — run files, suites, spec and price files, external
//! rows, criterion estimates, tune caches, noise references — through one gate:
//!
//! - only regular files (a symlink to one is fine): a directory, a FIFO, a character or block
//!   device such as `/dev/zero`, or a socket is refused from its metadata before it is opened, so
//!   nothing blocks on a FIFO without a writer or reads a device until memory runs out; a symlink
//!   loop fails with the system's error;
//! - at most [`max_input_bytes`] (256 MiB unless `PERFLEDGER_MAX_INPUT_BYTES` says otherwise),
//!   checked before reading and again while reading (a file that grows past it meanwhile is
//!   refused, never read to its end).
//!
//! The type check and the open are two calls: a path swapped for a FIFO between them by another
//! process could still block; the open file's type is checked again before it is read.

use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::path::Path;

/// The size limit of an input file when `PERFLEDGER_MAX_INPUT_BYTES` is not set: 256 MiB (a
/// standard suite's run file is well under 1 MiB).
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 256 << 20;

/// The size limit of an input file: `PERFLEDGER_MAX_INPUT_BYTES` (a positive number of bytes)
/// or [`DEFAULT_MAX_INPUT_BYTES`].
pub fn max_input_bytes() -> u64 {
    std::env::var("PERFLEDGER_MAX_INPUT_BYTES")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(DEFAULT_MAX_INPUT_BYTES)
}

/// What a file that is not a regular file is, in words.
fn kind(t: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn refuse(t: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}, not a regular file: refused", kind(t)),
    )
}

fn too_big(len: u64, max: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{len} bytes, above the {max}-byte limit for input files (PERFLEDGER_MAX_INPUT_BYTES)"
        ),
    )
}

/// The bytes of the regular file at `path`, at most [`max_input_bytes`].
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_capped(path, max_input_bytes())
}

fn read_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(refuse(meta.file_type()));
    }
    if meta.len() > max {
        return Err(too_big(meta.len(), max));
    }
    let file = File::open(path)?;
    let open_meta = file.metadata()?;
    if !open_meta.is_file() {
        return Err(refuse(open_meta.file_type()));
    }
    let mut bytes = Vec::with_capacity(open_meta.len().min(max) as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64, max));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text; bytes that are not UTF-8 are an error naming the first bad offset.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_and_everything_else_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.json");
        fs::write(&f, b"{}").unwrap();
        assert_eq!(read(&f).unwrap(), b"{}");
        assert_eq!(read_to_string(&f).unwrap(), "{}");
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
        #[cfg(unix)]
        {
            let e = read(Path::new("/dev/zero")).unwrap_err().to_string();
            assert!(e.contains("character device"), "{e}");
            let link = dir.path().join("loop");
            std::os::unix::fs::symlink(&link, &link).unwrap();
            assert!(read(&link).is_err());
            let to_file = dir.path().join("to-file");
            std::os::unix::fs::symlink(&f, &to_file).unwrap();
            assert_eq!(read(&to_file).unwrap(), b"{}");
        }
        let bad = dir.path().join("bad.json");
        fs::write(&bad, [b'{', 0xff, b'}']).unwrap();
        let e = read_to_string(&bad).unwrap_err().to_string();
        assert!(e.contains("offset 1"), "{e}");
        assert!(read(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_size_limit_is_checked_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("big");
        fs::write(&f, vec![b' '; 10]).unwrap();
        assert_eq!(read_capped(&f, 10).unwrap().len(), 10);
        let e = read_capped(&f, 9).unwrap_err().to_string();
        assert!(e.contains("10 bytes, above the 9-byte limit"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_writer_is_refused_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("NOTICE: mkfifo unavailable; FIFO case skipped");
            return;
        }
        let e = read(&fifo).unwrap_err().to_string();
        assert!(e.contains("a FIFO"), "{e}");
    }
}
