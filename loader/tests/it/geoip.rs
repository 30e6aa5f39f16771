//! GeoIP from real MaxMind-format databases: a tiny City and ASN database is written here (one
//! IPv4 /24 network with data), read through `loader::geoip::MaxMind`, and used by the binary
//! through `GEOIP_DATABASE_DIR` for the `geoip = source` of the Apache example.

use loader::geoip::{ASN_FILE, CITY_FILE, GeoLookup, MaxMind};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::Command;

/// The MaxMind DB data-section encoding of a JSON value (maps, strings, unsigned integers,
/// doubles, arrays, booleans): enough for GeoLite2-shaped records.
fn encode(value: &Value, out: &mut Vec<u8>) {
    fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
        assert!(size < 29 + 256, "values up to 284 bytes only");
        let (small, extra) = if size < 29 {
            (size as u8, None)
        } else {
            (29, Some((size - 29) as u8))
        };
        if kind <= 7 {
            out.push((kind << 5) | small);
        } else {
            out.push(small);
            out.push(kind - 7);
        }
        out.extend(extra);
    }
    match value {
        Value::String(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Number(n) if n.is_u64() => {
            let v = n.as_u64().expect("u64");
            let bytes: Vec<u8> = v
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            // uint32 for what fits, uint64 beyond.
            if bytes.len() <= 4 {
                control(out, 6, bytes.len());
            } else {
                control(out, 9, bytes.len());
            }
            out.extend_from_slice(&bytes);
        }
        Value::Number(n) => {
            control(out, 3, 8);
            out.extend_from_slice(&n.as_f64().expect("f64").to_be_bytes());
        }
        Value::Bool(b) => control(out, 14, usize::from(*b)),
        Value::Array(items) => {
            control(out, 11, items.len());
            for item in items {
                encode(item, out);
            }
        }
        Value::Object(map) => {
            control(out, 7, map.len());
            for (k, v) in map {
                encode(&Value::String(k.clone()), out);
                encode(v, out);
            }
        }
        Value::Null => panic!("no nulls in MaxMind DB"),
    }
}

/// An IPv4 database (24-bit records) where `network`/`prefix` holds `data` and nothing else
/// does: a chain of one node per prefix bit.
fn database(network: Ipv4Addr, prefix: u32, database_type: &str, data: &Value) -> Vec<u8> {
    let node_count = prefix;
    let bits = u32::from(network);
    let mut out = Vec::new();
    let put24 = |out: &mut Vec<u8>, v: u32| out.extend_from_slice(&v.to_be_bytes()[1..]);
    // The data record sits at offset 0 of the data section.
    let data_pointer = node_count + 16;
    for depth in 0..prefix {
        let next = if depth + 1 == prefix {
            data_pointer
        } else {
            depth + 1
        };
        let bit = (bits >> (31 - depth)) & 1;
        let (left, right) = if bit == 0 {
            (next, node_count)
        } else {
            (node_count, next)
        };
        put24(&mut out, left);
        put24(&mut out, right);
    }
    out.extend_from_slice(&[0u8; 16]);
    encode(data, &mut out);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let mut meta = Vec::new();
    let entries: Vec<(&str, Value)> = vec![
        ("binary_format_major_version", json!(2)),
        ("binary_format_minor_version", json!(0)),
        ("build_epoch", json!(1_700_000_000u64)),
        ("database_type", json!(database_type)),
        ("description", json!({"en": "test database"})),
        ("ip_version", json!(4)),
        ("languages", json!(["en"])),
        ("node_count", json!(node_count)),
        ("record_size", json!(24)),
    ];
    meta.push((7 << 5) | entries.len() as u8);
    for (k, v) in entries {
        encode(&json!(k), &mut meta);
        // uint16 where the format says so.
        match (k, &v) {
            (
                "binary_format_major_version"
                | "binary_format_minor_version"
                | "ip_version"
                | "record_size",
                Value::Number(n),
            ) => {
                let n = n.as_u64().expect("small") as u16;
                meta.push((5 << 5) | 2);
                meta.extend_from_slice(&n.to_be_bytes());
            }
            ("build_epoch", Value::Number(n)) => {
                meta.push(8);
                meta.push(9 - 7);
                meta.extend_from_slice(&n.as_u64().expect("u64").to_be_bytes());
            }
            _ => encode(&v, &mut meta),
        }
    }
    out.extend_from_slice(&meta);
    out
}

fn city_db() -> Vec<u8> {
    database(
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "GeoLite2-City",
        &json!({
            "city": {"names": {"en": "Tokyo"}},
            "continent": {"code": "AS", "names": {"en": "Asia"}},
            "country": {"iso_code": "JP", "names": {"en": "Japan"}},
            "location": {"latitude": 35.6895, "longitude": 139.6917, "time_zone": "Asia/Tokyo"},
            "subdivisions": [{"iso_code": "13", "names": {"en": "Tokyo"}}]
        }),
    )
}

fn asn_db() -> Vec<u8> {
    database(
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "GeoLite2-ASN",
        &json!({"autonomous_system_number": 64500, "autonomous_system_organization": "Example Net"}),
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn city_and_asn_lookups_from_mmdb_files() {
    let db = MaxMind::from_bytes(Some(city_db()), Some(asn_db())).expect("valid databases");
    let info = db.lookup(ip("192.0.2.10")).expect("in the network");
    assert_eq!(
        Value::Object(info.geo),
        json!({
            "city_name": "Tokyo",
            "continent_code": "AS",
            "continent_name": "Asia",
            "country_iso_code": "JP",
            "country_name": "Japan",
            "region_iso_code": "13",
            "region_name": "Tokyo",
            "timezone": "Asia/Tokyo",
            "location": {"lat": 35.6895, "lon": 139.6917}
        })
    );
    assert_eq!(
        Value::Object(info.asn),
        json!({"number": 64500, "organization": {"name": "Example Net"}})
    );
    assert_eq!(db.lookup(ip("192.0.3.1")), None);
    assert_eq!(db.lookup(ip("2001:db8::1")), None);

    let dir = tempfile::tempdir().expect("tempdir");
    assert!(MaxMind::open_dir(dir.path()).is_err(), "an empty folder");
    std::fs::write(dir.path().join(ASN_FILE), asn_db()).expect("write");
    let asn_only = MaxMind::open_dir(dir.path()).expect("ASN alone is enough");
    let info = asn_only.lookup(ip("192.0.2.200")).expect("found");
    assert!(info.geo.is_empty());
    assert_eq!(info.asn["number"], 64500);
    std::fs::write(dir.path().join(CITY_FILE), b"not a database").expect("write");
    let err = MaxMind::open_dir(dir.path()).expect_err("corrupt");
    assert!(err.to_string().contains(CITY_FILE), "{err}");
}

#[test]
fn the_binary_enriches_the_apache_example_from_geoip_database_dir() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apache");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(CITY_FILE), city_db()).expect("write");
    std::fs::write(dir.path().join(ASN_FILE), asn_db()).expect("write");
    let input = fixtures.join("common/UserLogs/apache/access.log-20240502.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["test", "--type", "apache"])
        .arg(&input)
        .arg("--config")
        .arg(fixtures.join("user.ini"))
        .env("GEOIP_DATABASE_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let docs = docs.as_array().expect("array");
    assert_eq!(docs.len(), 3);
    for d in docs {
        let source = &d["_source"]["source"];
        assert_eq!(source["geo"]["country_iso_code"], "JP", "{d}");
        assert_eq!(source["as"]["number"], 64500, "{d}");
    }
    assert!(!String::from_utf8_lossy(&out.stderr).contains("GEOIP_DATABASE_DIR is not set"));
}
