//! `perfledger import`: external rows (JSON lines from the reference scripts) into a run file.

use super::{usage, ImportArgs, EXIT_OK};
use crate::runfile::{RowKind, RunFile};
use anyhow::Result;

pub(crate) fn cmd_import(args: ImportArgs) -> Result<u8> {
    let mut run = RunFile::read(&args.into)?;
    let rows = crate::runfile::ExternalRow::read_numbered_lines(&args.file)?;
    if rows.is_empty() {
        anyhow::bail!(usage(format!(
            "{}: no rows (the file is empty or blank); {} is left as it is",
            args.file.display(),
            args.into.display()
        )));
    }
    let mut added = 0;
    for (line, ext) in rows {
        let row = ext
            .into_row()
            .map_err(|e| usage(format!("{}: line {line}: {e}", args.file.display())))?;
        debug_assert!(matches!(row.kind, RowKind::Peer | RowKind::Imported));
        run.results.push(row);
        added += 1;
    }
    run.write(&args.into, true)?;
    println!(
        "imported {added} rows from {} into {}",
        args.file.display(),
        args.into.display()
    );
    Ok(EXIT_OK)
}
