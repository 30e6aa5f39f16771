//! Text splitting: lines (with header lines, named fields or a regex), and CSV.

use super::{Item, MAX_RECORD_BYTES, Position, ReadError, Record, RecordError};
use regex::Regex;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::io::{self, BufRead};

/// Reads one line into `line` (without the line break); keeps at most `MAX_RECORD_BYTES` and
/// says whether more was dropped. `Ok(None)` at the end of the data.
fn read_line(reader: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<Option<bool>> {
    line.clear();
    let mut oversized = false;
    let mut any = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        any = true;
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(p) => (p, true),
            None => (buf.len(), false),
        };
        if line.len() + take <= MAX_RECORD_BYTES {
            line.extend_from_slice(&buf[..take]);
        } else {
            oversized = true;
        }
        reader.consume(if done { take + 1 } else { take });
        if done {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(oversized))
}

/// One line of a text object, as [`for_each_line`] hands it over.
enum Line<'a> {
    /// A header line (1-based number) with its text.
    Header(u64, &'a str),
    Data {
        text: &'a str,
        raw: &'a [u8],
        position: Position,
    },
    Error(RecordError),
}

/// Reads the lines of a text object: header lines, then data lines (blank ones skipped, an
/// oversized one reported), each as text (invalid UTF-8 replaced).
fn for_each_line(
    reader: &mut dyn BufRead,
    header_lines: usize,
    on_line: &mut dyn FnMut(Line<'_>),
) -> Result<(), ReadError> {
    let mut line = Vec::with_capacity(1024);
    let mut number: u64 = 0;
    loop {
        let oversized = match read_line(reader, &mut line) {
            Ok(Some(oversized)) => oversized,
            Ok(None) => return Ok(()),
            Err(source) => {
                return Err(ReadError::Io {
                    position: Position::Line(number).to_string(),
                    source,
                });
            }
        };
        number += 1;
        let position = Position::Line(number);
        if number as usize <= header_lines {
            on_line(Line::Header(number, &String::from_utf8_lossy(&line)));
            continue;
        }
        if oversized {
            on_line(Line::Error(RecordError {
                position,
                reason: format!(
                    "line longer than {} MiB, skipped",
                    MAX_RECORD_BYTES / (1024 * 1024)
                ),
            }));
            continue;
        }
        let text = match std::str::from_utf8(&line) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(&line),
        };
        if text.trim().is_empty() {
            continue;
        }
        on_line(Line::Data {
            text: &text,
            raw: &line,
            position,
        });
    }
}

/// One line of a text object whose last header line names its space-separated fields.
#[derive(Debug)]
pub enum FieldsItem<'a> {
    /// The field names, before the first line.
    Header(&'a [String]),
    /// A line's values in header order (`-` = absent), with its bytes as in the object.
    Line {
        values: &'a [&'a str],
        raw: &'a [u8],
        position: Position,
    },
    Error(RecordError),
}

/// Splits a text object with a header line naming its fields, handing each line's values
/// without building a record: the fast path of high-volume types.
pub fn split_named_fields(
    reader: &mut dyn BufRead,
    header_lines: usize,
    on_item: &mut dyn FnMut(FieldsItem<'_>),
) -> Result<(), ReadError> {
    let mut fields: Vec<String> = Vec::new();
    let mut values: Vec<&str> = Vec::new();
    for_each_line(reader, header_lines, &mut |line| match line {
        Line::Header(number, text) => {
            if number as usize == header_lines {
                fields = text.split_ascii_whitespace().map(str::to_owned).collect();
                on_item(FieldsItem::Header(&fields));
            }
        }
        Line::Data {
            text,
            raw,
            position,
        } => {
            if fields.is_empty() {
                on_item(FieldsItem::Error(RecordError {
                    position,
                    reason: "no header line names the fields".to_owned(),
                }));
                return;
            }
            let mut line_values = std::mem::take(&mut values);
            line_values.clear();
            line_values.extend(text.split_ascii_whitespace());
            if line_values.len() == fields.len() {
                on_item(FieldsItem::Line {
                    values: &line_values,
                    raw,
                    position,
                });
            } else {
                on_item(FieldsItem::Error(RecordError {
                    position,
                    reason: format!(
                        "{} fields where the header names {}",
                        line_values.len(),
                        fields.len()
                    ),
                }));
            }
            // The buffer is kept for the next line, emptied of its borrows.
            line_values.clear();
            values = reuse(line_values);
        }
        Line::Error(e) => on_item(FieldsItem::Error(e)),
    })
}

/// An empty vector's allocation, free of the lifetime of what it held.
fn reuse<'b>(mut v: Vec<&str>) -> Vec<&'b str> {
    v.clear();
    v.into_iter().map(|_| "").collect()
}

pub(super) fn split_lines(
    reader: &mut dyn BufRead,
    header_lines: usize,
    named_fields: bool,
    pattern: Option<&Regex>,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    if named_fields {
        let mut order: Vec<usize> = Vec::new();
        let mut names: Vec<String> = Vec::new();
        return split_named_fields(reader, header_lines, &mut |item| match item {
            FieldsItem::Header(fields) => {
                names = fields.to_vec();
                order = sorted_order(fields);
            }
            FieldsItem::Line {
                values,
                raw,
                position,
            } => on_item(Item::Record(Record {
                value: named_record(&names, &order, values),
                raw: Some(raw),
                position,
            })),
            FieldsItem::Error(e) => on_item(Item::Error(e)),
        });
    }
    for_each_line(reader, header_lines, &mut |line| match line {
        Line::Header(..) => {}
        Line::Error(e) => on_item(Item::Error(e)),
        Line::Data {
            text,
            raw,
            position,
        } => {
            emit(text_fields(pattern, text, "line"), raw, position, on_item);
        }
    })
}

/// A text record as fields: the named groups of `log_pattern` (`what` names the record in the
/// error: line or message), else `{"message": text}`.
pub(super) fn text_fields(
    pattern: Option<&Regex>,
    text: &str,
    what: &str,
) -> Result<Value, String> {
    match pattern {
        Some(re) => pattern_fields(re, text, what),
        None => {
            let mut map = Map::new();
            map.insert("message".to_owned(), Value::String(text.to_owned()));
            Ok(Value::Object(map))
        }
    }
}

/// A record, or the reason its text could not be one.
fn emit(
    value: Result<Value, String>,
    raw: &[u8],
    position: Position,
    on_item: &mut dyn FnMut(Item<'_>),
) {
    match value {
        Ok(value) => on_item(Item::Record(Record {
            value,
            raw: Some(raw),
            position,
        })),
        Err(reason) => on_item(Item::Error(RecordError { position, reason })),
    }
}

/// The positions of the header's fields in name order (ties in header order).
fn sorted_order(fields: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fields.len()).collect();
    order.sort_by(|&a, &b| fields[a].cmp(&fields[b]));
    order
}

/// Values named by the header (as many as it names); `-` means absent. The map is built from
/// the fields in name order (`order`), which spares a search per field; a name the header
/// repeats keeps its last value, as inserting field by field would.
fn named_record(fields: &[String], order: &[usize], values: &[&str]) -> Value {
    let map: Map<String, Value> = order
        .iter()
        .filter_map(|&i| {
            let value = *values.get(i)?;
            let name = fields.get(i)?;
            (value != "-").then(|| (name.clone(), Value::String(value.to_owned())))
        })
        .collect();
    Value::Object(map)
}

/// The named groups of `log_pattern` over one record (`what`: line or message, for the error).
fn pattern_fields(re: &Regex, text: &str, what: &str) -> Result<Value, String> {
    let caps = re
        .captures(text)
        .ok_or_else(|| format!("the {what} does not match log_pattern"))?;
    let mut map = Map::new();
    for name in re.capture_names().flatten() {
        if let Some(m) = caps.name(name) {
            map.insert(name.to_owned(), Value::String(m.as_str().to_owned()));
        }
    }
    Ok(Value::Object(map))
}

/// Splits records of several lines: a record starts at a line `first_line` matches (lines
/// before the first such line make a record of their own) and takes the lines up to the next
/// one, joined with `\n`, trailing blank lines dropped. A record over [`MAX_RECORD_BYTES`] is
/// reported by its first line and skipped.
pub(super) fn split_multiline(
    reader: &mut dyn BufRead,
    header_lines: usize,
    first_line: &Regex,
    pattern: Option<&Regex>,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    for_each_chunk(reader, header_lines, first_line, &mut |chunk| {
        let (record, position) = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return on_item(Item::Error(error)),
        };
        let text = String::from_utf8_lossy(record);
        emit(
            text_fields(pattern, &text, "record"),
            record,
            position,
            on_item,
        );
    })
}

/// A record of several lines with the line it starts at, or why it was skipped.
pub(super) type Chunk<'a> = Result<(&'a [u8], Position), RecordError>;

/// The records of several lines of a `multiline` (or XML) object, each handed over as its
/// bytes with the line it starts at, or an oversized one as an error.
pub(super) fn for_each_chunk(
    reader: &mut dyn BufRead,
    header_lines: usize,
    first_line: &Regex,
    on_chunk: &mut dyn FnMut(Chunk<'_>),
) -> Result<(), ReadError> {
    let mut line = Vec::with_capacity(1024);
    let mut record: Vec<u8> = Vec::with_capacity(4096);
    let mut start: Option<u64> = None;
    let mut oversized = false;
    let mut number: u64 = 0;
    let mut emit = |record: &mut Vec<u8>, start: u64, oversized: bool| {
        while record.last().is_some_and(|b| *b == b'\n') {
            record.pop();
        }
        let position = Position::Line(start);
        if oversized {
            on_chunk(Err(RecordError {
                position,
                reason: format!(
                    "record longer than {} MiB, skipped",
                    MAX_RECORD_BYTES / (1024 * 1024)
                ),
            }));
        } else if !record.is_empty() {
            on_chunk(Ok((record, position)));
        }
        record.clear();
    };
    loop {
        let cut = match read_line(reader, &mut line) {
            Ok(Some(cut)) => cut,
            Ok(None) => break,
            Err(source) => {
                return Err(ReadError::Io {
                    position: Position::Line(number).to_string(),
                    source,
                });
            }
        };
        number += 1;
        if number as usize <= header_lines {
            continue;
        }
        let text = String::from_utf8_lossy(&line);
        if first_line.is_match(&text) || start.is_none() {
            if let Some(s) = start {
                emit(&mut record, s, oversized);
            }
            start = Some(number);
            oversized = false;
        } else {
            record.push(b'\n');
        }
        if cut || record.len() + line.len() > MAX_RECORD_BYTES {
            oversized = true;
        } else if !oversized {
            record.extend_from_slice(&line);
        }
    }
    if let Some(s) = start {
        emit(&mut record, s, oversized);
    }
    Ok(())
}

pub(super) fn split_csv(
    reader: &mut dyn BufRead,
    delimiter: u8,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let headers = match csv.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(csv_error(e, 1)),
    };
    let mut row = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                let position = Position::Line(line);
                if row.len() != headers.len() {
                    on_item(Item::Error(RecordError {
                        position,
                        reason: format!(
                            "{} fields where the header names {}",
                            row.len(),
                            headers.len()
                        ),
                    }));
                    continue;
                }
                let mut map = Map::new();
                for (name, value) in headers.iter().zip(row.iter()) {
                    if !value.is_empty() {
                        map.insert(name.to_owned(), Value::String(value.to_owned()));
                    }
                }
                on_item(Item::Record(Record {
                    value: Value::Object(map),
                    raw: Some(row.as_slice().as_bytes()),
                    position,
                }));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(csv_error(e, line));
                }
                on_item(Item::Error(RecordError {
                    position: Position::Line(line),
                    reason: e.to_string(),
                }));
            }
        }
    }
}

fn csv_error(e: csv::Error, line: u64) -> ReadError {
    match e.into_kind() {
        csv::ErrorKind::Io(source) => ReadError::Io {
            position: Position::Line(line).to_string(),
            source,
        },
        other => ReadError::Structure {
            position: Position::Line(line),
            reason: format!("{other:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Item, Position, Splitter};
    use regex::Regex;
    use serde_json::{Value, json};

    type Split = (Vec<(Value, Position)>, Vec<(Position, String)>);

    fn run(splitter: &Splitter, data: &[u8]) -> Split {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let mut reader = data;
        splitter
            .split(&mut reader, &mut |item| match item {
                Item::Record(r) => records.push((r.value, r.position)),
                Item::Error(e) => errors.push((e.position, e.reason)),
                Item::Unparsed(u) => panic!("split parses every record: {u:?}"),
            })
            .expect("no read error");
        (records, errors)
    }

    #[test]
    fn header_names_fields_dash_is_absent_and_the_last_line_counts() {
        let splitter = Splitter::Text {
            header_lines: 1,
            named_fields: true,
            pattern: None,
        };
        let data = b"version srcaddr dstport action\r\n2 192.0.2.1 443 ACCEPT\n2 - - NODATA\n2 192.0.2.9 22\n2 198.51.100.1 80 REJECT";
        let (records, errors) = run(&splitter, data);
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[0].0,
            json!({"version": "2", "srcaddr": "192.0.2.1", "dstport": "443", "action": "ACCEPT"})
        );
        assert_eq!(records[1].0, json!({"version": "2", "action": "NODATA"}));
        assert_eq!(records[2].1, Position::Line(5));
        assert_eq!(
            errors,
            [(
                Position::Line(4),
                "3 fields where the header names 4".to_owned()
            )]
        );
        let (records, errors) = run(&splitter, b"version srcaddr\n");
        assert!(records.is_empty() && errors.is_empty());
    }

    #[test]
    fn a_repeated_header_name_keeps_its_last_present_value() {
        let splitter = Splitter::Text {
            header_lines: 1,
            named_fields: true,
            pattern: None,
        };
        let (records, errors) = run(&splitter, b"b a b c a\n1 2 3 - -\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records[0].0, json!({"a": "2", "b": "3"}));
    }

    #[test]
    fn plain_lines_and_patterns() {
        let plain = Splitter::Text {
            header_lines: 0,
            named_fields: false,
            pattern: None,
        };
        let (records, _) = run(&plain, b"May  1 00:00:01 host sshd[1]: hi\n\n");
        assert_eq!(
            records,
            [(
                json!({"message": "May  1 00:00:01 host sshd[1]: hi"}),
                Position::Line(1)
            )]
        );
        let pattern = Splitter::Text {
            header_lines: 0,
            named_fields: false,
            pattern: Some(Regex::new(r"^(?P<ip>\S+) (?P<user>\S+)( (?P<opt>x))?$").expect("re")),
        };
        let (records, errors) = run(&pattern, b"192.0.2.1 alice\nnope\n");
        assert_eq!(records[0].0, json!({"ip": "192.0.2.1", "user": "alice"}));
        assert_eq!(errors[0].0, Position::Line(2));
    }

    #[test]
    fn csv_rows() {
        let (records, errors) = run(
            &Splitter::Csv { delimiter: b',' },
            b"a,b\n1,\"x,y\"\n2,\n3\n",
        );
        assert_eq!(records[0].0, json!({"a": "1", "b": "x,y"}));
        assert_eq!(records[1].0, json!({"a": "2"}));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, Position::Line(4));
    }
}
