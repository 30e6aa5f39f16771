//! Format-level decoding, with no knowledge of log types: decompression by content, then
//! splitting into records. Everything streams over a [`BufRead`], so memory is bounded by the
//! largest single record, not by the object.
//!
//! One bad record never fails the object: it is handed to the callback as [`Item::Error`] with
//! its position, and splitting goes on (JSON lines resync at the next line). Only a read error
//! (truncated or corrupt compression) or a broken records array stops an object early.

mod json;
mod parquet;
mod text;
mod xml;

pub use text::{FieldsItem, split_named_fields};

use crate::config::{FileFormat, LogType};
use flate2::read::{MultiGzDecoder, ZlibDecoder};
use regex::Regex;
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};

/// The field a record taken out of an EventBridge event carries the event's `time`, `account`
/// and `region` in, for its normalizer (which removes it).
pub const EVENTBRIDGE_FIELD: &str = "@eventbridge";

/// Records larger than this are reported and skipped instead of buffered. No AWS source writes
/// records near it (CloudWatch Logs events are at most 1 MiB, CloudTrail events 256 KiB); a
/// record costs about ten times its size in memory while it is parsed and written, so the
/// limit is also what bounds a load's memory against a single huge line.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;
const BUFFER_BYTES: usize = 256 * 1024;

/// Where a record sits in its object, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a text object (or of a JSON value that starts there).
    Line(u64),
    /// 0-based index in a records array.
    Record(u64),
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One record as split from the object.
#[derive(Debug)]
pub struct Record<'a> {
    pub value: Value,
    /// The record's bytes as they were in the object, when the format keeps them (JSON lines,
    /// text lines): hashed for the `_id` of types without a natural id.
    pub raw: Option<&'a [u8]>,
    pub position: Position,
}

/// A record that could not be split or parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub position: Position,
    pub reason: String,
}

#[derive(Debug)]
pub enum Item<'a> {
    Record(Record<'a>),
    Error(RecordError),
    /// A JSON record whose extent is known but which is not parsed yet: only from
    /// [`Splitter::split_unparsed`], so another thread can parse it.
    Unparsed(Unparsed<'a>),
}

/// The bytes of one JSON record of a records array, and where it is.
#[derive(Debug)]
pub struct Unparsed<'a> {
    pub raw: &'a [u8],
    pub position: Position,
}

impl<'a> Unparsed<'a> {
    /// The record, or why it is not JSON: what the splitter gives when it parses itself.
    pub fn parse(self) -> Item<'a> {
        match parse_json(self.raw) {
            Ok(value) => Item::Record(Record {
                value,
                raw: Some(self.raw),
                position: self.position,
            }),
            Err(e) => Item::Error(RecordError {
                position: self.position,
                reason: format!("invalid JSON: {e}"),
            }),
        }
    }
}

/// A record's JSON. Its UTF-8 is checked once for the whole record, which is much cheaper
/// than the parser's check of every string it reads; invalid UTF-8 is left to that check, so
/// the error names where it is.
pub(crate) fn parse_json(bytes: &[u8]) -> serde_json::Result<Value> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// Why the rest of an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the data ends early or is corrupt after {position}: {source}")]
    Io {
        position: String,
        #[source]
        source: io::Error,
    },
    #[error("{position}: {reason}; the rest of the object is not read")]
    Structure { position: Position, reason: String },
    #[error("the object is not text: {0}; objects are read as gzip, zlib or plain text")]
    NotText(String),
}

/// How an object's records are separated.
#[derive(Debug, Clone)]
pub enum Splitter {
    /// Each top-level JSON object holds the records in the array at this key (`Records`);
    /// with `events`, inside an EventBridge event's `detail` too (types of a configuration).
    JsonArray { key: String, events: bool },
    /// Each top-level JSON value is a record: JSON lines, pretty-printed values one after the
    /// other, or values concatenated without separators (Firehose).
    JsonValues,
    /// Lines; the first `header_lines` are skipped. With `named_fields`, the last header line
    /// names the space-separated fields of each line (`-` = absent); with `pattern`, named
    /// groups become fields; otherwise the record is `{"message": line}`.
    Text {
        header_lines: usize,
        named_fields: bool,
        pattern: Option<Regex>,
    },
    /// A header row, then rows; empty values are left out.
    Csv { delimiter: u8 },
    /// Records of several lines: each starts at a line `first_line` matches and runs to the
    /// next one; `pattern` (with `[\s\S]` for the rest) makes its fields, else `message`.
    Multiline {
        header_lines: usize,
        first_line: Regex,
        pattern: Option<Regex>,
    },
    /// XML records of several lines, each starting at a line `first_line` matches (by default
    /// `<Event`); `windows` gives Windows events the es-loader's shape.
    Xml {
        header_lines: usize,
        first_line: Option<Regex>,
        windows: bool,
    },
    /// Apache Parquet: each row a record.
    Parquet,
    /// JSON values of a type of the configuration, as the es-loader reads them: an EventBridge
    /// event (as Firehose writes them to S3) stands for its `detail`, with the event's id,
    /// time, account and region in [`EVENTBRIDGE_FIELD`].
    JsonEvents,
    /// An object that starts with `{` holds CloudWatch Logs subscription payloads (JSON
    /// values); any other is read by the type's own format (`via_cwl`).
    PayloadsOr(Box<Splitter>),
}

impl Splitter {
    pub fn for_type(log_type: &LogType) -> Self {
        // FireLens delivers JSON lines; the line inside each is read by the type's format.
        if log_type.via_firelens {
            return Self::JsonValues;
        }
        let own = Self::for_format(log_type);
        match own {
            Self::JsonValues | Self::JsonArray { .. } | Self::JsonEvents { .. } | Self::Parquet => {
                own
            }
            _ if log_type.via_cwl => Self::PayloadsOr(Box::new(own)),
            _ => own,
        }
    }

    fn for_format(log_type: &LogType) -> Self {
        match log_type.file_format {
            // A type of the configuration also reads EventBridge events as their `detail`.
            FileFormat::Json => {
                let events = log_type.parser.is_none();
                match (&log_type.json_delimiter, events) {
                    (Some(key), _) => Self::JsonArray {
                        key: key.clone(),
                        events,
                    },
                    (None, true) => Self::JsonEvents,
                    (None, false) => Self::JsonValues,
                }
            }
            FileFormat::Text => Self::Text {
                header_lines: log_type.text_header_line_number,
                named_fields: log_type.text_header_line_number > 0
                    && log_type.log_pattern.is_none(),
                pattern: log_type.log_pattern.as_deref().cloned(),
            },
            FileFormat::Csv => Self::Csv {
                delimiter: log_type.csv_delimiter,
            },
            FileFormat::Xml | FileFormat::WinEvtXml => Self::Xml {
                header_lines: log_type.text_header_line_number,
                first_line: log_type.xml_firstline.as_deref().cloned(),
                windows: log_type.file_format == FileFormat::WinEvtXml,
            },
            FileFormat::Parquet => Self::Parquet,
            FileFormat::Multiline => match &log_type.multiline_firstline {
                Some(first_line) => Self::Multiline {
                    header_lines: log_type.text_header_line_number,
                    first_line: first_line.regex().clone(),
                    pattern: log_type.log_pattern.as_deref().cloned(),
                },
                // The configuration refuses multiline without it; lines, should one get here.
                None => Self::Text {
                    header_lines: log_type.text_header_line_number,
                    named_fields: false,
                    pattern: log_type.log_pattern.as_deref().cloned(),
                },
            },
        }
    }

    /// [`Splitter::split`], but the records of a records array come as [`Item::Unparsed`]
    /// (except those carrying an EventBridge envelope), for the caller to parse where it
    /// likes; other formats split as by [`Splitter::split`].
    pub fn split_unparsed(
        &self,
        reader: &mut dyn BufRead,
        on_item: &mut dyn FnMut(Item<'_>),
    ) -> Result<(), ReadError> {
        self.split_records(reader, true, on_item)
    }

    /// Splits everything `reader` yields, handing each record or record error to `on_item`.
    pub fn split(
        &self,
        reader: &mut dyn BufRead,
        on_item: &mut dyn FnMut(Item<'_>),
    ) -> Result<(), ReadError> {
        self.split_records(reader, false, on_item)
    }

    fn split_records(
        &self,
        reader: &mut dyn BufRead,
        unparsed: bool,
        on_item: &mut dyn FnMut(Item<'_>),
    ) -> Result<(), ReadError> {
        match self {
            Self::JsonArray { key, events } => {
                json::split_array(reader, key, *events, unparsed, on_item)
            }
            Self::JsonValues => json::split_values(reader, on_item),
            Self::Text {
                header_lines,
                named_fields,
                pattern,
            } => text::split_lines(
                reader,
                *header_lines,
                *named_fields,
                pattern.as_ref(),
                on_item,
            ),
            Self::Csv { delimiter } => text::split_csv(reader, *delimiter, on_item),
            Self::Multiline {
                header_lines,
                first_line,
                pattern,
            } => {
                text::split_multiline(reader, *header_lines, first_line, pattern.as_ref(), on_item)
            }
            Self::Xml {
                header_lines,
                first_line,
                windows,
            } => xml::split_xml(
                reader,
                *header_lines,
                first_line.as_ref(),
                *windows,
                on_item,
            ),
            Self::Parquet => parquet::split_parquet(reader, on_item),
            Self::JsonEvents => json::split_values(reader, &mut |item| match item {
                Item::Record(record) => on_item(Item::Record(json::event_detail(record))),
                error => on_item(error),
            }),
            Self::PayloadsOr(own) => {
                let first = first_significant_byte(reader).map_err(|source| ReadError::Io {
                    position: "the start".to_owned(),
                    source,
                })?;
                if first == Some(b'{') {
                    json::split_values(reader, on_item)
                } else {
                    own.split(reader, on_item)
                }
            }
        }
    }
}

/// A CloudWatch Logs message routed to a configured type, as a record of its objects: a JSON
/// value, the named groups of `log_pattern`, XML elements, or `{"message": ...}`.
pub fn message_records(log_type: &LogType, message: &str) -> Result<Vec<Value>, String> {
    match log_type.file_format {
        FileFormat::Json => serde_json::from_str::<Value>(message)
            .map(|v| vec![v])
            .map_err(|e| format!("the message is not JSON: {e}")),
        FileFormat::Xml | FileFormat::WinEvtXml => {
            xml::message_elements(message, log_type.file_format == FileFormat::WinEvtXml)
        }
        // The whole message without a pattern; its trailing line break does not count for one.
        _ => match &log_type.log_pattern {
            Some(re) => text::text_fields(Some(re), message.trim_end(), "message"),
            None => text::text_fields(None, message, "message"),
        }
        .map(|v| vec![v]),
    }
}

/// Compression as the content says (gzip magic, possibly several members; zlib header), not
/// as the name says; anything else passes through.
pub fn decompress<'r, R: Read + 'r>(reader: R) -> io::Result<Box<dyn BufRead + 'r>> {
    let mut inner = BufReader::with_capacity(BUFFER_BYTES, reader);
    let head = fill_at_least(&mut inner, 2)?;
    Ok(match head.as_slice() {
        [0x1f, 0x8b, ..] => Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(inner),
        )),
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            ZlibDecoder::new(inner),
        )),
        _ => Box::new(inner),
    })
}

/// How much of the (decompressed) start of an object is looked at to tell text from binary.
const TEXT_PROBE_BYTES: usize = 8 * 1024;

/// Content that is neither empty, gzip, zlib nor text is named, never split into records that
/// all fail (or into none, for NUL bytes): another compression, or binary data. Text in any
/// 8-bit encoding passes; NUL bytes or more than 1% control characters do not. A UTF-8 byte
/// order mark (Windows tools write one) is skipped.
pub fn check_text(reader: &mut dyn BufRead) -> Result<(), ReadError> {
    let buf = buffered(reader).map_err(|source| ReadError::Io {
        position: "the start".to_owned(),
        source,
    })?;
    if buf.starts_with(&[0xef, 0xbb, 0xbf]) {
        reader.consume(3);
        return check_text(reader);
    }
    let head = &buf[..buf.len().min(TEXT_PROBE_BYTES)];
    let other = match head {
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some("zstd-compressed data"),
        [b'B', b'Z', b'h', ..] => Some("bzip2-compressed data"),
        [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Some("xz-compressed data"),
        [b'P', b'K', 3, 4, ..] => Some("a zip archive"),
        [0xff, 0xfe, ..] | [0xfe, 0xff, ..] => Some("UTF-16 text (text is read as UTF-8)"),
        [b'P', b'A', b'R', b'1', ..] => {
            Some("a Parquet file (for a type whose file_format is not parquet)")
        }
        _ => None,
    };
    if let Some(what) = other {
        return Err(ReadError::NotText(format!("it is {what}")));
    }
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    if head.contains(&0) || control * 100 > head.len() {
        let first: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(ReadError::NotText(format!(
            "it holds binary data{} (it starts with bytes {})",
            if head.contains(&0) {
                " with NUL bytes"
            } else {
                ""
            },
            first.join(" ")
        )));
    }
    Ok(())
}

/// The first byte that is not white space in what the reader has buffered, without consuming
/// anything (line numbers stay as they are).
fn first_significant_byte(reader: &mut dyn BufRead) -> io::Result<Option<u8>> {
    let buf = buffered(reader)?;
    Ok(buf.iter().copied().find(|b| !b.is_ascii_whitespace()))
}

/// What the reader has buffered (read once more while empty), without consuming it.
fn buffered(reader: &mut dyn BufRead) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    // Asked again once filled (it reads nothing then): a buffer borrowed inside the retry loop
    // cannot be returned from it.
    reader.fill_buf()
}

/// The first `n` bytes (fewer at the end of the data) without consuming them. A `BufReader`
/// may return a short first read; this only looks at what is buffered, which for the magic
/// bytes of a fresh reader is enough in practice, and is retried while the buffer is empty.
fn fill_at_least<R: Read>(reader: &mut BufReader<R>, n: usize) -> io::Result<Vec<u8>> {
    let buf = buffered(reader)?;
    Ok(buf[..buf.len().min(n)].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder, write::ZlibEncoder};
    use std::io::Write;

    pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(data).expect("write");
        enc.finish().expect("finish")
    }

    #[test]
    fn records_parse_as_the_parser_alone_parses_them() {
        let cases: [&[u8]; 6] = [
            br#"{"a":"caf\u00e9","b":[1,2.5,-3e2,null,true],"c":{"d":"\"q\""}}"#,
            "{\"name\":\"caf\u{e9} \u{1f600}\"}".as_bytes(),
            b"{\"name\":\"bad \xff byte\"}",
            b"{\"a\":1,\"b\":\"\xc3\"}",
            br#"{"a":"\ud800"}"#,
            br#"{"a":1,}"#,
        ];
        for bytes in cases {
            let ours = parse_json(bytes).map_err(|e| e.to_string());
            let parser = serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string());
            assert_eq!(ours, parser, "{}", String::from_utf8_lossy(bytes));
        }
        assert!(parse_json(b"{\"name\":\"bad \xff byte\"}").is_err());
    }

    fn read_all(bytes: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompress(bytes)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_with_several_members_zlib_and_plain() {
        let mut two = gzip(b"first\n");
        two.extend(gzip(b"second\n"));
        assert_eq!(read_all(&two).expect("gzip"), b"first\nsecond\n");
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(b"{\"a\":1}").expect("write");
        assert_eq!(
            read_all(&z.finish().expect("zlib")).expect("zlib"),
            b"{\"a\":1}"
        );
        assert_eq!(read_all(b"plain text").expect("plain"), b"plain text");
        assert_eq!(read_all(b"").expect("empty"), b"");
        assert_eq!(read_all(b"x").expect("one byte"), b"x");
    }

    fn check(bytes: &[u8]) -> Result<(), String> {
        let mut reader = decompress(bytes).map_err(|e| e.to_string())?;
        check_text(&mut *reader).map_err(|e| e.to_string())
    }

    #[test]
    fn binary_content_and_other_compressions_are_named() {
        assert_eq!(check(b""), Ok(()));
        assert_eq!(check(b"{\"Records\": []}"), Ok(()));
        assert_eq!(check(&gzip(b"a line\n")), Ok(()));
        // Latin-1 text is text.
        assert_eq!(check(b"caf\xe9 cr\xe8me\n"), Ok(()));
        // A UTF-8 byte order mark is skipped.
        let mut reader = decompress(&b"\xef\xbb\xbf{}"[..]).expect("reader");
        check_text(&mut *reader).expect("text");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("read");
        assert_eq!(rest, "{}");
        let nul = check(&[0u8; 1000]).expect_err("NUL bytes");
        assert!(nul.contains("binary data") && nul.contains("NUL"), "{nul}");
        let mut random = Vec::new();
        let mut x: u32 = 7;
        for _ in 0..3000 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            random.push((x >> 16) as u8);
        }
        let err = check(&random).expect_err("random bytes");
        assert!(err.contains("not text") && err.contains("binary"), "{err}");
        for (magic, what) in [
            (&[0x28u8, 0xb5, 0x2f, 0xfd, 0][..], "zstd"),
            (b"BZh91AY&SY", "bzip2"),
            (b"PAR1\x15\x04", "Parquet"),
            (b"\xff\xfe<\0E\0", "UTF-16"),
        ] {
            let err = check(magic).expect_err(what);
            assert!(err.contains(what), "{err}");
        }
    }

    #[test]
    fn truncated_gzip_is_an_io_error() {
        let data = gzip(&b"line of text\n".repeat(1000));
        let cut = &data[..data.len() / 2];
        assert!(read_all(cut).is_err());
    }
}
