//! External rows (`perfledger import`): JSON lines of peer and imported measurements, validated
//! line by line and turned into rows.

use super::*;

/// The kinds an external row may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalKind {
    Peer,
    Imported,
}

impl From<ExternalKind> for RowKind {
    fn from(k: ExternalKind) -> Self {
        match k {
            ExternalKind::Peer => RowKind::Peer,
            ExternalKind::Imported => RowKind::Imported,
        }
    }
}

/// One line of an external-rows file (`perfledger import FILE --into RUN`): a peer library timed
/// on this machine, or a measurement imported from elsewhere. No FLOP field: perfledger computes
/// FLOPs from the shape. Unknown fields are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalRow {
    pub kind: ExternalKind,
    pub op: Op,
    pub shape: Shape,
    pub precision: Precision,
    pub device: Device,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceInfo>,
    /// Seconds per iteration.
    pub samples_s: Vec<f64>,
    /// Computed by the producing script against a float64 reference, or `{"method": "none"}`.
    pub verification: RowVerification,
    pub tool: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_version: Option<String>,
    /// When measured (RFC 3339 date or date-time); required for `imported` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Where the number comes from; required for `imported` rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Extra provenance: how the script timed (a JSON object, kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<Value>,
    /// Extra provenance: the script's configuration (a JSON object, kept as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
}

impl ExternalRow {
    /// Parse one JSON line (errors carry the field path).
    pub fn parse_line(line: &str) -> Result<ExternalRow, RowError> {
        let mut de = serde_json::Deserializer::from_str(line);
        let row: ExternalRow = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| RowError::new(field_name(e.path()), e.into_inner().to_string()))?;
        de.end().map_err(|e| RowError::new("", e.to_string()))?;
        row.validate()?;
        Ok(row)
    }

    /// Read a JSON-lines file (blank lines skipped). Errors name the file, line and field.
    pub fn read_lines(path: impl AsRef<Path>) -> Result<Vec<ExternalRow>, RunFileError> {
        Ok(Self::read_numbered_lines(path)?
            .into_iter()
            .map(|(_, row)| row)
            .collect())
    }

    /// As [`read_lines`](Self::read_lines), each row with its line number in the file (1-based,
    /// blank lines counted), for later messages about it.
    pub fn read_numbered_lines(
        path: impl AsRef<Path>,
    ) -> Result<Vec<(usize, ExternalRow)>, RunFileError> {
        let path = path.as_ref();
        let text = crate::input::read_to_string(path).map_err(|cause| RunFileError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = ExternalRow::parse_line(line).map_err(|e| RunFileError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                field: e.field,
                reason: e.reason,
            })?;
            rows.push((i + 1, row));
        }
        Ok(rows)
    }

    /// Shape matches op, dimensions ≥ 1, at least one sample, all finite and ≥ 0, verification
    /// consistent, `imported` rows say `date` and `source`.
    pub fn validate(&self) -> Result<(), RowError> {
        if self.shape.op() != self.op {
            return Err(RowError::new(
                "shape",
                format!(
                    "a {} shape in a {} row",
                    self.shape.op().name(),
                    self.op.name()
                ),
            ));
        }
        self.shape.validate()?;
        if self.samples_s.is_empty() {
            return Err(RowError::new("samples_s", "at least one sample is needed"));
        }
        Sample::from_slice(&self.samples_s)
            .map_err(|e| RowError::new("samples_s", e.to_string()))?;
        self.verification.validate()?;
        if self.tool.trim().is_empty() {
            return Err(RowError::new("tool", "is empty"));
        }
        for (name, v) in [("timing", &self.timing), ("config", &self.config)] {
            if v.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(RowError::new(name, "must be a JSON object"));
            }
        }
        if self.kind == ExternalKind::Imported {
            for (name, v) in [("date", &self.date), ("source", &self.source)] {
                if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    return Err(RowError::new(
                        name,
                        "an `imported` row states its date and source",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The result row: FLOPs and minimal bytes computed from the shape by the documented
    /// conventions ([`Problem::work`]; `executed` is not known for an outside library and is set
    /// to `useful`), statistics of the samples (default bootstrap), provenance from
    /// tool/tool_version/date/source/instance/timing/config. Status: `incorrect` when the
    /// verification failed, `insufficient_samples` under [`MIN_SAMPLES`], else `ok` (an unverified
    /// `ok` row is shown but not ranked: [`Row::is_rankable`]).
    pub fn into_row(self) -> Result<Row, RowError> {
        self.validate()?;
        let work = self.shape.problem()?.work(self.precision);
        let sample = Sample::new(self.samples_s.clone())
            .map_err(|e| RowError::new("samples_s", e.to_string()))?;
        let summary = sample.summary();
        let mut row = Row::new(
            self.kind.into(),
            self.shape,
            self.precision,
            self.device,
            Status::Error,
        );
        row.flops = Some(Flops::exact(work.flops));
        row.min_bytes = Some(work.min_bytes);
        row.set_samples(&sample, &summary);
        row.provenance = Some(Provenance {
            tool: Some(self.tool),
            tool_version: self.tool_version,
            date: self.date,
            source: self.source,
            instance: self.instance,
            timing: self.timing,
            config: self.config,
        });
        let failed = self.verification.verdict == Some(Verdict::Fail);
        row.verification = Some(self.verification);
        if failed {
            row.set_status(
                Status::Incorrect,
                Some("verification failed (external)".into()),
            )?;
        } else if sample.len() < MIN_SAMPLES {
            let msg = format!("{} samples, fewer than {MIN_SAMPLES}", sample.len());
            row.set_status(Status::InsufficientSamples, Some(msg))?;
        } else {
            row.set_status(Status::Ok, None)?;
        }
        row.validate()?;
        Ok(row)
    }
}
