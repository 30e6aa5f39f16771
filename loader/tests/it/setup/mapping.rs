//! After `loader setup`, every golden document of every type loads, and every field OpenSearch
//! mapped for them is one the templates declare, with the type they declare; the declared
//! types follow what the fields hold; and the queries that need those types answer rightly.

use super::*;
use crate::sink::golden_docs::golden_items;
use crate::sink::{sink_to, test_config, write_all_taken};
use chrono::{DateTime, Utc};
use loader::content::fields::{FieldTable, FieldType, Resolved};
use loader::content::templates::all_fields_of;
use loader::sink::BulkItem;
use serde_json::json;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Every leaf of a `_mapping` answer's properties as (dotted path, type); an object that
/// holds nothing is a leaf of type `object` (dynamic mapping made it).
fn mapped_leaves(properties: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, node) in properties.as_object().into_iter().flatten() {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let kind = node["type"].as_str().unwrap_or("object");
        match (&node["properties"], kind) {
            (Value::Object(inner), "object" | "nested") if !inner.is_empty() => {
                mapped_leaves(&node["properties"], &path, out);
            }
            _ => out.push((path, kind.to_owned())),
        }
    }
}

/// Every leaf value of a document with its dotted path (list elements share their path).
fn leaves(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    visit(doc, "", &mut |path, v| {
        if !v.is_object() {
            out.push((path.to_owned(), v));
        }
    });
    out
}

/// The values a document holds at a dotted path (through lists).
fn values_at<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![value];
    for part in path.split('.') {
        current = current
            .into_iter()
            .flat_map(|v| match v {
                Value::Array(items) => items.iter().collect::<Vec<_>>(),
                other => vec![other],
            })
            .filter_map(|v| v.get(part))
            .collect();
    }
    current
}

/// The type a field's name and content call for, where they call for one.
fn expected_types(path: &str) -> Option<&'static [FieldType]> {
    use FieldType::*;
    const NUMERIC: &[FieldType] = &[Long, Integer, Float, Double];
    let last = path.rsplit('.').next().unwrap_or(path);
    let ecs_like = path.contains('.');
    if path == "@timestamp"
        || (ecs_like && matches!(last, "created" | "start" | "end" | "ingested"))
        || last.ends_with("At")
        || last.ends_with("Seen")
        || matches!(last, "eventTime" | "creationDate")
    {
        return Some(&[Date]);
    }
    if last == "ip"
        || last.eq_ignore_ascii_case("ipAddressV4")
        || matches!(
            last,
            "clientIp" | "privateIpAddress" | "publicIp" | "pkt_srcaddr" | "pkt_dstaddr"
        )
    {
        return Some(&[Ip]);
    }
    if path.ends_with(".geo.location") {
        return Some(&[GeoPoint]);
    }
    if path == "event.severity"
        || (ecs_like
            && (matches!(
                last,
                "port" | "bytes" | "packets" | "status_code" | "pid" | "count"
            ) || last.eq_ignore_ascii_case("port")))
    {
        return Some(NUMERIC);
    }
    if path == "message" {
        return Some(&[Text]);
    }
    if matches!(
        last,
        "id" | "action" | "name" | "provider" | "dataset" | "kind" | "outcome"
    ) || last.ends_with("Id")
        || last.ends_with("Name")
    {
        return Some(&[Keyword, Ip]);
    }
    None
}

/// Whether a fixture value can be indexed as `kind` (what OpenSearch would refuse or, for a
/// number in a keyword, silently make unsortable).
fn value_fits(kind: FieldType, value: &Value) -> bool {
    match (kind, value) {
        (_, Value::Null) => true,
        (FieldType::Ip, Value::String(s)) => s.parse::<IpAddr>().is_ok(),
        (FieldType::Date, Value::String(s)) => DateTime::parse_from_rfc3339(s).is_ok(),
        (FieldType::Date, Value::Number(_)) => true,
        (FieldType::Boolean, Value::Bool(_)) => true,
        (FieldType::Boolean, Value::String(s)) => s == "true" || s == "false",
        (k, Value::Number(n)) if k.is_numeric() => {
            matches!(k, FieldType::Float | FieldType::Double) || n.is_i64() || n.is_u64()
        }
        (FieldType::Keyword | FieldType::Text, Value::String(_)) => true,
        (FieldType::GeoPoint, _) => true,
        _ => false,
    }
}

fn fixture_documents() -> Vec<BulkItem> {
    golden_items("")
}

fn source(item: &BulkItem) -> Value {
    serde_json::from_slice(&item.source).expect("fixture source")
}

#[test]
fn every_fixture_field_is_declared_with_a_type_that_fits_it() {
    let (config, content) = fixture_config();
    let groups = groups(&config);
    let mut problems = BTreeSet::new();
    for item in fixture_documents() {
        let group = group_of(&groups, &item.index);
        let table: FieldTable = all_fields_of(&content, group).expect("fields");
        let doc = source(&item);
        for (path, value) in leaves(&doc) {
            match table.resolve(&path) {
                // A null where the table declares an object (WAF writes `"terminatingRule":
                // null`) maps nothing.
                None if value.is_null()
                    && table
                        .iter()
                        .any(|(n, _)| n.starts_with(&format!("{path}."))) => {}
                None => {
                    problems.insert(format!("{}: `{path}` is not declared", group.alias));
                }
                Some(Resolved::InFlatObject(_)) => {}
                Some(Resolved::Field(kind)) => {
                    if !value_fits(kind, value) {
                        problems.insert(format!(
                            "{}: `{path}` is {kind} but holds {value}",
                            group.alias
                        ));
                    }
                    if let Some(wanted) = expected_types(&path)
                        && !wanted.contains(&kind)
                    {
                        problems.insert(format!(
                            "{}: `{path}` is {kind}, its name calls for {wanted:?}",
                            group.alias
                        ));
                    }
                }
            }
        }
        // A flat object must be given an object: OpenSearch refuses a list or a scalar there.
        for (name, kind) in table.iter() {
            if kind != FieldType::FlatObject {
                continue;
            }
            for v in values_at(&doc, name) {
                if !(v.is_object() || v.is_null()) {
                    problems.insert(format!(
                        "{}: flat object `{name}` holds {v} in {}",
                        group.alias, item.origin.object
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn after_setup_every_golden_document_loads_with_only_declared_mappings() {
    let cluster = tests::OwnOpenSearch::start();
    let http = transport(&cluster.url);
    let report = apply(&http, None, true).await;
    assert_eq!(report.failed(), 0, "{report}");

    let items = fixture_documents();
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
    write_all_taken(&sink, dir.path(), items.clone()).await;

    let (config, content) = fixture_config();
    let groups = groups(&config);
    let mappings = call(&http, Method::Get, "/_mapping", None).await;
    let indices: BTreeSet<&str> = items.iter().map(|i| &*i.index).collect();
    let mut problems = Vec::new();
    for index in &indices {
        let group = group_of(&groups, index);
        let table = all_fields_of(&content, group).expect("fields");
        let mut mapped = Vec::new();
        mapped_leaves(&mappings[*index]["mappings"]["properties"], "", &mut mapped);
        assert!(!mapped.is_empty(), "{index} has no mapping: {mappings}");
        for (path, kind) in mapped {
            match table.get(&path) {
                Some(declared) if declared.name() == kind => {}
                Some(declared) => problems.push(format!(
                    "{index}: `{path}` is mapped {kind}, declared {declared}"
                )),
                None => problems.push(format!("{index}: `{path}` ({kind}) was mapped dynamically")),
            }
        }
        // Reached through its alias, without naming a month.
        let aliases = &mappings[*index];
        assert!(aliases.is_object(), "{index}");
        let by_alias = call(
            &http,
            Method::Post,
            &format!("/{}/_count", group.alias),
            Some(json!({"query": {"match_all": {}}})),
        )
        .await;
        assert!(
            by_alias["count"].as_u64().unwrap_or(0) > 0,
            "{}: {by_alias}",
            group.alias
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[tokio::test]
async fn a_string_and_an_object_in_one_request_parameter_both_load_and_are_searchable() {
    let cluster = tests::OwnOpenSearch::start();
    let http = transport(&cluster.url);
    assert_eq!(apply(&http, None, true).await.failed(), 0);
    let items: Vec<BulkItem> = fixture_documents()
        .into_iter()
        .filter(|i| i.origin.object.contains("request-parameter-shapes"))
        .collect();
    let shapes: Vec<bool> = items
        .iter()
        .map(|i| source(i)["requestParameters"]["filter"].is_string())
        .collect();
    assert_eq!(shapes, [true, false], "one string, one object");
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
    let out = sink.write(items).await;
    assert!(out.is_complete(), "{:?}", out.failures);
    assert_eq!((out.stats.created, out.stats.quarantined), (2, 0));
    let _ = http
        .request(Method::Post, "/_refresh", &[], None)
        .await
        .expect("refresh");
    for (query, hits) in [
        (
            json!({"term": {"requestParameters.filter": "instance-state-name=running"}}),
            1,
        ),
        (
            json!({"term": {"requestParameters.filter.pattern.terms": "timeout"}}),
            1,
        ),
        (
            json!({"ids": {"values": ["3d0a9c52-8f0e-4f1e-9a1b-6a4c0b9e2f01", "8e4b7d21-3c6a-4b0f-8d2e-5f1a9c7b3e62"]}}),
            2,
        ),
    ] {
        let answer = call(
            &http,
            Method::Post,
            "/log-aws-cloudtrail/_count",
            Some(json!({"query": query})),
        )
        .await;
        assert_eq!(answer["count"], json!(hits), "{query}: {answer}");
    }
}

#[tokio::test]
async fn time_ranges_address_blocks_and_keyword_counts_answer_rightly() {
    let cluster = tests::OwnOpenSearch::start();
    let http = transport(&cluster.url);
    assert_eq!(apply(&http, None, true).await.failed(), 0);
    let items = fixture_documents();
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = sink_to(&test_config(&cluster.url), dir.path()).await;
    assert!(sink.write(items.clone()).await.is_complete());
    let _ = http.request(Method::Post, "/_refresh", &[], None).await;

    // Distinct documents, as the cluster keeps them (a fixture may repeat an id).
    let mut docs: BTreeMap<(String, String), Value> = BTreeMap::new();
    for item in &items {
        docs.insert((item.index.to_string(), item.id.to_string()), source(item));
    }
    let count = |query: Value| {
        let http = &http;
        async move {
            call(
                http,
                Method::Post,
                "/log-*/_count",
                Some(json!({"query": query})),
            )
            .await["count"]
                .as_u64()
                .unwrap_or(u64::MAX)
        }
    };

    let (from, to) = ("2024-05-01T00:00:00Z", "2024-05-01T12:00:00Z");
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
    let (from_t, to_t) = (parse(from).expect("time"), parse(to).expect("time"));
    let in_range = docs
        .values()
        .filter_map(|d| d["@timestamp"].as_str().and_then(|t| parse(t).ok()))
        .filter(|t| *t >= from_t && *t < to_t)
        .count() as u64;
    assert!(
        in_range > 0 && in_range < docs.len() as u64,
        "a range that splits the fixtures"
    );
    assert_eq!(
        count(json!({"range": {"@timestamp": {"gte": from, "lt": to}}})).await,
        in_range
    );

    for (cidr, net, bits) in [
        ("198.51.100.0/24", "198.51.100.0", 24u32),
        ("10.0.0.0/8", "10.0.0.0", 8),
        ("2001:db8::/32", "2001:db8::", 32),
    ] {
        let net: IpAddr = net.parse().expect("network");
        let inside = |ip: &IpAddr| match (ip, net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => {
                u32::from(*a) >> (32 - bits) == u32::from(n) >> (32 - bits)
            }
            (IpAddr::V6(a), IpAddr::V6(n)) => {
                u128::from(*a) >> (128 - bits) == u128::from(n) >> (128 - bits)
            }
            _ => false,
        };
        let expected = docs
            .values()
            .filter_map(|d| d["source"]["ip"].as_str()?.parse::<IpAddr>().ok())
            .filter(|ip| inside(ip))
            .count() as u64;
        assert!(expected > 0, "fixtures have addresses in {cidr}");
        assert_eq!(
            count(json!({"term": {"source.ip": cidr}})).await,
            expected,
            "{cidr}"
        );
    }

    let mut actions: BTreeMap<String, u64> = BTreeMap::new();
    for d in docs.values() {
        if let Some(a) = d["event"]["action"].as_str() {
            *actions.entry(a.to_owned()).or_default() += 1;
        }
    }
    let answer = call(
        &http,
        Method::Post,
        "/log-*/_search",
        Some(json!({"size": 0, "aggs": {"actions": {"terms": {"field": "event.action", "size": 500}}}})),
    )
    .await;
    let buckets: BTreeMap<String, u64> = answer["aggregations"]["actions"]["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| Some((b["key"].as_str()?.to_owned(), b["doc_count"].as_u64()?)))
        .collect();
    assert!(actions.len() > 10, "many actions in the fixtures");
    assert_eq!(buckets, actions);
}
