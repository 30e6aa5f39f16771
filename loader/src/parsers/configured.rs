//! The normalizer of a type defined only in the configuration (no Rust parser), as the
//! es-loader's `user.ini` describes it: the record's fields (log_pattern groups, JSON, CSV or
//! header columns) are kept as they are; `timestamp_key` and `timestamp_format` give the event
//! time; each `<ecs.field> = <candidates>` line of `ecs` copies the first candidate present
//! with a usable value (a number for numeric fields, an address for `.ip`; `[a, b]`: all of
//! them, as a list); `static_ecs` sets fixed values; `geoip` adds
//! `.geo` and `.as` for `source.ip` / `destination.ip`.
//!
//! Mapped values follow ECS whatever the source wrote: domain names without the root's dot,
//! transports in lower case, IPv4 addresses written as IPv6 as IPv4, ids written as numbers as
//! text, the first usable item of a list for an address or a number. A type may name values
//! that mean "none" (`absent_values`), fields written percent-encoded (`url_encoded`) and other
//! time fields to write in RFC 3339 (`time_fields`).
//!
//! [`apply_mapping`] is the same `ecs` / `static_ecs` / `geoip` step, also run after the Rust
//! normalizer of a built-in type that a user file maps: there the user's mapping wins.

use super::{Context, NormalizeError, Normalized};
use crate::config::{EcsMapping, EcsSource, LogType, TimestampFormat};
use crate::content::fields::FieldType;
use crate::ecs::{self, Doc};
use crate::enrich::geo::GeoLookup;
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use std::net::IpAddr;

/// Normalizes one record of a configured type.
pub fn normalize(
    record: Value,
    lt: &LogType,
    geo: Option<&dyn GeoLookup>,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    if lt.via_firelens {
        return firelens(record, lt, geo, ctx, out);
    }
    normalize_record(record, lt, geo, ctx, out)
}

/// One record as the type's format gives it.
fn normalize_record(
    record: Value,
    lt: &LogType,
    geo: Option<&dyn GeoLookup>,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let envelope = match doc.remove(crate::decode::EVENTBRIDGE_FIELD) {
        Some(Value::Object(meta)) => meta,
        _ => Doc::new(),
    };
    // The es-loader's name for the EventBridge event's time.
    if let Some(time) = envelope.get("time")
        && (lt.timestamp_key.as_deref() == Some("cwe_timestamp")
            || lt.timestamp_key_list.iter().any(|k| k == "cwe_timestamp"))
    {
        doc.entry("cwe_timestamp").or_insert_with(|| time.clone());
    }
    rename_fields(&mut doc, lt);
    json_to_text(&mut doc, lt);
    let timestamp = if !lt.timestamp_key_list.is_empty() {
        first_event_time(&doc, lt, ctx)?
    } else if let Some(key) = lt.timestamp_key.as_deref() {
        match key {
            // The time of the CloudWatch Logs event or EventBridge event around the record:
            // the caller that unwrapped it sets it.
            "cwl_timestamp" | "cwe_timestamp" if lookup(&doc, key).is_none() => None,
            _ => Some(event_time(&doc, key, lt, ctx)?),
        }
    } else {
        unnamed_event_time(&doc, envelope.get("time"), lt, ctx)
    };
    rewrite_time_fields(&mut doc, lt, ctx);
    let values = mapped_values(&doc, lt);
    if let Some(prefix) = &lt.field_prefix {
        let original = std::mem::take(&mut doc);
        doc.insert(prefix.clone(), Value::Object(original));
    } else {
        tags_as_labels(&mut doc);
    }
    set_mapping(&mut doc, lt, values, geo);
    for (field, key) in [
        ("cloud.account.id", "account"),
        ("cloud.region", "region"),
        ("event.id", "id"),
    ] {
        if let Some(Value::String(v)) = envelope.get(key)
            && ecs::get_in(&doc, field).is_none()
        {
            ecs::set(&mut doc, field, v.as_str());
        }
    }
    if ecs::get_in(&doc, "event.module").is_none() {
        ecs::set(&mut doc, "event.module", lt.name.as_str());
    }
    out.push(Normalized::new(doc, timestamp));
    Ok(())
}

/// A FireLens record: the container's metadata around the application's line in `log`, which
/// is read as the type's format reads a record.
fn firelens(
    record: Value,
    lt: &LogType,
    geo: Option<&dyn GeoLookup>,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut meta) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let Some(Value::String(log)) = meta.remove("log") else {
        return Err(NormalizeError::ConfiguredField {
            field: "log".to_owned(),
            reason: "is missing: a FireLens record (via_firelens) carries the line in `log`"
                .to_owned(),
        });
    };
    let records = crate::decode::message_records(lt, &log).map_err(|reason| {
        NormalizeError::ConfiguredField {
            field: "log".to_owned(),
            reason,
        }
    })?;
    if records.is_empty() {
        return Err(NormalizeError::ConfiguredField {
            field: "log".to_owned(),
            reason: "holds no record".to_owned(),
        });
    }
    let start = out.len();
    for record in records {
        normalize_record(record, lt, geo, ctx, out)?;
    }
    let text = |key: &str| {
        meta.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    // arn:aws:ecs:<region>:<account>:task/<cluster>/<id>
    let arn: Vec<&str> = text("ecs_task_arn")
        .map(|a| a.split(':').collect())
        .unwrap_or_default();
    for n in &mut out[start..] {
        let doc = &mut n.doc;
        for (field, key) in [
            ("container.id", "container_id"),
            ("container.name", "container_name"),
            ("cloud.instance.id", "ec2_instance_id"),
            ("aws.ecs.cluster", "ecs_cluster"),
            ("aws.ecs.task_arn", "ecs_task_arn"),
            ("aws.ecs.task_definition", "ecs_task_definition"),
            ("log.source", "source"),
        ] {
            if let Some(v) = text(key) {
                ecs::set(doc, field, v);
            }
        }
        if let [_, _, _, region, account, ..] = arn.as_slice() {
            ecs::set(doc, "cloud.region", *region);
            ecs::set(doc, "cloud.account.id", *account);
        }
    }
    Ok(())
}

/// ECS's `tags` is a list of keywords (the loader's own tags go there too): a record's own
/// `tags` object (AWS Config's resource tags) would have the document refused, so its pairs
/// become ECS's `labels` (kept as JSON text when the record has `labels` of its own).
fn tags_as_labels(doc: &mut Doc) {
    if !doc.get("tags").is_some_and(Value::is_object) {
        return;
    }
    let Some(Value::Object(tags)) = doc.remove("tags") else {
        return;
    };
    if tags.is_empty() {
        return;
    }
    if doc.contains_key("labels") {
        doc.insert(
            "tags".to_owned(),
            Value::String(Value::Object(tags).to_string()),
        );
    } else {
        doc.insert("labels".to_owned(), Value::Object(tags));
    }
}

/// `renamed_newfields`: top-level fields renamed before anything reads them.
fn rename_fields(doc: &mut Doc, lt: &LogType) {
    for (new, old) in &lt.renamed_newfields {
        if let Some(v) = doc.remove(old) {
            doc.insert(new.clone(), v);
        }
    }
}

/// `json_to_text`: fields whose shape varies from record to record (an object here, a string
/// there) are kept as JSON text, so one index mapping holds them all.
fn json_to_text(doc: &mut Doc, lt: &LogType) {
    for field in &lt.json_to_text {
        let text = match lookup(doc, field) {
            Some(v @ (Value::Object(_) | Value::Array(_))) => v.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => continue,
        };
        replace_field(doc, field, Value::String(text));
    }
}

/// Writes `value` where [`lookup`] found the field: a top-level key named with dots, else the
/// dotted path.
fn replace_field(doc: &mut Doc, field: &str, value: Value) {
    if doc.contains_key(field) {
        doc.insert(field.to_owned(), value);
    } else {
        ecs::set(doc, field, value);
    }
}

/// The formats the type's times are read with, in the order they are tried.
fn timestamp_formats(lt: &LogType) -> &[TimestampFormat] {
    if lt.timestamp_format_list.is_empty() {
        std::slice::from_ref(&lt.timestamp_format)
    } else {
        lt.timestamp_format_list.as_slice()
    }
}

/// `clientip_xff`: behind a trusted proxy, the client is the address before the trusted ones
/// in X-Forwarded-For (read from the right); a connecting address that is no trusted proxy is
/// the client whatever the header says (the header can be forged). An entry that is no
/// address stops the walk: what comes before it cannot be trusted.
fn client_from_xff(doc: &mut Doc, lt: &LogType) {
    let Some((client_field, xff_field)) = &lt.clientip_xff else {
        return;
    };
    if lt.trusted_proxies.is_empty() {
        return;
    }
    let trusted = |ip: &IpAddr| lt.trusted_proxies.iter().any(|net| net.contains(ip));
    let Some(connecting) = ecs::get_in(doc, client_field)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<IpAddr>().ok())
    else {
        return;
    };
    let entries: Vec<String> = match ecs::get_in(doc, xff_field) {
        Some(Value::String(s)) => s.split(',').map(|a| a.trim().to_owned()).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .flat_map(|s| s.split(','))
            .map(|a| a.trim().to_owned())
            .collect(),
        _ => return,
    };
    let mut client = connecting;
    for entry in entries.iter().rev() {
        if !trusted(&client) {
            break;
        }
        match forwarded_address(entry) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    if client != connecting && !trusted(&client) {
        ecs::set(doc, client_field, client.to_string());
        add_related(doc, client_field, &Value::String(client.to_string()));
    }
}

/// An X-Forwarded-For entry's address: `203.0.113.9`, `203.0.113.9:443`, `2001:db8::1`,
/// `[2001:db8::1]:443`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

fn event_time(
    doc: &Doc,
    key: &str,
    lt: &LogType,
    ctx: &Context<'_>,
) -> Result<DateTime<Utc>, NormalizeError> {
    let invalid = |reason: String| NormalizeError::ConfiguredField {
        field: key.to_owned(),
        reason,
    };
    // The es-loader's name for the time the key names (`file_timestamp_format`).
    if key == "file_timestamp" && lookup(doc, key).is_none() {
        return ctx.key_time.ok_or_else(|| {
            invalid(format!(
                "the object key `{}` names no time (timestamp_key = file_timestamp reads it with file_timestamp_format)",
                ctx.s3_key
            ))
        });
    }
    let value = lookup(doc, key)
        .ok_or_else(|| invalid("is missing (it is the timestamp_key of this type)".to_owned()))?;
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        other => return Err(invalid(format!("`{other}` is not a time"))),
    };
    let formats = timestamp_formats(lt);
    formats
        .iter()
        .find_map(|f| parse_time(&text, f, lt.timestamp_tz, ctx.reference))
        .ok_or_else(|| {
            let names: Vec<&str> = formats
                .iter()
                .map(|f| match f {
                    TimestampFormat::Iso8601 => "iso8601",
                    TimestampFormat::Epoch => "epoch",
                    TimestampFormat::Syslog => "syslog",
                    TimestampFormat::Pattern(p) => p.as_str(),
                })
                .collect();
            invalid(format!(
                "`{text}` does not match timestamp_format `{}`",
                names.join("` or `")
            ))
        })
}

/// A type that names no time key: the record's own `@timestamp`, else the EventBridge event's
/// time, else the time its `file_timestamp_format` reads in the object key (the es-loader's
/// order); `None` leaves the transport's time or the load time to the caller.
fn unnamed_event_time(
    doc: &Doc,
    event_time: Option<&Value>,
    lt: &LogType,
    ctx: &Context<'_>,
) -> Option<DateTime<Utc>> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(t) = doc.get("@timestamp").and_then(text) {
        return parse_time(&t, &lt.timestamp_format, lt.timestamp_tz, ctx.reference).or_else(
            || {
                parse_time(
                    &t,
                    &TimestampFormat::Iso8601,
                    lt.timestamp_tz,
                    ctx.reference,
                )
            },
        );
    }
    if let Some(t) = event_time.and_then(text) {
        return parse_time(
            &t,
            &TimestampFormat::Iso8601,
            lt.timestamp_tz,
            ctx.reference,
        );
    }
    // Only a key read with the type's own `file_timestamp_format` tells an event's time; the
    // date folders of a key only bound it.
    lt.file_timestamp_format.as_ref().and(ctx.key_time)
}

/// The es-loader's `timestamp_key_list`: the first key the record has gives the time. Its
/// `cwl_timestamp` and `cwe_timestamp` are the time of the CloudWatch Logs event or
/// EventBridge event around the record: where one is listed and no earlier key is there, the
/// record takes that time (`None` here: the transport's time is the default).
fn first_event_time(
    doc: &Doc,
    lt: &LogType,
    ctx: &Context<'_>,
) -> Result<Option<DateTime<Utc>>, NormalizeError> {
    for key in &lt.timestamp_key_list {
        match key.as_str() {
            "cwl_timestamp" | "cwe_timestamp" if lookup(doc, key).is_none() => return Ok(None),
            "file_timestamp" => return event_time(doc, key, lt, ctx).map(Some),
            _ => {}
        }
        let present = lookup(doc, key).is_some_and(|v| !v.is_null() && v != "");
        if present {
            return event_time(doc, key, lt, ctx).map(Some);
        }
    }
    Err(NormalizeError::ConfiguredField {
        field: lt.timestamp_key_list.join(" "),
        reason: "none of these is in the record (they are the timestamp_key_list of this type)"
            .to_owned(),
    })
}

/// `time_fields`: each field the type's formats read is written in RFC 3339 (milliseconds, UTC).
fn rewrite_time_fields(doc: &mut Doc, lt: &LogType, ctx: &Context<'_>) {
    for field in &lt.time_fields {
        let Some(Value::String(text)) = lookup(doc, field) else {
            continue;
        };
        let Some(time) = timestamp_formats(lt)
            .iter()
            .find_map(|f| parse_time(text.trim(), f, lt.timestamp_tz, ctx.reference))
        else {
            continue;
        };
        let rfc3339 = crate::pipeline::format_time(time.with_timezone(&Utc));
        replace_field(doc, field, Value::String(rfc3339));
    }
}

/// A time in `format`; `tz` applies when the text carries no offset; `reference` gives the
/// year of syslog times.
pub fn parse_time(
    text: &str,
    format: &TimestampFormat,
    tz: FixedOffset,
    reference: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local = |naive: NaiveDateTime| tz.from_local_datetime(&naive).single();
    let t = match format {
        TimestampFormat::Epoch => {
            let n: f64 = text.parse().ok().filter(|n: &f64| n.is_finite())?;
            // Seconds, milliseconds or microseconds, by magnitude (as the es-loader does).
            let micros = if n.abs() > 1e15 {
                n
            } else if n.abs() > 1e12 {
                n * 1e3
            } else {
                n * 1e6
            };
            DateTime::from_timestamp_micros(micros.round() as i64)?.fixed_offset()
        }
        TimestampFormat::Iso8601 => DateTime::parse_from_rfc3339(text)
            .ok()
            .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
            .or_else(|| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%z").ok())
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                    .ok()
                    .and_then(local)
            })
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .and_then(local)
            })?,
        TimestampFormat::Syslog => syslog_time(text, tz, reference)?,
        TimestampFormat::Pattern(pattern) => {
            // Python's `%f` is microseconds after a dot; chrono's `%.f` reads the dot and any
            // number of digits.
            let pattern = pattern.replace(".%f", "%.f");
            DateTime::parse_from_str(text, &pattern)
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(text, &pattern)
                        .ok()
                        .and_then(local)
                })
                .or_else(|| {
                    NaiveDate::parse_from_str(text, &pattern)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .and_then(local)
                })?
        }
    };
    Some(t.with_timezone(&Utc))
}

/// `Mmm dd HH:MM:SS[.ffffff]` without a year: the year of `reference`, or the one before when
/// that would put the event more than a day after `reference` (a December line read in
/// January).
fn syslog_time(
    text: &str,
    tz: FixedOffset,
    reference: DateTime<Utc>,
) -> Option<DateTime<FixedOffset>> {
    let mut parts = text.split_whitespace();
    let month = parts.next()?;
    let day = parts.next()?;
    let time = parts.next()?;
    let at = |year: i32| {
        let naive = NaiveDateTime::parse_from_str(
            &format!("{year} {month} {day} {time}"),
            "%Y %b %d %H:%M:%S%.f",
        )
        .ok()?;
        tz.from_local_datetime(&naive).single()
    };
    let year = reference.with_timezone(&tz).year();
    match at(year) {
        Some(t) if t.with_timezone(&Utc) <= reference + Duration::days(1) => Some(t),
        _ => at(year - 1),
    }
}

/// A dotted field of the record: a nested path, or a flat key that itself holds dots.
fn lookup<'a>(doc: &'a Doc, field: &str) -> Option<&'a Value> {
    doc.get(field).or_else(|| ecs::get_in(doc, field))
}

/// Present: not null, not an empty string, not `-` (the "no value" of text logs).
fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => {
            let s = s.trim();
            !s.is_empty() && s != "-"
        }
        _ => true,
    }
}

/// ECS fields whose type is a number: a text value is converted, or left out when it is not
/// one (the original field keeps it).
/// The type the templates give an ECS field (`loader/content/components/`), so a mapped value
/// is converted to what the cluster will accept.
fn declared(field: &str) -> Option<FieldType> {
    crate::content::shared_fields().and_then(|t| t.get(field))
}

fn numeric(field: &str) -> bool {
    match declared(field) {
        Some(kind) => kind.is_numeric(),
        None => {
            field.ends_with(".port") || field.ends_with(".bytes") || field.ends_with(".packets")
        }
    }
}

fn address(field: &str) -> bool {
    declared(field) == Some(FieldType::Ip) || field.ends_with(".ip")
}

/// A value ready for `field`: trimmed text, numbers for numeric fields, valid addresses for
/// `.ip` fields; `None` drops it.
fn convert(field: &str, v: &Value) -> Option<Value> {
    if !present(v) {
        return None;
    }
    // A list (Kubernetes' sourceIPs) gives an address or number field its first usable value;
    // other fields keep the list as it is.
    if let Value::Array(items) = v
        && (address(field) || numeric(field))
    {
        return items.iter().find_map(|item| convert(field, item));
    }
    if numeric(field) {
        return match v {
            Value::Number(_) => Some(v.clone()),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<i64>().map(Value::from).ok().or_else(|| {
                    s.parse::<f64>()
                        .ok()
                        .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                })
            }
            _ => None,
        };
    }
    if address(field) {
        let text = v.as_str()?.trim();
        let text = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        // An IPv4 client written as IPv6 (`::ffff:10.0.8.21`, as Windows does) is the IPv4
        // address, as OpenSearch reads it.
        return text
            .parse::<IpAddr>()
            .ok()
            .map(|ip| Value::String(ip.to_canonical().to_string()));
    }
    match v {
        // ECS wants `1.1`; access-log patterns capture `HTTP/1.1` (the es-loader's Apache example
        // even captures the space before it).
        Value::String(s) if field == "http.version" => {
            let s = s.trim();
            Some(Value::String(
                s.strip_prefix("HTTP/").unwrap_or(s).to_owned(),
            ))
        }
        // ECS writes domain names without the root's dot (DNS logs write `example.com.`), and
        // transports and protocols in lower case (`UDP`, `TCP` in AWS logs).
        Value::String(s) if field == "dns.question.name" || field.ends_with(".domain") => {
            let s = s.trim();
            let s = s.strip_suffix('.').filter(|d| !d.is_empty()).unwrap_or(s);
            Some(Value::String(s.to_owned()))
        }
        Value::String(s) if field == "network.transport" || field == "network.protocol" => {
            Some(Value::String(s.trim().to_ascii_lowercase()))
        }
        Value::String(s) => Some(Value::String(s.trim().to_owned())),
        // An id written as a number (AWS Config's configurationStateId) is still an id.
        Value::Number(n) if declared(field) == Some(FieldType::Keyword) => {
            Some(Value::String(n.to_string()))
        }
        other => Some(other.clone()),
    }
}

/// A request target mapped to `url.path` (`/a?b=c`, as simple access-log patterns capture it)
/// is split: ECS keeps the query in `url.query`, unless the type maps that itself.
fn split_query(values: &mut Vec<(&str, Value)>) {
    if values.iter().any(|(f, _)| *f == "url.query") {
        return;
    }
    let Some(query) = values.iter_mut().find_map(|(f, v)| match v {
        Value::String(path) if *f == "url.path" => {
            let at = path.find('?')?;
            let query = path[at + 1..].to_owned();
            path.truncate(at);
            Some(query)
        }
        _ => None,
    }) else {
        return;
    };
    if !query.is_empty() {
        values.push(("url.query", Value::String(query)));
    }
}

fn mapped_value(doc: &Doc, m: &EcsMapping, lt: &LogType) -> Option<Value> {
    let read = |candidate: &String| {
        let value = lookup(doc, candidate)?;
        if let Value::String(text) = value
            && lt.absent_values.iter().any(|absent| absent == text.trim())
        {
            return None;
        }
        if !lt.url_encoded.contains(candidate) {
            return convert(&m.field, value);
        }
        let text = value.as_str()?;
        let decoded = percent_encoding::percent_decode_str(text).decode_utf8_lossy();
        convert(&m.field, &Value::String(decoded.into_owned()))
    };
    match &m.source {
        EcsSource::First(candidates) => candidates.iter().find_map(read),
        EcsSource::List(fields) => {
            let items: Vec<Value> = fields.iter().filter_map(read).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
    }
}

/// `ecs`, `static_ecs` and `geoip` of the type, over `doc`. Values are read from the
/// document as it is before any of them is set, so one mapping does not feed another.
pub fn apply_mapping(doc: &mut Doc, lt: &LogType, geo: Option<&dyn GeoLookup>) {
    let values = mapped_values(doc, lt);
    set_mapping(doc, lt, values, geo);
}

/// The values of the `ecs` lines, read from the record.
fn mapped_values<'a>(doc: &Doc, lt: &'a LogType) -> Vec<(&'a str, Value)> {
    let mut values: Vec<(&str, Value)> = lt
        .ecs
        .iter()
        .filter_map(|m| {
            let value = mapped_value(doc, m, lt)?;
            Some((m.field.as_str(), translated(lt, &m.field, value)?))
        })
        .collect();
    split_query(&mut values);
    values
}

/// `value_map`: the ECS value of a source's word (`successful` -> `success`); a word the map
/// does not list is left out, so the field only ever holds ECS's values.
fn translated(lt: &LogType, field: &str, value: Value) -> Option<Value> {
    let Some((_, pairs)) = lt.value_maps.iter().find(|(f, _)| f == field) else {
        return Some(value);
    };
    let text = match &value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    pairs
        .iter()
        .find(|(from, _)| *from == text)
        .map(|(_, to)| Value::String(to.clone()))
}

/// Sets the mapped values, `static_ecs`, the client behind proxies and `geoip`.
fn set_mapping(
    doc: &mut Doc,
    lt: &LogType,
    values: Vec<(&str, Value)>,
    geo: Option<&dyn GeoLookup>,
) {
    for (field, value) in values {
        add_related(doc, field, &value);
        ecs::set(doc, field, value);
    }
    for (field, value) in &lt.static_ecs {
        ecs::set(doc, field, value.clone());
    }
    client_from_xff(doc, lt);
    if let Some(geo) = geo {
        for target in &lt.geoip {
            crate::enrich::geo::enrich_target(doc, target, geo);
        }
    }
}

fn add_related(doc: &mut Doc, field: &str, value: &Value) {
    let kind = match field {
        "source.ip" | "destination.ip" | "client.ip" | "server.ip" | "host.ip" => "ip",
        "user.name" | "source.user.name" | "destination.user.name" => "user",
        _ => return,
    };
    match value {
        Value::String(s) => ecs::add_related(doc, kind, s),
        Value::Array(items) => {
            for s in items.iter().filter_map(Value::as_str) {
                ecs::add_related(doc, kind, s);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::enrich::geo::GeoInfo;
    use serde_json::json;

    fn lt(extra: &str) -> LogType {
        let text = format!("[web]\ns3_key = web/\nindex_name = log-web\n{extra}");
        Config::with_user_file("user.ini", &text)
            .expect("valid config")
            .get("web")
            .expect("web")
            .clone()
    }

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "web/a.log",
            key_account: None,
            key_region: None,
            ingested: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            reference: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
                .expect("time")
                .with_timezone(&Utc),
            key_time: None,
        }
    }

    fn run(lt: &LogType, record: Value) -> Result<Normalized, NormalizeError> {
        let mut out = Vec::new();
        normalize(record, lt, None, &ctx(), &mut out)?;
        Ok(out.remove(0))
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn every_timestamp_format() {
        let r = utc("2026-01-01T00:00:00Z");
        let utc0 = FixedOffset::east_opt(0).expect("utc");
        let jst = FixedOffset::east_opt(9 * 3600).expect("jst");
        let cases: [(&str, TimestampFormat, FixedOffset, &str); 12] = [
            (
                "2024-05-01T10:00:00Z",
                TimestampFormat::Iso8601,
                utc0,
                "2024-05-01T10:00:00Z",
            ),
            (
                "2024-05-01T10:00:00.5+09:00",
                TimestampFormat::Iso8601,
                utc0,
                "2024-05-01T01:00:00.5Z",
            ),
            (
                "2024-05-01T10:00:00+0900",
                TimestampFormat::Iso8601,
                utc0,
                "2024-05-01T01:00:00Z",
            ),
            (
                "2024-05-01 10:00:00",
                TimestampFormat::Iso8601,
                jst,
                "2024-05-01T01:00:00Z",
            ),
            (
                "1714557600",
                TimestampFormat::Epoch,
                utc0,
                "2024-05-01T10:00:00Z",
            ),
            (
                "1714557600123",
                TimestampFormat::Epoch,
                utc0,
                "2024-05-01T10:00:00.123Z",
            ),
            (
                "1714557600.5",
                TimestampFormat::Epoch,
                utc0,
                "2024-05-01T10:00:00.5Z",
            ),
            (
                "May  1 10:00:00",
                TimestampFormat::Syslog,
                utc0,
                "2025-05-01T10:00:00Z",
            ),
            (
                "Dec 31 23:59:59",
                TimestampFormat::Syslog,
                jst,
                "2025-12-31T14:59:59Z",
            ),
            (
                "01/May/2024:10:00:00 +0900",
                TimestampFormat::Pattern("%d/%b/%Y:%H:%M:%S %z".into()),
                utc0,
                "2024-05-01T01:00:00Z",
            ),
            (
                "2024/05/01 10:00:00.250",
                TimestampFormat::Pattern("%Y/%m/%d %H:%M:%S.%f".into()),
                jst,
                "2024-05-01T01:00:00.25Z",
            ),
            (
                "20240501",
                TimestampFormat::Pattern("%Y%m%d".into()),
                utc0,
                "2024-05-01T00:00:00Z",
            ),
        ];
        for (text, format, tz, expected) in cases {
            assert_eq!(
                parse_time(text, &format, tz, r),
                Some(utc(expected)),
                "{text} {format:?}"
            );
        }
        assert_eq!(
            parse_time("yesterday", &TimestampFormat::Iso8601, utc0, r),
            None
        );
        assert_eq!(parse_time("12x", &TimestampFormat::Epoch, utc0, r), None);
    }

    #[test]
    fn fields_are_kept_and_ecs_lines_map_them() {
        let t = lt(
            "timestamp = datetime\ntimestamp_format = %d/%b/%Y:%H:%M:%S %z\n\
ecs = source.ip user.name http.response.status_code http.response.bytes source.port related.hosts\n\
source.ip = client remotehost\nuser.name = authuser\nhttp.response.status_code = status\n\
http.response.bytes = bytes\nsource.port = port\nrelated.hosts = [host1, host2]\n\
static_ecs = event.kind event.category\nevent.kind = event\nevent.category = [web]\n",
        );
        let n = run(
            &t,
            json!({"remotehost": "2001:db8::1", "authuser": "alice", "datetime": "10/Oct/2024:13:55:36 -0700",
                   "status": "404", "bytes": "-", "port": "x", "host1": "a", "host2": "b"}),
        )
        .expect("normalizes");
        assert_eq!(n.timestamp, Some(utc("2024-10-10T20:55:36Z")));
        let doc = Value::Object(n.doc);
        assert_eq!(doc["remotehost"], "2001:db8::1");
        assert_eq!(doc["source"], json!({"ip": "2001:db8::1"}));
        assert_eq!(doc["user"]["name"], "alice");
        assert_eq!(doc["http"], json!({"response": {"status_code": 404}}));
        assert_eq!(doc["related"]["ip"], json!(["2001:db8::1"]));
        assert_eq!(doc["related"]["user"], json!(["alice"]));
        assert_eq!(doc["related"]["hosts"], json!(["a", "b"]));
        assert_eq!(
            doc["event"],
            json!({"kind": "event", "category": ["web"], "module": "web"})
        );
    }

    #[test]
    fn domains_lose_the_roots_dot_and_transports_are_lower_case() {
        let t = lt(
            "ecs = dns.question.name url.domain network.transport network.protocol\n\
dns.question.name = q\nurl.domain = host\nnetwork.transport = transport\nnetwork.protocol = proto\n",
        );
        let doc = run(
            &t,
            json!({"q": "api.example.com.", "host": ".", "transport": "UDP", "proto": "DNS"}),
        )
        .expect("ok")
        .doc;
        let doc = Value::Object(doc);
        assert_eq!(doc["dns"]["question"]["name"], "api.example.com");
        // The root alone stays a name.
        assert_eq!(doc["url"]["domain"], ".");
        assert_eq!(
            doc["network"],
            json!({"transport": "udp", "protocol": "dns"})
        );
        assert_eq!(doc["q"], "api.example.com.");
    }

    #[test]
    fn a_list_gives_an_address_or_number_its_first_usable_value() {
        let t = lt(
            "ecs = source.ip source.port user.roles\nsource.ip = ips\nsource.port = ports\n\
user.roles = roles\n",
        );
        let doc = run(
            &t,
            json!({"ips": ["-", "not an address", "192.0.2.7", "192.0.2.8"], "ports": [],
                   "roles": ["admin", "dev"]}),
        )
        .expect("ok")
        .doc;
        let doc = Value::Object(doc);
        assert_eq!(doc["source"]["ip"], "192.0.2.7");
        assert!(doc["source"].get("port").is_none());
        let mapped = run(&t, json!({"ips": "::ffff:10.0.8.21"})).expect("ok").doc;
        assert_eq!(Value::Object(mapped)["source"]["ip"], "10.0.8.21");
        assert_eq!(doc["user"]["roles"], json!(["admin", "dev"]));
    }

    #[test]
    fn time_fields_are_written_in_rfc3339() {
        let t = lt("timestamp_key = updatedAt\n\
timestamp_format_list = [\"%b %d, %Y, %I:%M:%S %p\", \"iso8601\"]\n\
time_fields = firstObservedAt detail.lastObservedAt missing\n");
        let n = run(
            &t,
            json!({"updatedAt": "Mar 4, 2026, 1:00:00 PM", "firstObservedAt": "Mar 3, 2026, 9:14:02 PM",
                   "detail": {"lastObservedAt": "2026-03-04T12:00:00+09:00"}, "other": "Mar 3, 2026, 9:14:02 PM"}),
        )
        .expect("ok");
        let doc = Value::Object(n.doc);
        assert_eq!(doc["firstObservedAt"], "2026-03-03T21:14:02.000Z");
        assert_eq!(doc["detail"]["lastObservedAt"], "2026-03-04T03:00:00.000Z");
        // The timestamp key and fields not listed stay as written.
        assert_eq!(doc["updatedAt"], "Mar 4, 2026, 1:00:00 PM");
        assert_eq!(doc["other"], "Mar 3, 2026, 9:14:02 PM");
    }

    #[test]
    fn value_maps_translate_into_ecs_words_and_drop_the_others() {
        let t = lt(
            "ecs = event.outcome event.kind event.action\nevent.outcome = status\n\
event.kind = kind\nevent.action = status\n\
value_map = event.outcome: successful=success failed=failure\n    event.kind: alert=alert netflow=event\n",
        );
        let doc = Value::Object(
            run(&t, json!({"status": "failed", "kind": "alert"}))
                .expect("ok")
                .doc,
        );
        assert_eq!(doc["event"]["outcome"], "failure");
        assert_eq!(doc["event"]["kind"], "alert");
        // Fields without a map keep the source's word.
        assert_eq!(doc["event"]["action"], "failed");
        let doc = Value::Object(
            run(&t, json!({"status": "NA", "kind": "tls"}))
                .expect("ok")
                .doc,
        );
        assert!(doc["event"].get("outcome").is_none());
        assert!(doc["event"].get("kind").is_none());
        for bad in [
            "value_map = success=x\n",
            "value_map = event.outcome: success\n",
        ] {
            let e = Config::with_user_file(
                "user.ini",
                &format!("[web]\ns3_key = web/\nindex_name = log-web\n{bad}"),
            )
            .expect_err("invalid");
            assert!(e.to_string().contains("value_map"), "{e}");
        }
    }

    #[test]
    fn url_encoded_fields_map_decoded_and_absent_values_are_not_mapped() {
        let t = lt("url_encoded = ua\nabsent_values = NA\n\
ecs = user_agent.original http.request.referrer url.query\n\
user_agent.original = ua\nhttp.request.referrer = ref\nurl.query = query\n");
        let doc = run(
            &t,
            json!({"ua": "Mozilla/5.0%20(X11;%20Linux)%2520x%ZZ", "ref": "https://a.example/%20b",
                   "query": "NA"}),
        )
        .expect("ok")
        .doc;
        let doc = Value::Object(doc);
        // Decoded once (`%2520` is a written `%20`); a broken escape stays as it is.
        assert_eq!(
            doc["user_agent"]["original"],
            "Mozilla/5.0 (X11; Linux)%20x%ZZ"
        );
        assert_eq!(doc["ua"], "Mozilla/5.0%20(X11;%20Linux)%2520x%ZZ");
        // Fields not listed are mapped as written.
        assert_eq!(doc["http"]["request"]["referrer"], "https://a.example/%20b");
        // A value the type names absent is never mapped, and stays as written.
        assert!(doc.get("url").is_none());
        assert_eq!(doc["query"], "NA");
    }

    #[test]
    fn the_first_usable_candidate_wins_and_invalid_addresses_are_left_out() {
        let t = lt("ecs = source.ip\nsource.ip = xff client\n");
        let doc = run(&t, json!({"xff": "-", "client": "192.0.2.9"}))
            .expect("ok")
            .doc;
        assert_eq!(ecs::get_in(&doc, "source.ip"), Some(&json!("192.0.2.9")));
        // A present value that is not an address gives way to the next candidate.
        let doc = run(&t, json!({"xff": "unknown", "client": "192.0.2.9"}))
            .expect("ok")
            .doc;
        assert_eq!(ecs::get_in(&doc, "source.ip"), Some(&json!("192.0.2.9")));
        let doc = run(&t, json!({"xff": "unknown"})).expect("ok").doc;
        assert_eq!(ecs::get_in(&doc, "source.ip"), None);
        assert_eq!(doc.get("xff"), Some(&json!("unknown")));
        let doc = run(&t, json!({"xff": "[2001:db8::2]"})).expect("ok").doc;
        assert_eq!(ecs::get_in(&doc, "source.ip"), Some(&json!("2001:db8::2")));
    }

    #[test]
    fn nested_json_sources_and_bad_timestamps() {
        let t = lt(
            "timestamp_key = meta.time\ntimestamp_format = epoch\necs = user.name\nuser.name = actor.name\n",
        );
        let n = run(
            &t,
            json!({"meta": {"time": 1714557600}, "actor": {"name": "bob"}}),
        )
        .expect("ok");
        assert_eq!(n.timestamp, Some(utc("2024-05-01T10:00:00Z")));
        assert_eq!(ecs::get_in(&n.doc, "user.name"), Some(&json!("bob")));
        let err = run(&t, json!({"meta": {"time": "soon"}})).expect_err("bad time");
        assert_eq!(
            err.to_string(),
            "field `meta.time` is invalid: `soon` does not match timestamp_format `epoch`"
        );
        let err = run(&t, json!({"actor": {}})).expect_err("no time");
        assert!(err.to_string().contains("is missing"), "{err}");
        assert_eq!(
            run(&t, json!([1])).expect_err("not an object"),
            NormalizeError::NotAnObject
        );
    }

    #[derive(Debug)]
    struct FakeGeo;
    impl GeoLookup for FakeGeo {
        fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
            (ip.to_string() == "81.2.69.9").then(|| {
                let mut info = GeoInfo::default();
                info.geo.insert("country_iso_code".into(), json!("JP"));
                info.asn.insert("number".into(), json!(64500));
                info
            })
        }
    }

    #[test]
    fn geoip_targets_get_geo_and_as() {
        let t = lt(
            "ecs = source.ip destination.ip\nsource.ip = src\ndestination.ip = dst\ngeoip = source destination\n",
        );
        let mut doc = json!({"src": "81.2.69.9", "dst": "198.51.100.1"})
            .as_object()
            .cloned()
            .expect("object");
        apply_mapping(&mut doc, &t, Some(&FakeGeo));
        let doc = Value::Object(doc);
        assert_eq!(doc["source"]["geo"], json!({"country_iso_code": "JP"}));
        assert_eq!(doc["source"]["as"], json!({"number": 64500}));
        assert_eq!(doc["destination"], json!({"ip": "198.51.100.1"}));
    }

    #[test]
    fn the_first_listed_key_present_and_the_first_format_that_fits_give_the_time() {
        let config = Config::with_user_file(
            "user.ini",
            "[app]\ns3_key = /app/\nindex_name = log-app\ntimestamp_key_list = time_stamp TimeStamp\ntimestamp_format_list = [\"epoch\", \"%Y-%m-%d %H:%M:%S\"]\n",
        )
        .expect("config");
        let lt = config.get("app").expect("app");
        let time = |record: Value| {
            let mut out = Vec::new();
            normalize(record, lt, None, &ctx(), &mut out).map(|()| out[0].timestamp)
        };
        assert_eq!(
            time(json!({"TimeStamp": "2026-12-01 10:00:00"})).expect("time"),
            Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).single()
        );
        assert_eq!(
            time(json!({"time_stamp": 1_764_583_200, "TimeStamp": "x"})).expect("time"),
            DateTime::from_timestamp(1_764_583_200, 0)
        );
        let e = time(json!({"other": 1})).expect_err("no key").to_string();
        assert!(e.contains("time_stamp TimeStamp"), "{e}");
        let e = time(json!({"TimeStamp": "soon"}))
            .expect_err("no format")
            .to_string();
        assert!(e.contains("`epoch` or `%Y-%m-%d %H:%M:%S`"), "{e}");
    }

    #[test]
    fn renamed_fields_json_text_and_a_prefix_for_the_records_own_fields() {
        let lt = lt(
            "renamed_newfields = Duration_us\nDuration_us = Duration (us)\n\
             json_to_text = detail.extra tags state_id\nfield_prefix = app\n\
             ecs = source.ip event.duration event.id\nsource.ip = client\nevent.duration = Duration_us\n\
             event.id = state_id\n\
             timestamp_key = time\ntimestamp_format = epoch\n",
        );
        let n = run(
            &lt,
            json!({"time": 1_764_583_200, "client": "203.0.113.5", "Duration (us)": 1200,
                   "detail": {"extra": {"a": [1, 2]}, "kept": {"b": 1}}, "tags": ["x", "y"],
                   "plain": "text", "state_id": 1_772_625_667_310_u64}),
        )
        .expect("normalized");
        assert_eq!(
            Value::Object(n.doc),
            json!({
                "app": {
                    "time": 1_764_583_200, "client": "203.0.113.5", "Duration_us": 1200,
                    "detail": {"extra": "{\"a\":[1,2]}", "kept": {"b": 1}},
                    "tags": "[\"x\",\"y\"]", "plain": "text", "state_id": "1772625667310"
                },
                "source": {"ip": "203.0.113.5"},
                "event": {"duration": 1200, "module": "web", "id": "1772625667310"},
                "related": {"ip": ["203.0.113.5"]}
            })
        );
    }

    #[test]
    fn the_client_behind_trusted_proxies_comes_from_x_forwarded_for() {
        let lt = lt("ecs = source.ip http.request.header.x_forwarded_for\n\
             source.ip = remote\nhttp.request.header.x_forwarded_for = xff\n\
             clientip_xff = source.ip http.request.header.x_forwarded_for\n\
             trusted_proxies = 10.0.0.0/8, 130.176.0.0/16\n");
        let source = |record: Value| {
            let n = run(&lt, record).expect("normalized");
            ecs::get_in(&n.doc, "source.ip").cloned()
        };
        // Behind two trusted hops the client is the last untrusted address.
        assert_eq!(
            source(json!({"remote": "10.1.2.3", "xff": "198.51.100.7, 203.0.113.9, 130.176.4.4"})),
            Some(json!("203.0.113.9"))
        );
        // A connecting address that is no trusted proxy is the client: the header is forgeable.
        assert_eq!(
            source(json!({"remote": "192.0.2.44", "xff": "203.0.113.9"})),
            Some(json!("192.0.2.44"))
        );
        // Only trusted addresses in the header: the connecting address stays.
        assert_eq!(
            source(json!({"remote": "10.1.2.3", "xff": "10.9.9.9"})),
            Some(json!("10.1.2.3"))
        );
        // Ports are read; an entry that is no address stops the walk (forged before it).
        assert_eq!(
            source(json!({"remote": "10.1.2.3", "xff": "6.6.6.6, 203.0.113.9:443"})),
            Some(json!("203.0.113.9"))
        );
        assert_eq!(
            source(json!({"remote": "10.1.2.3", "xff": "6.6.6.6, junk, 130.176.4.4"})),
            Some(json!("10.1.2.3"))
        );
        assert_eq!(
            source(json!({"remote": "10.1.2.3", "xff": "[2001:db8::1]:8443"})),
            Some(json!("2001:db8::1"))
        );
        let without =
            lt_config("[web]\ns3_key = web/\nindex_name = log-web\nclientip_xff = source.ip x\n");
        assert!(
            without
                .warnings
                .iter()
                .any(|w| w.contains("trusted_proxies")),
            "{:?}",
            without.warnings
        );
    }

    fn lt_config(text: &str) -> Config {
        Config::with_user_file("user.ini", text).expect("valid config")
    }

    #[test]
    fn firelens_records_unwrap_their_line_and_name_the_container() {
        let lt = lt("via_firelens = True\nfile_format = text\n\
             log_pattern = ^(?P<remote>\\S+) (?P<method>[A-Z]+) (?P<path>\\S+)$$\n\
             ecs = source.ip url.path\nsource.ip = remote\nurl.path = path\n");
        let record = json!({
            "container_id": "0f1e2d3c4b5a", "container_name": "web",
            "source": "stdout", "ecs_cluster": "prod",
            "ecs_task_arn": "arn:aws:ecs:eu-west-1:111122223333:task/prod/8f7e6d",
            "ecs_task_definition": "web:12", "log": "203.0.113.8 GET /health"
        });
        let n = run(&lt, record).expect("normalized");
        let get = |f: &str| ecs::get_in(&n.doc, f).cloned();
        assert_eq!(get("source.ip"), Some(json!("203.0.113.8")));
        assert_eq!(get("url.path"), Some(json!("/health")));
        assert_eq!(get("container.name"), Some(json!("web")));
        assert_eq!(get("cloud.account.id"), Some(json!("111122223333")));
        assert_eq!(get("cloud.region"), Some(json!("eu-west-1")));
        assert_eq!(get("method"), Some(json!("GET")));
        let e = run(
            &lt,
            json!({"source": "stdout", "log": "not an access line"}),
        )
        .expect_err("unmatched")
        .to_string();
        assert!(e.contains("does not match log_pattern"), "{e}");
        let e = run(&lt, json!({"source": "stdout"}))
            .expect_err("no log")
            .to_string();
        assert!(e.contains("`log`"), "{e}");
    }

    #[test]
    fn a_records_tags_object_becomes_labels() {
        let lt = lt("");
        let doc = |record: Value| Value::Object(run(&lt, record).expect("normalized").doc);
        let d = doc(json!({"tags": {"Name": "web", "team": "shop"}, "id": 1}));
        assert_eq!(d["labels"], json!({"Name": "web", "team": "shop"}));
        assert_eq!(d.get("tags"), None);
        assert_eq!(doc(json!({"tags": {}}))["tags"], Value::Null);
        let d = doc(json!({"tags": {"a": "b"}, "labels": ["x"]}));
        assert_eq!(d["tags"], json!("{\"a\":\"b\"}"));
        // A list of words is what ECS's tags are: kept.
        assert_eq!(doc(json!({"tags": ["blue"]}))["tags"], json!(["blue"]));
    }
}
