//! `loader search DIR QUERY`: the local index, queried with OpenSearch Dashboards' syntax;
//! a table of the newest documents, their count, the top values of a field, or JSON for pipes.

use super::CliError;
use crate::index::search::{Found, Request};
use crate::index::{LocalIndex, field_table, search};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;

/// The command line of `loader search`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The index folder a load wrote (`loader load ... --index DIR`).
    pub dir: PathBuf,
    /// The query, in OpenSearch Dashboards' Lucene syntax (`eventName:StopLogging AND
    /// source.ip:10.0.0.0/8`, `_exists_:user.name`, `@timestamp:[now-7d TO now]`, ...);
    /// `*` for every document.
    #[arg(default_value = "*")]
    pub query: String,
    /// Only the last `24h`, `7d`, `30m`, ... (by `@timestamp`).
    #[arg(long, value_name = "DURATION", conflicts_with = "from")]
    pub since: Option<String>,
    /// From this time: RFC 3339, a date, or `now-7d`.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Until this time (included).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Table columns (dotted fields), e.g. `@timestamp,user.name,source.ip`.
    #[arg(long, value_delimiter = ',', value_name = "FIELDS")]
    pub fields: Vec<String>,
    /// Count the values of this field in the matching documents, most frequent first.
    #[arg(long, value_name = "FIELD")]
    pub top: Option<String>,
    /// Documents per page (default 20), or values with `--top` (default 10).
    #[arg(long, value_name = "N")]
    pub size: Option<usize>,
    /// The page of documents (newest first), from 1.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub page: usize,
    /// Only the number of matching documents.
    #[arg(long)]
    pub count: bool,
    /// The page as a JSON array of `{_index, _id, _source}`.
    #[arg(long, conflicts_with = "ndjson")]
    pub json: bool,
    /// The page as one `{_index, _id, _source}` per line.
    #[arg(long)]
    pub ndjson: bool,
}

/// The columns without `--fields`.
const DEFAULT_FIELDS: [&str; 6] = [
    "@timestamp",
    "@log_type",
    "event.action",
    "user.name",
    "source.ip",
    "message",
];
/// A table cell longer than this is cut (the JSON outputs keep everything).
const CELL_CHARS: usize = 60;

pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let now = Utc::now();
    let content = crate::content::Content::bundled()?;
    let index = LocalIndex::open(&args.dir, field_table(&content))?;
    let time =
        |flag: &'static str, value: &Option<String>| -> Result<Option<DateTime<Utc>>, CliError> {
            value
                .as_deref()
                .map(|v| {
                    parse_time(v, now).ok_or_else(|| CliError::BadArgument {
                        name: flag,
                        value: v.to_owned(),
                        reason: "not a time (RFC 3339, YYYY-MM-DD or now-7d)".to_owned(),
                    })
                })
                .transpose()
        };
    let from = match &args.since {
        Some(since) => Some(
            crate::index::translate::date_math(now, &format!("-{since}")).ok_or_else(|| {
                CliError::BadArgument {
                    name: "--since",
                    value: since.clone(),
                    reason: "not a duration such as 24h, 7d or 30m".to_owned(),
                }
            })?,
        ),
        None => time("--from", &args.from)?,
    };
    let to = time("--to", &args.to)?;
    let request = Request {
        query: args.query.clone(),
        from,
        to,
        size: args
            .size
            .unwrap_or(if args.top.is_some() { 10 } else { 20 }),
        page: args.page.max(1),
        top: args.top.clone(),
        now,
    };
    let started = std::time::Instant::now();
    let found = search::search(&index, &request)?;
    let took = started.elapsed().as_secs_f64() * 1000.0;
    let write = |out: &mut dyn Write, text: String| out.write_all(text.as_bytes());
    if args.count {
        write(out, format!("{}\n", found.total)).map_err(CliError::Write)?;
        write(err, format!("took {took:.1} ms\n")).map_err(CliError::Write)?;
        return Ok(());
    }
    if let Some(field) = &args.top {
        if args.json || args.ndjson {
            let values: Vec<Value> = found
                .top
                .iter()
                .map(|(v, n)| json!({"value": v, "count": n}))
                .collect();
            write(out, format!("{}\n", Value::Array(values))).map_err(CliError::Write)?;
        } else {
            write(out, top_table(field, &found)).map_err(CliError::Write)?;
        }
        write(
            err,
            format!("{} documents match (took {took:.1} ms)\n", found.total),
        )
        .map_err(CliError::Write)?;
        return Ok(());
    }
    let documents = found
        .hits
        .iter()
        .map(|h| json!({"_index": h.index, "_id": h.id, "_source": h.source}));
    if args.json {
        let all: Vec<Value> = documents.collect();
        write(out, format!("{}\n", Value::Array(all))).map_err(CliError::Write)?;
    } else if args.ndjson {
        for doc in documents {
            write(out, format!("{doc}\n")).map_err(CliError::Write)?;
        }
    } else {
        let fields: Vec<&str> = if args.fields.is_empty() {
            DEFAULT_FIELDS.to_vec()
        } else {
            args.fields.iter().map(String::as_str).collect()
        };
        write(out, table(&fields, &found)).map_err(CliError::Write)?;
    }
    let size = request.size.max(1);
    let pages = found.total.div_ceil(size).max(1);
    let mut footer = format!(
        "{} documents match, newest first; page {} of {pages} (took {took:.1} ms)",
        found.total, request.page
    );
    if request.page < pages {
        footer.push_str(&format!(" (--page {} for more)", request.page + 1));
    }
    write(err, format!("{footer}\n")).map_err(CliError::Write)?;
    Ok(())
}

/// `2026-03-04T05:06:07Z`, `2026-03-04` (its start), `now`, `now-7d`.
fn parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(math) = text.strip_prefix("now") {
        return crate::index::translate::date_math(now, math);
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
        })
}

/// A dotted field of a document as one cell: lists joined by `,`, objects as JSON.
fn cell(source: &Value, path: &str) -> String {
    let value = source
        .get(path)
        .or_else(|| path.split('.').try_fold(source, |v, part| v.get(part)));
    let text = match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    };
    let text = text.replace(['\n', '\t', '\r'], " ");
    if text.chars().count() > CELL_CHARS {
        let cut: String = text.chars().take(CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c + 1 == columns {
                    v.clone()
                } else {
                    format!("{v:<width$}", width = widths[c])
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn table(fields: &[&str], found: &Found) -> String {
    let mut rows = vec![fields.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>()];
    for hit in &found.hits {
        rows.push(fields.iter().map(|f| cell(&hit.source, f)).collect());
    }
    aligned(&rows)
}

fn top_table(field: &str, found: &Found) -> String {
    let mut rows = vec![vec![field.to_owned(), "count".to_owned()]];
    for (value, count) in &found.top {
        rows.push(vec![value.clone(), count.to_string()]);
    }
    aligned(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_read_dotted_paths_lists_and_cut_long_text() {
        let doc = json!({"user": {"name": "alice"}, "related": {"ip": ["10.0.0.1", "10.0.0.2"]},
                         "flat.key": 5, "message": "x".repeat(100)});
        assert_eq!(cell(&doc, "user.name"), "alice");
        assert_eq!(cell(&doc, "related.ip"), "10.0.0.1,10.0.0.2");
        assert_eq!(cell(&doc, "flat.key"), "5");
        assert_eq!(cell(&doc, "missing.field"), "");
        assert_eq!(cell(&doc, "message").chars().count(), CELL_CHARS);
    }

    #[test]
    fn times_and_tables() {
        let now = DateTime::parse_from_rfc3339("2026-03-10T00:00:00Z")
            .expect("t")
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("2026-03-04", now).map(|t| t.to_rfc3339()),
            Some("2026-03-04T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            parse_time("now-7d", now).map(|t| t.date_naive().to_string()),
            Some("2026-03-03".to_owned())
        );
        assert_eq!(parse_time("soon", now), None);
        let rows = vec![
            vec!["a".to_owned(), "bb".to_owned()],
            vec!["ccc".to_owned(), "d".to_owned()],
        ];
        assert_eq!(aligned(&rows), "a    bb\nccc  d\n");
    }
}
