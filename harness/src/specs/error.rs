//! Errors naming the file and the field.

/// A field of an entry that does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn within(self, prefix: &str) -> Self {
        FieldError {
            field: if self.field.is_empty() {
                prefix.to_string()
            } else {
                format!("{prefix}.{}", self.field)
            },
            reason: self.reason,
        }
    }
}

/// Loading a spec or price document failed; names the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read {file}: {cause}")]
    Read { file: String, cause: std::io::Error },
    #[error("{file}: not valid JSON: {cause}")]
    Syntax {
        file: String,
        cause: serde_json::Error,
    },
    #[error("{file}: field `{field}`: {reason}")]
    Field {
        file: String,
        field: String,
        reason: String,
    },
}

impl SpecError {
    pub(crate) fn field(file: &str, e: FieldError) -> SpecError {
        SpecError::Field {
            file: file.to_string(),
            field: e.field,
            reason: e.reason,
        }
    }
}
