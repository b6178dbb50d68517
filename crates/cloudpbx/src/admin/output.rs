//! Printing: aligned text tables for people, JSON for scripts.

use std::io::Write;

use serde::Serialize;

/// Writes `value` as pretty JSON and a newline.
pub fn json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes `rows` under `headers` with columns padded to their widest cell.
pub fn table(out: &mut dyn Write, headers: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(&mut headers.iter().copied()))?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// Writes `key: value` lines with the keys aligned.
pub fn record(out: &mut dyn Write, fields: &[(&str, String)]) -> anyhow::Result<()> {
    let width = fields.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
    for (key, value) in fields {
        writeln!(
            out,
            "{:<width$}  {value}",
            format!("{key}:"),
            width = width + 1
        )?;
    }
    Ok(())
}

/// An optional value for a table cell.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}
