//! JSON splitting: records arrays streamed element by element, and sequences of top-level
//! values (JSON lines, pretty-printed one after the other, or concatenated without newlines).

use super::{Item, MAX_RECORD_BYTES, Position, ReadError, Record, RecordError, Unparsed};
use serde_json::Value;
use std::io::{self, BufRead};

/// Streams the elements of the array at `key` of each top-level object (`{"Records": [...]}`)
/// without holding the document: a byte scanner finds each element's extent, which is parsed
/// on its own (so its raw bytes are at hand, and a bad element costs only itself). A top-level
/// array is taken as the records array itself.
///
/// With `events`, a top-level EventBridge event (as Firehose writes them to S3) is looked into:
/// the array is taken from its `detail`, and each record carries the event's `id`, `time`,
/// `account` and `region` in [`super::EVENTBRIDGE_FIELD`] (those keys come before `detail` in
/// the events AWS writes).
///
/// With `unparsed`, records without an envelope come as [`Item::Unparsed`].
pub(super) fn split_array(
    reader: &mut dyn BufRead,
    key: &str,
    events: bool,
    unparsed: bool,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    let mut scanner = ArrayScanner {
        key: key.as_bytes(),
        events,
        unparsed,
        key_depth: 1,
        detail_matched: false,
        await_detail: false,
        envelope_key: None,
        await_envelope: false,
        capturing_envelope: false,
        envelope_buf: Vec::new(),
        envelope: serde_json::Map::new(),
        buf: Vec::with_capacity(8192),
        key_buf: Vec::new(),
        depth: 0,
        in_string: false,
        escape: false,
        capturing_key: false,
        expect_key: false,
        key_matched: false,
        await_array: false,
        key_not_array: None,
        found: false,
        array_depth: None,
        in_element: false,
        element_from: 0,
        element_scalar: false,
        oversized: false,
        index: 0,
        on_item,
    };
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ReadError::Io {
                    position: Position::Record(scanner.index).to_string(),
                    source,
                });
            }
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        scanner.scan(chunk);
        reader.consume(len);
    }
    scanner.finish()
}

/// Byte-level state of [`split_array`]: nesting depth, strings, the keys of the top-level
/// object, and the extent of the current element.
struct ArrayScanner<'k, 'f> {
    key: &'k [u8],
    /// Look into EventBridge events (see [`split_array`]).
    events: bool,
    /// Hand records over unparsed (see [`split_array`]).
    unparsed: bool,
    /// The depth of the object whose keys are read: 1, or 2 inside an event's `detail`.
    key_depth: u32,
    detail_matched: bool,
    await_detail: bool,
    /// Which envelope key (of [`ENVELOPE_KEYS`]) was just read, and its string value.
    envelope_key: Option<usize>,
    await_envelope: bool,
    capturing_envelope: bool,
    envelope_buf: Vec<u8>,
    envelope: serde_json::Map<String, Value>,
    buf: Vec<u8>,
    key_buf: Vec<u8>,
    depth: u32,
    in_string: bool,
    escape: bool,
    /// Reading a key of the top-level object.
    capturing_key: bool,
    expect_key: bool,
    key_matched: bool,
    /// The key matched and its `:` was seen: the next value should be the array.
    await_array: bool,
    /// What the records key held when it was no array (named in the error).
    key_not_array: Option<&'static str>,
    /// The current document had the array.
    found: bool,
    /// Depth inside the records array, while in it.
    array_depth: Option<u32>,
    in_element: bool,
    /// Where the current element starts in the chunk being scanned (0 when it began in an
    /// earlier chunk, whose part is in `buf`). An element inside one chunk is handed over as a
    /// slice of it, never copied.
    element_from: usize,
    element_scalar: bool,
    oversized: bool,
    index: u64,
    on_item: &'f mut dyn FnMut(Item<'_>),
}

/// The envelope fields of an EventBridge event kept with its records.
const ENVELOPE_KEYS: [&str; 5] = ["detail-type", "id", "time", "account", "region"];

impl ArrayScanner<'_, '_> {
    fn push(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() <= MAX_RECORD_BYTES {
            self.buf.extend_from_slice(bytes);
        } else {
            self.oversized = true;
        }
    }

    fn start_element(&mut self, at: usize) {
        self.in_element = true;
        self.element_from = at;
        self.element_scalar = false;
        self.oversized = false;
        self.buf.clear();
    }

    /// The element ends with `tail`, its part in the chunk being scanned.
    fn end_element(&mut self, tail: &[u8]) {
        self.in_element = false;
        let position = Position::Record(self.index);
        self.index += 1;
        let whole = if self.buf.is_empty() && !self.oversized {
            self.oversized = tail.len() > MAX_RECORD_BYTES;
            tail
        } else {
            self.push(tail);
            &self.buf
        };
        if self.oversized {
            (self.on_item)(Item::Error(RecordError {
                position,
                reason: format!(
                    "record larger than {} MiB, skipped",
                    MAX_RECORD_BYTES / (1024 * 1024)
                ),
            }));
            return;
        }
        let text = trim_ascii(whole);
        let unparsed = Unparsed {
            raw: text,
            position,
        };
        if !self.envelope.contains_key("detail-type") {
            let item = if self.unparsed {
                Item::Unparsed(unparsed)
            } else {
                unparsed.parse()
            };
            return (self.on_item)(item);
        }
        // An event's records carry its envelope; their ids come from what is loaded (which
        // names the event), not from bytes two events may share.
        match unparsed.parse() {
            Item::Record(Record {
                value: Value::Object(mut record),
                ..
            }) => {
                record.insert(
                    super::EVENTBRIDGE_FIELD.to_owned(),
                    Value::Object(self.envelope.clone()),
                );
                (self.on_item)(Item::Record(Record {
                    value: Value::Object(record),
                    raw: None,
                    position,
                }))
            }
            other => (self.on_item)(other),
        }
    }

    fn end_document(&mut self) {
        if !self.found {
            let key = String::from_utf8_lossy(self.key);
            let reason = match self.key_not_array {
                Some(what) => format!("`{key}` holds {what}, not an array of records"),
                None => format!("the JSON document has no `{key}` key"),
            };
            (self.on_item)(Item::Error(RecordError {
                position: Position::Record(self.index),
                reason,
            }));
        }
        self.found = false;
        self.key_not_array = None;
        self.expect_key = false;
        self.key_matched = false;
        self.await_array = false;
        self.key_depth = 1;
        self.detail_matched = false;
        self.await_detail = false;
        self.await_envelope = false;
        self.envelope.clear();
    }

    fn scan(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            // Skip runs of ordinary string bytes at once.
            if self.in_string && !self.escape {
                let run = chunk[i..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\')
                    .unwrap_or(chunk.len() - i);
                if run > 0 {
                    if self.capturing_key && self.key_buf.len() < 256 {
                        self.key_buf.extend_from_slice(&chunk[i..i + run]);
                    }
                    if self.capturing_envelope && self.envelope_buf.len() < 1024 {
                        self.envelope_buf.extend_from_slice(&chunk[i..i + run]);
                    }
                    i += run;
                    continue;
                }
            }
            // Inside an element (below the array's level), only strings and nesting matter.
            if self.in_element
                && !self.in_string
                && self.array_depth.is_some_and(|level| self.depth > level)
            {
                let run = chunk[i..]
                    .iter()
                    .position(|&c| matches!(c, b'"' | b'{' | b'[' | b'}' | b']'))
                    .unwrap_or(chunk.len() - i);
                if run > 0 {
                    i += run;
                    continue;
                }
            }
            let b = chunk[i];
            i += 1;
            if self.in_string {
                if self.escape {
                    self.escape = false;
                    if self.capturing_key {
                        self.key_buf.push(b);
                    }
                    if self.capturing_envelope {
                        self.envelope_buf.push(b);
                    }
                } else if b == b'\\' {
                    self.escape = true;
                    if self.capturing_key {
                        self.key_buf.push(b);
                    }
                    if self.capturing_envelope {
                        self.envelope_buf.push(b);
                    }
                } else if b == b'"' {
                    self.in_string = false;
                    if self.capturing_key {
                        self.capturing_key = false;
                        self.key_matched = self.key_buf == self.key;
                        if self.events && self.depth == 1 {
                            self.detail_matched = self.key_buf == b"detail";
                            self.envelope_key = ENVELOPE_KEYS
                                .iter()
                                .position(|k| k.as_bytes() == self.key_buf);
                        }
                    }
                    if self.capturing_envelope {
                        self.capturing_envelope = false;
                        self.keep_envelope_value();
                    }
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                continue;
            }
            // Inside the records array, at the level of its elements.
            if let Some(level) = self.array_depth
                && self.depth == level
            {
                if self.in_element && self.element_scalar && (b == b',' || b == b']') {
                    self.end_element(&chunk[self.element_from..i - 1]);
                }
                match b {
                    b',' => continue,
                    b']' => {
                        self.array_depth = None;
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.end_document();
                        }
                        continue;
                    }
                    _ => {
                        if !self.in_element {
                            self.start_element(i - 1);
                        }
                    }
                }
                match b {
                    b'{' | b'[' => self.depth += 1,
                    b'"' => {
                        self.in_string = true;
                        self.element_scalar = true;
                    }
                    _ => self.element_scalar = true,
                }
                continue;
            }
            match b {
                b'"' => {
                    self.in_string = true;
                    if self.await_array {
                        self.key_not_array = Some("a string");
                    }
                    if self.depth == self.key_depth && self.array_depth.is_none() && self.expect_key
                    {
                        self.capturing_key = true;
                        self.expect_key = false;
                        self.key_buf.clear();
                    } else if self.await_envelope {
                        self.capturing_envelope = true;
                        self.envelope_buf.clear();
                    }
                    self.await_array = false;
                    self.await_envelope = false;
                    self.await_detail = false;
                }
                b'{' | b'[' => {
                    if self.depth == 0 {
                        if b == b'[' {
                            // A bare array of records.
                            self.found = true;
                            self.array_depth = Some(1);
                        } else {
                            self.expect_key = true;
                        }
                    } else if self.await_array && b == b'[' && self.depth == self.key_depth {
                        self.found = true;
                        self.array_depth = Some(self.key_depth + 1);
                    } else if self.await_array {
                        self.key_not_array = Some("an object");
                    }
                    let into_detail = self.await_detail && b == b'{' && self.depth == 1;
                    self.await_array = false;
                    self.await_envelope = false;
                    self.await_detail = false;
                    self.depth += 1;
                    if into_detail {
                        self.key_depth = 2;
                        self.expect_key = true;
                    }
                }
                b'}' | b']' => {
                    self.await_array = false;
                    if self.depth == 0 {
                        continue;
                    }
                    self.depth -= 1;
                    if self.key_depth == 2 && self.depth == 1 {
                        // The event's detail is closed.
                        self.key_depth = 1;
                    }
                    if self.in_element && Some(self.depth) == self.array_depth {
                        self.end_element(&chunk[self.element_from..i]);
                    } else if self.depth == 0 {
                        self.end_document();
                    }
                }
                b':' => {
                    self.await_array = self.depth == self.key_depth && self.key_matched;
                    self.key_matched = false;
                    self.await_detail = self.depth == 1 && self.detail_matched;
                    self.detail_matched = false;
                    self.await_envelope = self.depth == 1 && self.envelope_key.is_some();
                }
                b',' => {
                    self.await_array = false;
                    self.await_envelope = false;
                    self.await_detail = false;
                    if self.depth == self.key_depth {
                        self.expect_key = true;
                    }
                }
                b'n' if self.await_array => {
                    // `"Records": null` holds no records.
                    self.found = true;
                    self.await_array = false;
                }
                _ => {
                    if self.await_array {
                        self.key_not_array = Some(if b == b't' || b == b'f' {
                            "a boolean"
                        } else {
                            "a number"
                        });
                    }
                    self.await_array = false;
                    self.await_envelope = false;
                    self.await_detail = false;
                }
            }
        }
        // The element goes on in the next chunk: keep what this one holds of it.
        if self.in_element {
            let part = &chunk[self.element_from..];
            self.push(part);
            self.element_from = 0;
        }
    }

    /// The string just read is the value of an envelope key.
    fn keep_envelope_value(&mut self) {
        let Some(key) = self.envelope_key.take().and_then(|i| ENVELOPE_KEYS.get(i)) else {
            return;
        };
        let mut quoted = Vec::with_capacity(self.envelope_buf.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(&self.envelope_buf);
        quoted.push(b'"');
        if let Ok(value) = serde_json::from_slice::<Value>(&quoted) {
            self.envelope.insert((*key).to_owned(), value);
        }
    }

    fn finish(&mut self) -> Result<(), ReadError> {
        if self.in_element && self.element_scalar && self.depth == self.array_depth.unwrap_or(0) {
            self.end_element(&[]);
        }
        if self.depth > 0 {
            return Err(ReadError::Structure {
                position: Position::Record(self.index),
                reason: "the JSON document ends early".to_owned(),
            });
        }
        Ok(())
    }
}

/// A JSON value of a type of the configuration: an EventBridge event stands for its `detail`,
/// with the envelope in [`super::EVENTBRIDGE_FIELD`]; anything else is itself.
pub(super) fn event_detail(record: Record<'_>) -> Record<'_> {
    let is_event = record.value.get("detail-type").is_some()
        && record.value.get("resources").is_some()
        && record.value.get("detail").is_some_and(Value::is_object);
    let Record {
        value: Value::Object(mut event),
        raw,
        position,
    } = record
    else {
        return record;
    };
    if !is_event {
        return Record {
            value: Value::Object(event),
            raw,
            position,
        };
    }
    let mut envelope = serde_json::Map::new();
    for key in ENVELOPE_KEYS {
        if let Some(v) = event.remove(key) {
            envelope.insert(key.to_owned(), v);
        }
    }
    let mut detail = match event.remove("detail") {
        Some(Value::Object(detail)) => detail,
        _ => serde_json::Map::new(),
    };
    detail.insert(super::EVENTBRIDGE_FIELD.to_owned(), Value::Object(envelope));
    Record {
        value: Value::Object(detail),
        // The event's bytes name it (its id and time), where its detail may repeat another's.
        raw,
        position,
    }
}

/// Scanner state of [`split_values`].
struct ValueScanner<'f> {
    buf: Vec<u8>,
    depth: u32,
    in_string: bool,
    escape: bool,
    scalar: bool,
    oversized: bool,
    /// The top-level value is an object. Inside one, a `{` at column 0 that does not follow
    /// `:`, `,` or `[` can only be the start of the next record: the current one was cut.
    top_object: bool,
    /// Set by the first record: one record per line (JSON lines) or not (pretty-printed). In
    /// JSON lines, a line that ends inside a record means that record is cut short.
    json_lines: Option<bool>,
    /// The first record was single-line; a newline right after it decides JSON lines.
    first_seen: bool,
    line: u64,
    start_line: u64,
    at_line_start: bool,
    last_significant: u8,
    /// The line [`ValueScanner::whole_line`] could not take.
    slow_line: Option<u64>,
    on_item: &'f mut dyn FnMut(Item<'_>),
}

impl ValueScanner<'_> {
    fn error(&mut self, reason: String) {
        (self.on_item)(Item::Error(RecordError {
            position: Position::Line(self.start_line),
            reason,
        }));
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.depth = 0;
        self.in_string = false;
        self.escape = false;
        self.scalar = false;
        self.oversized = false;
    }

    fn push(&mut self, b: u8) {
        if self.buf.len() < MAX_RECORD_BYTES {
            self.buf.push(b);
        } else {
            self.oversized = true;
        }
    }

    fn push_slice(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() <= MAX_RECORD_BYTES {
            self.buf.extend_from_slice(bytes);
        } else {
            self.oversized = true;
        }
    }

    fn emit(&mut self) {
        if self.oversized {
            self.error(format!(
                "record larger than {} MiB, skipped",
                MAX_RECORD_BYTES / (1024 * 1024)
            ));
        } else {
            let text = trim_ascii(&self.buf);
            if !text.is_empty() {
                if self.json_lines.is_none() && !self.first_seen {
                    self.first_seen = true;
                    if text.contains(&b'\n') {
                        self.json_lines = Some(false);
                    }
                }
                match super::parse_json(text) {
                    Ok(value) => (self.on_item)(Item::Record(Record {
                        value,
                        raw: Some(text),
                        position: Position::Line(self.start_line),
                    })),
                    Err(e) => {
                        let reason = format!("invalid JSON: {e}");
                        self.error(reason);
                    }
                }
            }
        }
        self.reset();
    }

    /// Between records of a JSON lines object, a whole line of `chunk` that holds exactly one
    /// object is parsed in place, without the byte scan and the copy; anything else (another
    /// shape, invalid JSON, a line the chunk does not end) is left to the scanner, which then
    /// reports exactly what it always did. Returns the bytes taken, line break included.
    fn whole_line(&mut self, rest: &[u8]) -> Option<usize> {
        if !self.at_line_start
            || self.json_lines != Some(true)
            || self.slow_line == Some(self.line)
            || self.depth != 0
            || self.scalar
            || self.in_string
        {
            return None;
        }
        // Tried once per line: when it fails, the scanner takes the whole line.
        self.slow_line = Some(self.line);
        let end = memchr::memchr(b'\n', rest)?;
        let text = trim_ascii(&rest[..end]);
        if text.first() != Some(&b'{') {
            return None;
        }
        let value = super::parse_json(text).ok()?;
        self.slow_line = None;
        self.start_line = self.line;
        (self.on_item)(Item::Record(Record {
            value,
            raw: Some(text),
            position: Position::Line(self.start_line),
        }));
        self.top_object = true;
        self.last_significant = b'}';
        self.line += 1;
        self.at_line_start = true;
        Some(end + 1)
    }

    /// Scans one chunk.
    fn scan(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            if let Some(taken) = self.whole_line(&chunk[i..]) {
                i += taken;
                continue;
            }
            let b = chunk[i];
            if self.depth == 0 && !self.scalar {
                if self.json_lines.is_none() && self.first_seen && !b.is_ascii_whitespace() {
                    self.json_lines = Some(false);
                }
                if b == b'\n' {
                    if self.json_lines.is_none() && self.first_seen {
                        self.json_lines = Some(true);
                    }
                    self.line += 1;
                    self.at_line_start = true;
                    i += 1;
                    continue;
                }
                if b.is_ascii_whitespace() {
                    i += 1;
                    continue;
                }
                self.start_line = self.line;
                self.buf.clear();
                self.at_line_start = false;
                if b == b'{' || b == b'[' {
                    self.depth = 1;
                    self.top_object = b == b'{';
                    self.last_significant = b;
                    self.push(b);
                    i += 1;
                    continue;
                }
                self.scalar = true;
            }
            if self.scalar {
                // Not an object or array: the rest of the line is taken as one value.
                let end = memchr_newline(&chunk[i..]);
                self.push_slice(&chunk[i..i + end]);
                i += end;
                if i < chunk.len() {
                    self.emit();
                    self.line += 1;
                    self.at_line_start = true;
                    i += 1;
                }
                continue;
            }
            if self.in_string {
                // Fast path: copy up to the next quote, backslash or newline.
                let run = chunk[i..]
                    .iter()
                    .position(|&c| c == b'"' || c == b'\\' || c == b'\n')
                    .unwrap_or(chunk.len() - i);
                if run > 0 && !self.escape {
                    self.push_slice(&chunk[i..i + run]);
                    i += run;
                    continue;
                }
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                } else if b == b'\n' {
                    self.error("invalid JSON: a line ends inside a string".to_owned());
                    self.reset();
                    self.line += 1;
                    self.at_line_start = true;
                    i += 1;
                    continue;
                }
                self.push(b);
                i += 1;
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    if b == b'{'
                        && self.at_line_start
                        && self.top_object
                        && !matches!(self.last_significant, b':' | b',' | b'[')
                    {
                        // A new object starts at column 0 while the previous one is still
                        // open: that one was cut short (a broken JSON line).
                        self.error("invalid JSON: the record ends early".to_owned());
                        self.reset();
                        continue;
                    }
                    self.depth += 1;
                }
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        self.push(b);
                        self.emit();
                        i += 1;
                        continue;
                    }
                }
                b'\n' => {
                    if self.json_lines == Some(true) {
                        self.error("invalid JSON: the line ends inside this record".to_owned());
                        self.reset();
                    } else {
                        self.push(b);
                    }
                    self.line += 1;
                    self.at_line_start = true;
                    i += 1;
                    continue;
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                self.last_significant = b;
                self.at_line_start = false;
            }
            self.push(b);
            i += 1;
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> usize {
    memchr::memchr(b'\n', bytes).unwrap_or(bytes.len())
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

/// Each top-level value is a record.
pub(super) fn split_values(
    reader: &mut dyn BufRead,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    let mut scanner = ValueScanner {
        buf: Vec::with_capacity(4096),
        depth: 0,
        in_string: false,
        escape: false,
        scalar: false,
        oversized: false,
        top_object: false,
        json_lines: None,
        first_seen: false,
        line: 1,
        start_line: 1,
        at_line_start: true,
        last_significant: 0,
        slow_line: None,
        on_item,
    };
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ReadError::Io {
                    position: Position::Line(scanner.line).to_string(),
                    source,
                });
            }
        };
        if chunk.is_empty() {
            break;
        }
        let len = chunk.len();
        scanner.scan(chunk);
        reader.consume(len);
    }
    if scanner.scalar {
        scanner.emit();
    } else if scanner.depth > 0 {
        scanner.error("invalid JSON: the data ends inside this record".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Item, Position, Splitter};
    use serde_json::{Value, json};

    type Collected = (
        Vec<(Value, Position, Option<String>)>,
        Vec<(Position, String)>,
    );

    fn run(splitter: &Splitter, data: &[u8]) -> (Collected, Option<String>) {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let mut reader = data;
        let result = splitter.split(&mut reader, &mut |item| match item {
            Item::Record(r) => records.push((
                r.value,
                r.position,
                r.raw.map(|b| String::from_utf8_lossy(b).into_owned()),
            )),
            Item::Error(e) => errors.push((e.position, e.reason)),
            Item::Unparsed(u) => panic!("split parses every record: {u:?}"),
        });
        ((records, errors), result.err().map(|e| e.to_string()))
    }

    fn values(data: &[u8]) -> (Collected, Option<String>) {
        run(&Splitter::JsonValues, data)
    }

    fn array(data: &[u8]) -> (Collected, Option<String>) {
        run(
            &Splitter::JsonArray {
                key: "Records".into(),
                events: false,
            },
            data,
        )
    }

    /// The records of `key` of each document, EventBridge events looked into, with each
    /// record's raw bytes when it keeps them.
    fn events(key: &str, data: &[u8]) -> Vec<(Value, Option<String>, Position)> {
        let mut out = Vec::new();
        Splitter::JsonArray {
            key: key.into(),
            events: true,
        }
        .split(&mut &data[..], &mut |item| {
            if let Item::Record(r) = item {
                out.push((
                    r.value,
                    r.raw.map(|b| String::from_utf8_lossy(b).into_owned()),
                    r.position,
                ));
            }
        })
        .expect("readable");
        out
    }

    #[test]
    fn records_split_unparsed_then_parsed_are_the_records_split() {
        let data = br#"{"Records":[{"a":1}, {"b":[2,{"c":3}]}, {"bad": }, 7, "s", {"d":"\u00e9"}]}
{"version":"0","id":"e-1","detail-type":"X","source":"x","account":"1","time":"2026-03-04T12:05:31Z","region":"r","detail":{"Records":[{"Id":"ws-1"},{"Id":}]}}
{"Records":{"not":"an array"}}"#;
        let show = |item: Item<'_>| match item {
            Item::Record(r) => format!(
                "record {:?} {} {:?}",
                r.position,
                r.value,
                r.raw.map(|b| String::from_utf8_lossy(b).into_owned())
            ),
            Item::Error(e) => format!("error {:?} {}", e.position, e.reason),
            Item::Unparsed(u) => format!("unparsed {:?}", u.position),
        };
        for events in [false, true] {
            let splitter = Splitter::JsonArray {
                key: "Records".into(),
                events,
            };
            let mut parsed = Vec::new();
            splitter
                .split(&mut &data[..], &mut |item| parsed.push(show(item)))
                .expect("readable");
            let mut unparsed = Vec::new();
            let mut deferred = 0;
            splitter
                .split_unparsed(&mut &data[..], &mut |item| {
                    unparsed.push(show(match item {
                        Item::Unparsed(u) => {
                            deferred += 1;
                            u.parse()
                        }
                        other => other,
                    }))
                })
                .expect("readable");
            assert_eq!(parsed, unparsed, "events: {events}");
            // The first object's six elements; those inside the event (read only with
            // `events`) carry its envelope and are parsed by the splitter.
            assert_eq!(deferred, 6, "events: {events}");
        }
    }

    #[test]
    fn arrays_inside_eventbridge_events_stream_with_their_envelope() {
        let data = br#"{"version":"0","id":"e-1","detail-type":"WorkSpaces Inventory","source":"x","account":"111122223333","time":"2026-03-04T12:05:31Z","region":"us-east-1","resources":[],"detail":{"Workspaces":[{"Id":"ws-1"},{"Id":"ws-2"}],"other":{"Workspaces":[9]}}}
{"version":"0","id":"e-2","detail-type":"WorkSpaces Inventory","source":"x","account":"111122223333","time":"2026-03-09T12:05:31Z","region":"us-east-1","resources":[],"detail":{"Workspaces":[{"Id":"ws-1"}]}}
{"Workspaces":[{"Id":"plain"}]}
"#;
        let records = events("Workspaces", data);
        let ids: Vec<&Value> = records.iter().map(|(v, _, _)| &v["Id"]).collect();
        assert_eq!(
            ids,
            [
                &json!("ws-1"),
                &json!("ws-2"),
                &json!("ws-1"),
                &json!("plain")
            ]
        );
        assert_eq!(
            records[0].0[crate::decode::EVENTBRIDGE_FIELD],
            json!({"detail-type": "WorkSpaces Inventory", "id": "e-1", "time": "2026-03-04T12:05:31Z",
                   "account": "111122223333", "region": "us-east-1"})
        );
        assert_eq!(records[2].0[crate::decode::EVENTBRIDGE_FIELD]["id"], "e-2");
        // Records of an event are named by what they load (their event's id), not their bytes.
        assert_eq!(records[0].1, None);
        assert_eq!(records[3].1.as_deref(), Some(r#"{"Id":"plain"}"#));
        assert!(records[3].0.get(crate::decode::EVENTBRIDGE_FIELD).is_none());
        let positions: Vec<Position> = records.iter().map(|(_, _, p)| *p).collect();
        assert_eq!(positions, [0, 1, 2, 3].map(Position::Record));
        // A built-in type's scanner does not look into events.
        let (collected, _) = run(
            &Splitter::JsonArray {
                key: "Workspaces".into(),
                events: false,
            },
            data,
        );
        assert_eq!(collected.0.len(), 1);
    }

    #[test]
    fn records_array_is_streamed_in_order_whatever_the_layout() {
        let data = br#"{"other": {"Records": [9]}, "Records": [
            {"a": 1}
            ,{"a": 2}, {"a": [1, {"b": "}"}]}
        ], "tail": true}"#;
        let ((records, errors), err) = array(data);
        assert_eq!(err, None);
        assert!(errors.is_empty());
        let got: Vec<Value> = records.iter().map(|r| r.0.clone()).collect();
        assert_eq!(
            got,
            [
                json!({"a": 1}),
                json!({"a": 2}),
                json!({"a": [1, {"b": "}"}]})
            ]
        );
        assert_eq!(records[2].1, Position::Record(2));
    }

    #[test]
    fn a_records_key_that_is_no_array_says_what_it_holds() {
        for (data, what) in [
            (&br#"{"Records": {"a": 1}}"#[..], "an object"),
            (br#"{"Records": "x", "other": [1]}"#, "a string"),
            (br#"{"Records": 42}"#, "a number"),
            (br#"{"Records": true}"#, "a boolean"),
        ] {
            let ((records, errors), err) = array(data);
            assert_eq!(err, None);
            assert!(records.is_empty());
            assert_eq!(errors.len(), 1);
            assert_eq!(
                errors[0].1,
                format!("`Records` holds {what}, not an array of records")
            );
        }
        // A nested `Records` is not the document's.
        let ((_, errors), _) = array(br#"{"x": {"Records": 1}}"#);
        assert_eq!(errors[0].1, "the JSON document has no `Records` key");
    }

    #[test]
    fn several_documents_and_missing_or_null_arrays() {
        let ((records, errors), err) =
            array(b"{\"Records\":[{\"a\":1}]}\n{\"Records\":null}{\"x\":1} [{\"a\":2}]");
        assert_eq!(err, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].1, Position::Record(1));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.contains("no `Records` key"));
    }

    #[test]
    fn a_bad_element_costs_only_itself_and_a_cut_document_stops_cleanly() {
        let ((records, errors), err) =
            array(br#"{"Records":[{"a":1},{"a":2},{"a": nope}, {"a":4}, "x", 5, [6]]}"#);
        assert_eq!(err, None);
        let got: Vec<Value> = records.iter().map(|r| r.0.clone()).collect();
        assert_eq!(
            got,
            [
                json!({"a": 1}),
                json!({"a": 2}),
                json!({"a": 4}),
                json!("x"),
                json!(5),
                json!([6])
            ]
        );
        assert_eq!(records[2].1, Position::Record(3));
        assert_eq!(records[2].2.as_deref(), Some("{\"a\":4}"));
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, Position::Record(2));
        assert!(errors[0].1.starts_with("invalid JSON"), "{errors:?}");
        let ((records, _), err) = array(br#"{"Records":[{"a":1},{"a":"#);
        assert_eq!(records.len(), 1);
        assert!(err.expect("error").contains("ends early"));
    }

    #[test]
    fn json_lines_resync_after_a_bad_line() {
        let data =
            b"{\"a\":1}\n{\"a\": 2\n{\"a\":3}\n{\"a\": \"x\n{\"a\":4}\nnot json\n\n{\"a\":5}";
        let ((records, errors), err) = values(data);
        assert_eq!(err, None);
        let got: Vec<i64> = records.iter().filter_map(|r| r.0["a"].as_i64()).collect();
        assert_eq!(got, [1, 3, 4, 5]);
        let lines: Vec<Position> = errors.iter().map(|e| e.0).collect();
        assert_eq!(
            lines,
            [Position::Line(2), Position::Line(4), Position::Line(6)]
        );
        assert_eq!(records[1].1, Position::Line(3));
        assert_eq!(records[0].2.as_deref(), Some("{\"a\":1}"));
    }

    #[test]
    fn concatenated_and_pretty_printed_values() {
        let data = b"{\"a\":1}{\"a\":2}[1]{\n  \"a\": {\n    \"b\": 3\n  }\n}\n{\"a\":\"\\\"}\"}";
        let ((records, errors), _) = values(data);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records.len(), 5);
        assert_eq!(records[3].0, json!({"a": {"b": 3}}));
        assert_eq!(records[3].1, Position::Line(1));
        assert_eq!(records[4].0, json!({"a": "\"}"}));
        assert_eq!(records[4].1, Position::Line(6));
    }

    #[test]
    fn json_lines_cut_anywhere_resync_at_the_next_line() {
        let data = b"{\"a\":1,\"b\":[1]}\n{\"a\":2,\"b\":\n{\"a\":3,\"b\":[{\"c\":\n{\"a\":4}\n";
        let ((records, errors), _) = values(data);
        let got: Vec<i64> = records.iter().filter_map(|r| r.0["a"].as_i64()).collect();
        assert_eq!(got, [1, 4]);
        assert_eq!(
            errors.iter().map(|e| e.0).collect::<Vec<_>>(),
            [Position::Line(2), Position::Line(3)]
        );
    }

    #[test]
    fn truncated_last_value_is_an_error() {
        let ((records, errors), err) = values(b"{\"a\":1}\n{\"a\":");
        assert_eq!(err, None);
        assert_eq!(records.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].1.contains("ends inside"));
    }

    #[test]
    fn values_split_across_chunks() {
        let data = b"{\"a\":\"xyz\"}\n{\"a\":\"w\"}\n".repeat(100);
        let mut reader = std::io::BufReader::with_capacity(7, &data[..]);
        let mut n = 0;
        Splitter::JsonValues
            .split(&mut reader, &mut |item| {
                assert!(matches!(item, Item::Record(_)), "{item:?}");
                n += 1;
            })
            .expect("ok");
        assert_eq!(n, 200);
    }

    /// An item as one line of text, to compare what two ways of splitting hand over.
    fn describe(item: Item<'_>) -> String {
        match item {
            Item::Record(r) => format!(
                "record {:?} {} {}",
                r.position,
                r.value,
                String::from_utf8_lossy(r.raw.unwrap_or_default())
            ),
            Item::Unparsed(u) => format!(
                "unparsed {:?} {}",
                u.position,
                String::from_utf8_lossy(u.raw)
            ),
            Item::Error(e) => format!("error {:?} {}", e.position, e.reason),
        }
    }

    /// Whole lines parsed in place must give what the byte scanner gives: the same input read
    /// one byte at a time (no line is ever whole in a chunk) is the reference.
    #[test]
    fn whole_lines_in_a_chunk_match_the_byte_scanner() {
        let data: &[u8] = b"{\"a\":1}\n  {\"a\":2} \r\n{\"a\": 3\n{\"a\":4}{\"a\":5}\n\"s\"\n[7]\n\n{\"a\":\"\\u00e9\\\"}\"}\n{\"a\":\"x\n{\"a\":9}\nnot json\n\x0c{\"a\":10}\n{\"a\":11}\n{\"a\":12}";
        let collect = |reader: &mut dyn std::io::BufRead| {
            let mut items = Vec::new();
            let result = Splitter::JsonValues.split(reader, &mut |item| items.push(describe(item)));
            (items, result.err().map(|e| e.to_string()))
        };
        let reference = collect(&mut std::io::BufReader::with_capacity(1, data));
        let whole = collect(&mut &data[..]);
        assert_eq!(whole, reference);
        assert!(
            !whole.0.iter().any(|i| i.starts_with("unparsed")),
            "split parses every record: {whole:?}"
        );
        assert_eq!(
            reference
                .0
                .iter()
                .filter(|i| i.starts_with("record"))
                .count(),
            11,
            "{reference:?}"
        );
    }

    /// Records are handed over as slices of the chunk they lie in, or gathered from several:
    /// every chunk size gives the same records, raw bytes, errors and envelope fields.
    #[test]
    fn array_records_are_the_same_whatever_the_chunk_size() {
        let data: &[u8] = br#"{"Records": [ {"a":"x\"]}","b":[1,{"c":2}]} , 7, "s,]", {"d":null},
 {"e":"\\"}, [1,2] ,{"f":{"g":[]}}]}
{"version":"0","id":"ev-1","detail-type":"T","account":"1","time":"t","region":"r","resources":[],"detail":{"Records":[{"h":1},{"i":"]"}]}}"#;
        let collect = |reader: &mut dyn std::io::BufRead, unparsed: bool| {
            let mut items = Vec::new();
            let result = super::split_array(reader, "Records", true, unparsed, &mut |item| {
                items.push(describe(item))
            });
            (items, result.err().map(|e| e.to_string()))
        };
        for unparsed in [false, true] {
            let whole = collect(&mut &data[..], unparsed);
            assert_eq!(whole.0.len(), 9, "{whole:?}");
            assert!(
                whole.0[0].ends_with(r#"{"a":"x\"]}","b":[1,{"c":2}]}"#),
                "{whole:?}"
            );
            assert!(whole.0[2].ends_with(r#""s,]""#), "{whole:?}");
            assert!(whole.0[7].contains(r#""detail-type":"T""#), "{whole:?}");
            for capacity in [1, 2, 3, 7, 16, 64] {
                let chunked = collect(
                    &mut std::io::BufReader::with_capacity(capacity, data),
                    unparsed,
                );
                assert_eq!(chunked, whole, "chunks of {capacity} bytes");
            }
        }
    }
}
