//! Schema versions: `major.minor`, and which a reader can read.

use super::*;

/// `major.minor` of a schema string such as `perfledger.run/1.0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SchemaVersion {
    pub major: u32,
    pub minor: u32,
}

impl SchemaVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        SchemaVersion { major, minor }
    }

    /// Parse `"{name}/{major}.{minor}"`; `None` when the name differs or the version is malformed.
    pub fn parse(name: &str, schema: &str) -> Option<SchemaVersion> {
        let rest = schema.strip_prefix(name)?.strip_prefix('/')?;
        let (major, minor) = rest.split_once('.')?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(SchemaVersion::new(major.parse().ok()?, minor.parse().ok()?))
    }

    /// Whether a reader of version `self` can read a file of version `found`: the same major and a
    /// minor no newer than the reader's (minors only add fields, so an older file lacks nothing the
    /// reader requires; a newer one may carry fields this reader does not know).
    pub fn can_read(self, found: SchemaVersion) -> Result<(), VersionError> {
        if found.major != self.major {
            Err(VersionError::OtherMajor {
                found,
                reader: self,
            })
        } else if found.minor > self.minor {
            Err(VersionError::NewerMinor {
                found,
                reader: self,
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a reader refuses a file's schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "schema version {found} has a different major version; this perfledger reads {reader} \
         and older {}.x files",
        reader.major
    )]
    OtherMajor {
        found: SchemaVersion,
        reader: SchemaVersion,
    },
    #[error(
        "schema version {found} is newer than this perfledger ({reader}); upgrade perfledger to \
         read it"
    )]
    NewerMinor {
        found: SchemaVersion,
        reader: SchemaVersion,
    },
}
