//! Reading columns back into domain types, and the clock and randomness the store supplies
//! to the sans-IO domain crate.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use pbx_domain::ValidationError;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult};

/// The current Unix time in milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A fresh UUID v7 id of any id type, from the clock and the OS random generator.
pub(crate) fn new_id<T>(from_parts: fn(u64, &[u8; 10]) -> T) -> T {
    let millis = u64::try_from(now_ms()).unwrap_or(0);
    from_parts(millis, &rand::random::<[u8; 10]>())
}

/// A text column.
pub(crate) fn text(row: &AnyRow, column: &'static str) -> StoreResult<String> {
    Ok(row.try_get::<String, _>(column)?)
}

/// A nullable text column.
pub(crate) fn text_opt(row: &AnyRow, column: &'static str) -> StoreResult<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(column)?)
}

/// An integer column.
pub(crate) fn int(row: &AnyRow, column: &'static str) -> StoreResult<i64> {
    Ok(row.try_get::<i64, _>(column)?)
}

/// A nullable integer column.
pub(crate) fn int_opt(row: &AnyRow, column: &'static str) -> StoreResult<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(column)?)
}

/// A 0/1 integer column as a bool.
pub(crate) fn flag(row: &AnyRow, column: &'static str) -> StoreResult<bool> {
    Ok(int(row, column)? != 0)
}

/// A text column parsed into a domain type.
pub(crate) fn parse<T>(row: &AnyRow, table: &'static str, column: &'static str) -> StoreResult<T>
where
    T: FromStr<Err = ValidationError>,
{
    text(row, column)?
        .parse()
        .map_err(|source| corrupt(table, column, source))
}

/// A nullable text column parsed into a domain type.
pub(crate) fn parse_opt<T>(
    row: &AnyRow,
    table: &'static str,
    column: &'static str,
) -> StoreResult<Option<T>>
where
    T: FromStr<Err = ValidationError>,
{
    text_opt(row, column)?
        .map(|value| {
            value
                .parse()
                .map_err(|source| corrupt(table, column, source))
        })
        .transpose()
}

/// The error for a stored value that fails validation.
pub(crate) fn corrupt(
    table: &'static str,
    column: &'static str,
    source: ValidationError,
) -> StoreError {
    StoreError::CorruptRow {
        table,
        column,
        source,
    }
}

/// A number column that must fit a narrower type.
pub(crate) fn narrow<T: TryFrom<i64>>(
    value: i64,
    table: &'static str,
    column: &'static str,
) -> StoreResult<T> {
    T::try_from(value).map_err(|_| {
        corrupt(
            table,
            column,
            ValidationError::Inconsistent {
                kind: "number",
                reason: "out of range",
            },
        )
    })
}

/// Turns a count of affected rows into `NotFound` when it is zero.
pub(crate) fn affected(rows_affected: u64, what: &'static str) -> StoreResult<()> {
    if rows_affected == 0 {
        Err(StoreError::NotFound { what })
    } else {
        Ok(())
    }
}
