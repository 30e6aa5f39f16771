//! XML records (`file_format = xml` and `winevtxml`).
//!
//! An object is cut into records of several lines, as the es-loader cuts it: a record starts at
//! a line the first-line regex matches (`<Event xmlns=` for Windows events, `xml_firstline`
//! otherwise). Every top-level element of a record becomes one JSON record, so events written
//! one after the other on one line are not lost. One broken record is one error; the next
//! record starts afresh.
//!
//! Elements become JSON the way the es-loader's users' dashboards expect (the `xmltodict`
//! convention): `{"<root>": ...}`; attributes are keys without a prefix; an element with only
//! text is its string, with attributes or children its text is `#text`; repeated children are a
//! list; an empty element is `null`.
//!
//! Windows events then get the shape the es-loader gives them: `EventData.Data` becomes an
//! object of `Name` to value (`-` and empty values left out; unnamed values numbered from 1),
//! `EventID` with `Qualifiers` becomes its number with `System.Qualifiers` beside it, and
//! `AccessList` / `PrivilegeList` become lists.

use super::text::for_each_chunk;
use super::{Item, ReadError, Record, RecordError};
use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use regex::Regex;
use serde_json::{Map, Value};
use std::io::BufRead;
use std::sync::OnceLock;

/// The first line of a Windows event record.
fn windows_first_line() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^\s*<Event[\s>]").expect("valid regex"))
}

pub(super) fn split_xml(
    reader: &mut dyn BufRead,
    header_lines: usize,
    first_line: Option<&Regex>,
    windows: bool,
    on_item: &mut dyn FnMut(Item<'_>),
) -> Result<(), ReadError> {
    let first_line = first_line.unwrap_or_else(|| windows_first_line());
    for_each_chunk(reader, header_lines, first_line, &mut |chunk| {
        let (bytes, position) = match chunk {
            Ok(chunk) => chunk,
            Err(error) => return on_item(Item::Error(error)),
        };
        let mut values = Vec::new();
        let broken = elements(bytes, &mut values).err();
        if windows {
            values = unwrap_events(values);
        }
        let one = values.len() == 1 && broken.is_none();
        for mut value in values {
            if windows {
                shape_windows_event(&mut value);
            }
            on_item(Item::Record(Record {
                value,
                // Several events in one record: their ids come from their content.
                raw: one.then_some(bytes),
                position,
            }));
        }
        if let Some(reason) = broken {
            on_item(Item::Error(RecordError { position, reason }));
        }
    })
}

/// The elements of one message (a CloudWatch Logs event holds one record).
pub(super) fn message_elements(message: &str, windows: bool) -> Result<Vec<Value>, String> {
    let mut values = Vec::new();
    elements(message.as_bytes(), &mut values)?;
    if windows {
        values = unwrap_events(values);
        values.iter_mut().for_each(shape_windows_event);
    }
    Ok(values)
}

/// One element being read: its attributes, children and text so far.
struct Open {
    name: String,
    fields: Map<String, Value>,
    text: String,
    /// Names of the children, in order, once each.
    children: Vec<String>,
}

impl Open {
    fn new(start: &BytesStart<'_>) -> Result<Self, String> {
        let name = start.name().as_ref().to_owned();
        let mut fields = Map::new();
        for attribute in start.attributes() {
            let attribute =
                attribute.map_err(|e| format!("invalid XML attribute in <{name}>: {e}"))?;
            let key = attribute.key.as_ref().to_owned();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("invalid XML attribute `{key}` in <{name}>: {e}"))?;
            fields.insert(key, Value::String(value.into_owned()));
        }
        Ok(Self {
            name,
            fields,
            text: String::new(),
            children: Vec::new(),
        })
    }

    fn close(self) -> (String, Value) {
        let Open {
            name,
            mut fields,
            text,
            children,
            ..
        } = self;
        let value = if fields.is_empty() && children.is_empty() {
            if text.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            }
        } else {
            // Indentation between children is layout, not content.
            if !text.trim().is_empty() {
                fields.insert("#text".to_owned(), Value::String(text));
            }
            Value::Object(fields)
        };
        (name, value)
    }

    fn add_child(&mut self, name: String, value: Value) {
        if !self.children.contains(&name) {
            self.children.push(name.clone());
        }
        match self.fields.get_mut(&name) {
            // An element's own value is never a list: a list is a repeated child.
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.fields.insert(name, value);
            }
        }
    }
}

/// Every top-level element of `bytes` as JSON into `out`; the elements before a syntax error
/// are kept.
fn elements(bytes: &[u8], out: &mut Vec<Value>) -> Result<(), String> {
    let mut reader = Reader::from_reader(bytes);
    // End names are checked here: a wrapper's closing tag (`</Events>`) may come alone.
    reader.config_mut().check_end_names = false;
    reader.config_mut().allow_unmatched_ends = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut buf = Vec::new();
    let fail = |reader: &Reader<&[u8]>, e: &dyn std::fmt::Display| {
        format!(
            "invalid XML at byte {} of the record: {e}",
            reader.error_position()
        )
    };
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| fail(&reader, &e))?;
        match event {
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(format!(
                        "invalid XML: nested deeper than {MAX_DEPTH} elements"
                    ));
                }
                stack.push(Open::new(&start)?);
            }
            Event::Empty(start) => {
                let (name, value) = Open::new(&start)?.close();
                finish(&mut stack, out, name, value);
            }
            Event::End(end) => {
                let Some(open) = stack.pop() else {
                    // The end of a wrapper whose start was in an earlier record.
                    continue;
                };
                if end.name().as_ref() != open.name {
                    return Err(format!(
                        "invalid XML: <{}> is closed by </{}>",
                        open.name,
                        end.name().as_ref()
                    ));
                }
                let (name, value) = open.close();
                finish(&mut stack, out, name, value);
            }
            Event::Text(text) => {
                let text = text.xml10_content();
                match stack.last_mut() {
                    Some(open) => open.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => {
                        return Err(format!(
                            "invalid XML: text outside any element: `{}`",
                            text.trim().chars().take(40).collect::<String>()
                        ));
                    }
                }
            }
            Event::CData(data) => {
                if let Some(open) = stack.last_mut() {
                    open.text.push_str(&data);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(open) = stack.last_mut() {
                    let name: &str = &reference;
                    match reference.resolve_char_ref() {
                        Ok(Some(c)) => open.text.push(c),
                        _ => match quick_xml::escape::resolve_predefined_entity(name) {
                            Some(s) => open.text.push_str(s),
                            None => open.text.push_str(&format!("&{name};")),
                        },
                    }
                }
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    // A wrapper left open (`<Events>` of an export, its end in a later record): its complete
    // children are the records.
    if let [open] = stack.as_mut_slice()
        && open.text.trim().is_empty()
    {
        for name in std::mem::take(&mut open.children) {
            let value = open.fields.remove(&name).unwrap_or(Value::Null);
            push_records(out, &name, value);
        }
        return Ok(());
    }
    if let Some(open) = stack.last() {
        return Err(format!(
            "invalid XML: the record ends inside <{}>",
            open.name
        ));
    }
    Ok(())
}

/// `{name: value}` records; a repeated child (a list) is one record per item.
fn push_records(out: &mut Vec<Value>, name: &str, value: Value) {
    let items = match value {
        Value::Array(items) => items,
        one => vec![one],
    };
    for item in items {
        let mut record = Map::new();
        record.insert(name.to_owned(), item);
        out.push(Value::Object(record));
    }
}

/// Deeper XML is not a log record; the bound keeps the document tree small.
const MAX_DEPTH: usize = 256;

fn finish(stack: &mut [Open], out: &mut Vec<Value>, name: String, value: Value) {
    match stack.last_mut() {
        Some(parent) => parent.add_child(name, value),
        None => {
            let mut record = Map::new();
            record.insert(name, value);
            out.push(Value::Object(record));
        }
    }
}

/// An export's `<Events>` wrapper read whole stands for its events.
fn unwrap_events(values: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        match value {
            Value::Object(mut record) if record.len() == 1 && record.contains_key("Events") => {
                if let Some(Value::Object(mut events)) = record.remove("Events")
                    && let Some(inner) = events.remove("Event")
                {
                    push_records(&mut out, "Event", inner);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The es-loader's shape of a Windows event (see the module docs).
fn shape_windows_event(record: &mut Value) {
    let Some(event) = record.get_mut("Event").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(Value::Object(system)) = event.get_mut("System")
        && let Some(Value::Object(id)) = system.get_mut("EventID")
    {
        let number = id.remove("#text").unwrap_or(Value::Null);
        let qualifiers = id.remove("Qualifiers");
        system.insert("EventID".to_owned(), number);
        if let Some(q) = qualifiers {
            system.insert("Qualifiers".to_owned(), q);
        }
    }
    let Some(Value::Object(event_data)) = event.get_mut("EventData") else {
        return;
    };
    event_data.remove("#text");
    let Some(data) = event_data.get_mut("Data") else {
        return;
    };
    let items = match data.take() {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        one => vec![one],
    };
    let single = items.len() == 1;
    let mut named = Map::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(mut fields) => {
                let (Some(Value::String(name)), Some(Value::String(text))) =
                    (fields.remove("Name"), fields.remove("#text"))
                else {
                    continue;
                };
                if text.is_empty() || text == "-" {
                    continue;
                }
                let value = match name.as_str() {
                    "AccessList" | "PrivilegeList" => Value::Array(
                        text.split_whitespace()
                            .map(|s| Value::String(s.to_owned()))
                            .collect(),
                    ),
                    _ => Value::String(text),
                };
                named.insert(name, value);
            }
            Value::String(text) if !text.is_empty() => {
                // One unnamed value is `0`, several are numbered from 1, as in the es-loader.
                let key = if single { 0 } else { index + 1 };
                named.insert(key.to_string(), Value::String(text));
            }
            _ => {}
        }
    }
    *data = Value::Object(named);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Position;
    use serde_json::json;

    fn split(text: &str, windows: bool) -> (Vec<(Value, Position)>, Vec<RecordError>) {
        let mut records = Vec::new();
        let mut errors = Vec::new();
        let first = Regex::new("^<Record").expect("regex");
        split_xml(
            &mut text.as_bytes(),
            0,
            (!windows).then_some(&first),
            windows,
            &mut |item| match item {
                Item::Record(r) => records.push((r.value, r.position)),
                Item::Error(e) => errors.push(e),
                Item::Unparsed(u) => panic!("split parses every record: {u:?}"),
            },
        )
        .expect("readable");
        (records, errors)
    }

    const LOGON: &str = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Microsoft-Windows-Security-Auditing" Guid="{54849625-5478-4994-a5ba-3e3b0328c30d}"/>
    <EventID Qualifiers="0">4625</EventID>
    <Level>0</Level>
    <Keywords>0x8010000000000000</Keywords>
    <TimeCreated SystemTime="2026-03-04T05:06:07.1234567Z"/>
    <Computer>dc01.corp.example.com</Computer>
    <Security/>
  </System>
  <EventData>
    <Data Name="TargetUserName">alice</Data>
    <Data Name="TargetDomainName">CORP</Data>
    <Data Name="IpAddress">203.0.113.9</Data>
    <Data Name="IpPort">-</Data>
    <Data Name="PrivilegeList">SeSecurityPrivilege
		SeBackupPrivilege</Data>
    <Data Name="Note">a &amp; b &#x41;</Data>
  </EventData>
</Event>"#;

    #[test]
    fn windows_event_gets_the_es_loader_shape() {
        let (records, errors) = split(LOGON, true);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(records.len(), 1);
        let (event, position) = &records[0];
        assert_eq!(*position, Position::Line(1));
        let e = &event["Event"];
        assert_eq!(
            e["xmlns"],
            "http://schemas.microsoft.com/win/2004/08/events/event"
        );
        assert_eq!(e["System"]["EventID"], "4625");
        assert_eq!(e["System"]["Qualifiers"], "0");
        assert_eq!(
            e["System"]["TimeCreated"]["SystemTime"],
            "2026-03-04T05:06:07.1234567Z"
        );
        assert_eq!(
            e["System"]["Provider"]["Name"],
            "Microsoft-Windows-Security-Auditing"
        );
        assert_eq!(e["System"]["Security"], Value::Null);
        assert_eq!(
            e["EventData"]["Data"],
            json!({
                "TargetUserName": "alice",
                "TargetDomainName": "CORP",
                "IpAddress": "203.0.113.9",
                "PrivilegeList": ["SeSecurityPrivilege", "SeBackupPrivilege"],
                "Note": "a & b A"
            })
        );
    }

    #[test]
    fn several_events_broken_ones_and_unnamed_data() {
        let text = format!(
            "{}\n<Event xmlns=\"x\"><System><EventID>1</EventID></System>\n<EventData><Data>only</Data></EventData></Event><Event><System><EventID>2</EventID></System><EventData><Data>a</Data><Data>b</Data></EventData></Event>\n<Event xmlns=\"x\"><System>\n</Event>\n<Event><System><EventID>3</EventID></System></Event>\n",
            LOGON
        );
        let (records, errors) = split(&text, true);
        let ids: Vec<&Value> = records
            .iter()
            .map(|(r, _)| &r["Event"]["System"]["EventID"])
            .collect();
        assert_eq!(ids, [&json!("4625"), &json!("1"), &json!("2"), &json!("3")]);
        assert_eq!(
            records[1].0["Event"]["EventData"]["Data"],
            json!({"0": "only"})
        );
        assert_eq!(
            records[2].0["Event"]["EventData"]["Data"],
            json!({"1": "a", "2": "b"})
        );
        assert_eq!(records[1].1, Position::Line(21));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position, Position::Line(23));
        assert!(
            errors[0].reason.contains("invalid XML"),
            "{}",
            errors[0].reason
        );
    }

    #[test]
    fn generic_xml_records_by_first_line() {
        let text = "<?xml version=\"1.0\"?>\n<Record id=\"1\"><a>x</a><a>y</a><b k=\"v\">t</b></Record>\n<Record id=\"2\">\n  <a>z</a>\n</Record>\ngarbage <\n";
        let (records, errors) = split(text, false);
        assert_eq!(
            records[0].0,
            json!({"Record": {"id": "1", "a": ["x", "y"], "b": {"k": "v", "#text": "t"}}})
        );
        assert_eq!(records[1].0, json!({"Record": {"id": "2", "a": "z"}}));
        assert_eq!(records.len(), 2);
        // The junk after the last record belongs to it: reported, and the record still loads.
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].position, Position::Line(3));
    }

    #[test]
    fn an_export_wrapper_stands_for_its_events() {
        let one = "<Event xmlns=\"x\"><System><EventID>1</EventID></System></Event>";
        let two = "<Event xmlns=\"x\"><System><EventID>2</EventID></System></Event>";
        let ids = |text: &str| {
            let (records, errors) = split(text, true);
            assert!(errors.is_empty(), "{errors:?}");
            records
                .iter()
                .map(|(r, _)| r["Event"]["System"]["EventID"].clone())
                .collect::<Vec<_>>()
        };
        let expected = [json!("1"), json!("2")];
        // On lines of their own, on one line, and opened on the first event's line.
        assert_eq!(
            ids(&format!(
                "<?xml version=\"1.0\"?>\n<Events>\n{one}\n{two}\n</Events>\n"
            )),
            expected
        );
        assert_eq!(ids(&format!("<Events>{one}{two}</Events>")), expected);
        assert_eq!(ids(&format!("<Events>{one}\n{two}\n</Events>")), expected);
        let (_, errors) = split("<Event><System></Event>", true);
        assert!(errors[0].reason.contains("closed by"), "{errors:?}");
        let deep = format!("<Event>{}{}</Event>", "<a>".repeat(300), "</a>".repeat(300));
        let (_, errors) = split(&deep, true);
        assert!(errors[0].reason.contains("deeper"), "{errors:?}");
    }
}
