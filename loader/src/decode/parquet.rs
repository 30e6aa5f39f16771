//! Apache Parquet objects (Security Lake's OCSF data): each row is a record.
//!
//! Parquet puts its index at the end of the file, so the object is read whole first; its rows
//! are then decoded row group after row group, a batch of [`BATCH_ROWS`] rows at a time, so
//! memory holds the (compressed) object and one batch, never the decoded table. Each batch is
//! written as JSON rows by Arrow's own encoder (structs as objects, lists as arrays, maps as
//! objects, nulls left out).

use super::{Item, Position, ReadError, Record, RecordError};
use arrow_array::RecordBatch;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::{BufRead, Read};

/// Rows decoded at a time.
const BATCH_ROWS: usize = 1024;
/// Larger objects are refused: the whole object is held while its rows are read.
const MAX_OBJECT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

pub(super) fn split_parquet(
    reader: &mut dyn BufRead,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    let mut data = Vec::new();
    reader
        .take(MAX_OBJECT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|source| ReadError::Io {
            position: "the start".to_owned(),
            source,
        })?;
    if data.is_empty() {
        return Ok(());
    }
    if data.len() as u64 > MAX_OBJECT_BYTES {
        return Err(structure(format!(
            "a Parquet object over {} GiB is not read",
            MAX_OBJECT_BYTES >> 30
        )));
    }
    // The decoders are not ours: a panic on a malformed file fails this object, not the run.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rows(data, on_item))) {
        Ok(result) => result,
        Err(_) => Err(structure(
            "the Parquet decoder failed on this file (malformed data)".to_owned(),
        )),
    }
}

/// Why the object as a whole cannot be read.
fn structure(reason: String) -> ReadError {
    ReadError::Structure {
        position: Position::Record(0),
        reason,
    }
}

fn rows(data: Vec<u8>, on_item: &mut dyn FnMut(Item<'_>)) -> Result<(), ReadError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(data))
        .map_err(|e| structure(format!("not a readable Parquet file: {e}")))?;
    let batches = builder
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| structure(format!("not a readable Parquet file: {e}")))?;
    let mut row: u64 = 0;
    for batch in batches {
        let batch = batch.map_err(|e| ReadError::Structure {
            position: Position::Record(row),
            reason: format!("Parquet data cannot be decoded: {e}"),
        })?;
        let rows = batch.num_rows() as u64;
        match json_rows(&batch) {
            Ok(lines) => {
                for (offset, line) in lines
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    let position = Position::Record(row + offset as u64);
                    match super::parse_json(line) {
                        Ok(value) => on_item(Item::Record(Record {
                            value,
                            raw: Some(line),
                            position,
                        })),
                        Err(e) => on_item(Item::Error(RecordError {
                            position,
                            reason: format!("row cannot be written as JSON: {e}"),
                        })),
                    }
                }
            }
            Err(reason) => {
                // A column type JSON cannot hold: each row of this batch is reported, the next
                // batch is tried.
                for offset in 0..rows {
                    on_item(Item::Error(RecordError {
                        position: Position::Record(row + offset),
                        reason: format!("the row cannot be written as JSON: {reason}"),
                    }));
                }
            }
        }
        row += rows;
    }
    Ok(())
}

/// The batch as JSON lines.
fn json_rows(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut writer = arrow_json::LineDelimitedWriter::new(Vec::new());
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(writer.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, ArrayRef, Int64Array, ListArray, StringArray, StructArray};
    use arrow_schema::{DataType, Field};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    use serde_json::Value;
    use serde_json::json;
    use std::sync::Arc;

    fn parquet_file(batch: &RecordBatch, props: WriterProperties) -> Vec<u8> {
        let mut out = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
        writer.write(batch).expect("write");
        writer.close().expect("close");
        out
    }

    /// Three OCSF-like rows in row groups of two, gzip pages (as Security Lake writes them).
    fn sample() -> Vec<u8> {
        let user = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("name", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("alice"), None, Some("bob")])) as ArrayRef,
        )]));
        let actor = StructArray::from(vec![(
            Arc::new(Field::new("user", user.data_type().clone(), true)),
            user as ArrayRef,
        )]);
        let ips = ListArray::from_iter_primitive::<arrow_array::types::Int64Type, _, _>(vec![
            Some(vec![Some(1), Some(2)]),
            Some(vec![]),
            None,
        ]);
        let batch = RecordBatch::try_from_iter(vec![
            (
                "time",
                Arc::new(Int64Array::from(vec![
                    1_772_615_702_000,
                    1_772_615_703_000,
                    1_772_615_704_000,
                ])) as ArrayRef,
            ),
            (
                "api_operation",
                Arc::new(StringArray::from(vec![
                    "GetObject",
                    "PutObject",
                    "StopLogging",
                ])) as ArrayRef,
            ),
            ("actor", Arc::new(actor) as ArrayRef),
            ("counts", Arc::new(ips) as ArrayRef),
        ])
        .expect("batch");
        let props = WriterProperties::builder()
            .set_compression(Compression::GZIP(Default::default()))
            .set_max_row_group_row_count(Some(2))
            .build();
        parquet_file(&batch, props)
    }

    type Split = (
        Vec<(Value, Position)>,
        Vec<RecordError>,
        Result<(), ReadError>,
    );

    fn split(bytes: &[u8]) -> Split {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let result = split_parquet(&mut &bytes[..], &mut |item| match item {
            Item::Record(r) => records.push((r.value, r.position)),
            Item::Error(e) => errors.push(e),
            Item::Unparsed(u) => panic!("split parses every record: {u:?}"),
        });
        (records, errors, result)
    }

    #[test]
    fn rows_of_every_row_group_become_nested_json_records() {
        let (records, errors, result) = split(&sample());
        result.expect("readable");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            records,
            vec![
                (
                    json!({"time": 1_772_615_702_000_i64, "api_operation": "GetObject",
                           "actor": {"user": {"name": "alice"}}, "counts": [1, 2]}),
                    Position::Record(0)
                ),
                (
                    json!({"time": 1_772_615_703_000_i64, "api_operation": "PutObject",
                           "actor": {"user": {}}, "counts": []}),
                    Position::Record(1)
                ),
                (
                    json!({"time": 1_772_615_704_000_i64, "api_operation": "StopLogging",
                           "actor": {"user": {"name": "bob"}}}),
                    Position::Record(2)
                ),
            ]
        );
    }

    #[test]
    fn a_truncated_or_foreign_object_is_one_error_naming_parquet() {
        let data = sample();
        for bad in [
            &data[..data.len() - 10],
            b"{\"not\": \"parquet\"}\n".as_slice(),
        ] {
            let (records, _, result) = split(bad);
            assert!(records.is_empty());
            let e = result.expect_err("unreadable").to_string();
            assert!(e.contains("Parquet"), "{e}");
        }
        let (records, errors, result) = split(b"");
        assert!(records.is_empty() && errors.is_empty() && result.is_ok());
    }

    /// `rows` rows of two columns in row groups of `group` rows.
    fn plain(rows: i64, group: usize) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter(vec![
            (
                "time",
                Arc::new(Int64Array::from_iter_values(0..rows)) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("user{i}")),
                )) as ArrayRef,
            ),
        ])
        .expect("batch");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(group))
            .build();
        parquet_file(&batch, props)
    }

    /// Rows are decoded a batch at a time, not as one table: with the second row group's data
    /// destroyed, the first batch's rows are already delivered when the reader stops.
    #[test]
    fn rows_are_decoded_one_batch_at_a_time() {
        let mut data = plain(3000, 1500);
        let metadata = parquet::file::reader::SerializedFileReader::new(Bytes::from(data.clone()))
            .map(|r| parquet::file::reader::FileReader::metadata(&r).clone())
            .expect("metadata");
        assert_eq!(metadata.num_row_groups(), 2);
        for column in metadata.row_group(1).columns() {
            let (start, len) = column.byte_range();
            for byte in &mut data[start as usize..(start + len) as usize] {
                *byte = 0xff;
            }
        }
        let (records, _, result) = split(&data);
        assert_eq!(records.len(), BATCH_ROWS);
        assert_eq!(
            records[BATCH_ROWS - 1].1,
            Position::Record(BATCH_ROWS as u64 - 1)
        );
        assert_eq!(records[7].0, json!({"time": 7, "name": "user7"}));
        let e = result.expect_err("second row group unreadable").to_string();
        assert!(
            e.contains(&format!("record {BATCH_ROWS}")) && e.contains("Parquet"),
            "{e}"
        );
        // Intact, every row of every group.
        let (records, errors, result) = split(&plain(3000, 1500));
        result.expect("readable");
        assert!(errors.is_empty());
        assert_eq!(records.len(), 3000);
        assert_eq!(records[2999].0, json!({"time": 2999, "name": "user2999"}));
    }
}
