//! The errors of reading and writing run files: a row invariant that does not hold (with the
//! JSON path of the field at fault), and the file-level errors naming the file.

use super::*;

/// An invariant of a row or a run that does not hold, with the JSON path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}{reason}", field_prefix(field))]
pub struct RowError {
    /// e.g. `gflops`, `samples_s[3]`; prefixed with `results[i].` by [`RunFile::validate`].
    pub field: String,
    pub reason: String,
}

impl RowError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        RowError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn within(self, prefix: &str) -> Self {
        RowError {
            field: format!("{prefix}.{}", self.field),
            reason: self.reason,
        }
    }
}

/// Reading or writing a run file (or an external-rows file) failed. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("cannot write {}: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
    #[error("{} already exists; refusing to overwrite it (use --force)", path.display())]
    Exists { path: PathBuf },
    #[error("{}: not valid JSON: {cause}", path.display())]
    Syntax {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error(
        "{}: not a perfledger run file: `schema` is {}, expected \"{SCHEMA_NAME}/{}.x\"",
        path.display(),
        found.as_deref().unwrap_or("missing"),
        VERSION.major
    )]
    NotRunFile {
        path: PathBuf,
        found: Option<String>,
    },
    #[error("{}: `schema` is \"{found}\": {error}", path.display())]
    Version {
        path: PathBuf,
        found: String,
        error: VersionError,
    },
    #[error("{}: {}{cause}", path.display(), field_prefix(field))]
    Field {
        path: PathBuf,
        field: String,
        cause: serde_json::Error,
    },
    #[error("{}: {error}", path.display())]
    Invalid { path: PathBuf, error: RowError },
    #[error("{}:{line}: {}{reason}", path.display(), field_prefix(field))]
    Line {
        path: PathBuf,
        line: usize,
        field: String,
        reason: String,
    },
}

impl RunFileError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            RunFileError::Read { path, .. }
            | RunFileError::Write { path, .. }
            | RunFileError::Exists { path }
            | RunFileError::Syntax { path, .. }
            | RunFileError::NotRunFile { path, .. }
            | RunFileError::Version { path, .. }
            | RunFileError::Field { path, .. }
            | RunFileError::Invalid { path, .. }
            | RunFileError::Line { path, .. } => path,
        }
    }
}

pub(crate) fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field `{field}`: ")
    }
}
