//! GeoIP from real MaxMind-format databases: a tiny City and ASN database is written here (one
//! IPv4 /24 network with data), read through `loader::enrich::geo::MaxMind`, and used by the binary
//! through `GEOIP_DATABASE_DIR` for the `geoip = source` of the Apache example.

use loader::enrich::geo::{ASN_FILE, CITY_FILE, GeoLookup, MaxMind};
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

/// An IPv4 database (24-bit records) where each `(network, prefix)` holds its data and
/// nothing else has any: a search tree with a path per network.
pub fn database(networks: &[(Ipv4Addr, u32, Value)], database_type: &str) -> Vec<u8> {
    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (k, (network, prefix, value)) in networks.iter().enumerate() {
        offsets.push(data.len());
        encode(value, &mut data);
        let bits = u32::from(*network);
        let mut node = 0;
        for depth in 0..*prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == *prefix {
                nodes[node][bit] = Record::Data(k);
            } else {
                node = match nodes[node][bit] {
                    Record::Node(next) => next,
                    _ => {
                        nodes.push([Record::Empty; 2]);
                        let next = nodes.len() - 1;
                        nodes[node][bit] = Record::Node(next);
                        next
                    }
                };
            }
        }
    }
    let node_count = nodes.len() as u32;
    let mut out = Vec::new();
    for pair in &nodes {
        for record in pair {
            let value = match *record {
                Record::Empty => node_count,
                Record::Node(i) => i as u32,
                Record::Data(k) => node_count + 16 + offsets[k] as u32,
            };
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
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

/// The City database of the tests: Tokyo for 81.2.69.0/24 (public addresses: documentation
/// ranges are never looked up), Sydney for 1.128.0.0/11.
pub fn city_db() -> Vec<u8> {
    database(
        &[
            (
                Ipv4Addr::new(81, 2, 69, 0),
                24,
                json!({
                    "city": {"names": {"en": "Tokyo"}},
                    "continent": {"code": "AS", "names": {"en": "Asia"}},
                    "country": {"iso_code": "JP", "names": {"en": "Japan"}},
                    "location": {"latitude": 35.6895, "longitude": 139.6917, "time_zone": "Asia/Tokyo"},
                    "subdivisions": [{"iso_code": "13", "names": {"en": "Tokyo"}}]
                }),
            ),
            (
                Ipv4Addr::new(1, 128, 0, 0),
                11,
                json!({
                    "city": {"names": {"en": "Sydney"}},
                    "continent": {"code": "OC", "names": {"en": "Oceania"}},
                    "country": {"iso_code": "AU", "names": {"en": "Australia"}},
                    "location": {"latitude": -33.8688, "longitude": 151.2093, "time_zone": "Australia/Sydney"},
                    "subdivisions": [{"iso_code": "NSW", "names": {"en": "New South Wales"}}]
                }),
            ),
        ],
        "GeoLite2-City",
    )
}

/// The ASN database of the tests: AS 64500 for 81.2.69.0/24, AS 64501 for 1.128.0.0/11.
pub fn asn_db() -> Vec<u8> {
    database(
        &[
            (
                Ipv4Addr::new(81, 2, 69, 0),
                24,
                json!({"autonomous_system_number": 64500, "autonomous_system_organization": "Example Net"}),
            ),
            (
                Ipv4Addr::new(1, 128, 0, 0),
                11,
                json!({"autonomous_system_number": 64501, "autonomous_system_organization": "Example Mobile"}),
            ),
        ],
        "GeoLite2-ASN",
    )
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

#[test]
fn city_and_asn_lookups_from_mmdb_files() {
    let db = MaxMind::from_bytes(Some(city_db()), Some(asn_db())).expect("valid databases");
    let info = db.lookup(ip("81.2.69.10")).expect("in the network");
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
    assert_eq!(db.lookup(ip("81.2.70.1")), None);
    assert_eq!(
        db.lookup(ip("1.159.255.255"))
            .map(|i| i.asn["number"].clone()),
        Some(json!(64501))
    );
    assert_eq!(db.lookup(ip("2001:db8::1")), None);

    let dir = tempfile::tempdir().expect("tempdir");
    assert!(MaxMind::open_dir(dir.path()).is_err(), "an empty folder");
    std::fs::write(dir.path().join(ASN_FILE), asn_db()).expect("write");
    let asn_only = MaxMind::open_dir(dir.path()).expect("ASN alone is enough");
    let info = asn_only.lookup(ip("81.2.69.200")).expect("found");
    assert!(info.geo.is_empty());
    assert_eq!(info.asn["number"], 64500);
    std::fs::write(dir.path().join(CITY_FILE), b"not a database").expect("write");
    let err = MaxMind::open_dir(dir.path()).expect_err("corrupt");
    assert!(err.to_string().contains(CITY_FILE), "{err}");
}

/// Runs `loader test` on `text` as `type_name` with the test databases in
/// `GEOIP_DATABASE_DIR` (none with `databases: false`); the documents and the messages.
fn loader_test(type_name: &str, text: &str, key: &str, databases: bool) -> (Vec<Value>, String) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/apache");
    let dir = tempfile::tempdir().expect("tempdir");
    if databases {
        std::fs::write(dir.path().join(CITY_FILE), city_db()).expect("write");
        std::fs::write(dir.path().join(ASN_FILE), asn_db()).expect("write");
    }
    let input = dir.path().join("input.log");
    std::fs::write(&input, text).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["test", "--type", type_name])
        .arg(&input)
        .arg("--config")
        .arg(fixtures.join("user.ini"))
        .args(["--key", key])
        .env("GEOIP_DATABASE_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let docs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    (docs.as_array().expect("array").clone(), stderr)
}

#[test]
fn the_binary_enriches_the_geoip_targets_of_a_user_type_and_public_addresses_only() {
    let (docs, stderr) = loader_test(
        "apache",
        "81.2.69.44 - frank [02/May/2024:08:00:00 -0700] \"GET / HTTP/1.0\" 200 2326\n\
         192.0.2.45 - - [02/May/2024:08:00:01 -0700] \"GET / HTTP/1.0\" 200 10\n\
         10.1.2.3 - - [02/May/2024:08:00:02 -0700] \"GET / HTTP/1.0\" 200 10\n",
        "UserLogs/apache/access.log-20240502",
        true,
    );
    assert_eq!(docs.len(), 3);
    let public = &docs[0]["_source"]["source"];
    assert_eq!(public["geo"]["country_iso_code"], "JP", "{public}");
    assert_eq!(public["geo"]["city_name"], "Tokyo", "{public}");
    assert_eq!(public["as"]["number"], 64500, "{public}");
    assert_eq!(
        public["as"]["organization"]["name"], "Example Net",
        "{public}"
    );
    for d in &docs[1..] {
        let source = &d["_source"]["source"];
        assert!(
            source.get("geo").is_none() && source.get("as").is_none(),
            "{d}"
        );
    }
    assert!(
        !stderr.contains("GEOIP_DATABASE_DIR is not set"),
        "{stderr}"
    );
}

#[test]
fn built_in_types_get_geoip_by_default_and_a_missing_database_is_one_warning() {
    let record = json!({"Records": [{
        "eventVersion": "1.09", "eventTime": "2024-05-01T00:00:00Z",
        "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1", "sourceIPAddress": "1.130.4.5",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "eventID": "3f0c2e7a-0000-4000-8000-000000000001", "eventType": "AwsConsoleSignIn",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111122223333"}
    }]})
    .to_string();
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_x.json.gz";
    let (docs, stderr) = loader_test("cloudtrail", &record, key, true);
    let source = &docs[0]["_source"]["source"];
    assert_eq!(source["geo"]["country_iso_code"], "AU", "{source}");
    assert_eq!(source["geo"]["region_name"], "New South Wales", "{source}");
    assert_eq!(source["as"]["number"], 64501, "{source}");
    assert_eq!(docs[0]["_source"]["user_agent"]["name"], "Firefox");
    assert!(!stderr.contains("WARN"), "{stderr}");

    let (docs, stderr) = loader_test("cloudtrail", &record, key, false);
    assert!(docs[0]["_source"]["source"].get("geo").is_none());
    assert_eq!(docs[0]["_source"]["source"]["ip"], "1.130.4.5");
    assert_eq!(
        stderr.matches("no GeoIP database").count(),
        1,
        "one warning: {stderr}"
    );
}

/// A `.tar.gz` as MaxMind serves an edition: the database in a dated folder.
fn edition_archive(edition: &str, file: &str, database: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, bytes) in [("COPYRIGHT.txt", b"test".as_slice()), (file, database)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{edition}_20261201/{name}"), bytes)
            .expect("entry");
    }
    builder.into_inner().expect("tar").finish().expect("gzip")
}

/// A download server: answers each request from `answer(path and query)` with a status and
/// a body, and keeps every request line with its `Authorization` header.
pub struct Downloads {
    pub url: String,
    pub requests: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Downloads {
    pub fn start(answer: impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request_line = String::new();
                reader.read_line(&mut request_line).expect("request");
                let mut authorization = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).expect("header") == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        authorization = value.trim().to_owned();
                    }
                }
                let target = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_owned();
                seen.lock()
                    .expect("lock")
                    .push((target.clone(), authorization));
                let (status, body) = answer(&target);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Self { url, requests }
    }
}

/// MaxMind's answers for both editions; `tamper` changes the City archive after its checksum.
fn maxmind_answers(tamper: bool) -> impl Fn(&str) -> (u16, Vec<u8>) + Send + 'static {
    use sha2::Digest;
    let city = edition_archive("GeoLite2-City", CITY_FILE, &city_db());
    let asn = edition_archive("GeoLite2-ASN", ASN_FILE, &asn_db());
    move |target: &str| {
        let archive = if target.contains("GeoLite2-City") {
            &city
        } else if target.contains("GeoLite2-ASN") {
            &asn
        } else {
            return (404, b"no such edition".to_vec());
        };
        if target.contains("suffix=tar.gz.sha256") {
            let sum = hex::encode(sha2::Sha256::digest(archive));
            (200, format!("{sum}  edition.tar.gz\n").into_bytes())
        } else if tamper && target.contains("GeoLite2-City") {
            let mut changed = archive.clone();
            changed.push(0);
            (200, changed)
        } else {
            (200, archive.clone())
        }
    }
}

fn geoip_update(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_loader"))
        .args(["geoip", "update"])
        .args(args)
        .env_remove("MAXMIND_LICENSE_KEY")
        .env_remove("MAXMIND_ACCOUNT_ID")
        .envs(envs.iter().copied())
        .output()
        .expect("runs")
}

#[test]
fn geoip_update_downloads_checks_and_installs_both_databases() {
    let server = Downloads::start(maxmind_answers(false));
    let dir = tempfile::tempdir().expect("tempdir");
    let to = dir.path().join("geoip");
    let out = geoip_update(
        &[
            "--account-id",
            "4242",
            "--endpoint",
            &server.url,
            "--to",
            to.to_str().expect("utf-8"),
        ],
        &[("MAXMIND_LICENSE_KEY", "sekret")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(to.join(CITY_FILE)).expect("city"), city_db());
    assert_eq!(std::fs::read(to.join(ASN_FILE)).expect("asn"), asn_db());
    assert!(
        stdout.contains("GeoLite2-City") && stdout.contains("GeoLite2-ASN"),
        "{stdout}"
    );
    let requests = server.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 4, "{requests:?}");
    for (target, authorization) in &requests {
        assert!(target.starts_with("/geoip/databases/GeoLite2-"), "{target}");
        // Basic authentication with the account id and the key: base64("4242:sekret").
        assert_eq!(authorization, "Basic NDI0MjpzZWtyZXQ=", "{target}");
    }
    // The installed files are what the loader reads.
    let db = MaxMind::open_dir(&to).expect("readable");
    assert!(db.lookup(ip("81.2.69.1")).is_some());

    // The key alone: the older address, with the key in the query.
    let legacy = Downloads::start(maxmind_answers(false));
    let out = geoip_update(
        &[
            "--license-key",
            "sekret",
            "--endpoint",
            &legacy.url,
            "--to",
            to.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let requests = legacy.requests.lock().expect("lock").clone();
    assert!(
        requests
            .iter()
            .all(|(t, a)| t.starts_with("/app/geoip_download?")
                && t.contains("license_key=sekret")
                && a.is_empty()),
        "{requests:?}"
    );
}

#[test]
fn geoip_update_refuses_a_tampered_archive_and_a_refused_key_without_showing_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(CITY_FILE), b"the old one").expect("write");
    let tampered = Downloads::start(maxmind_answers(true));
    let out = geoip_update(
        &[
            "--license-key",
            "sekret",
            "--endpoint",
            &tampered.url,
            "--to",
            dir.path().to_str().expect("utf-8"),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("GeoLite2-City") && stderr.contains("SHA-256"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(CITY_FILE)).expect("kept"),
        b"the old one"
    );

    let refused = Downloads::start(|_| (401, b"Invalid license key".to_vec()));
    let out = geoip_update(
        &[
            "--license-key",
            "sekret",
            "--endpoint",
            &refused.url,
            "--to",
            dir.path().to_str().expect("utf-8"),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("401") && stderr.contains("license key"),
        "{stderr}"
    );
    assert!(!stderr.contains("sekret"), "{stderr}");
}

#[tokio::test]
async fn databases_in_s3_are_installed_by_update_read_by_the_loader_and_reloaded_when_replaced() {
    use loader::enrich::files::{Files, Location};
    use loader::enrich::geo::GeoDatabases;
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let bucket = tests::unique_name("geoip").to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let server = Downloads::start(maxmind_answers(false));
    let to = format!("s3://{bucket}/geoip");
    let endpoint = tests::moto_endpoint();
    let url = server.url.clone();
    let target = to.clone();
    let out = tokio::task::spawn_blocking(move || {
        geoip_update(
            &["--license-key", "k", "--endpoint", &url, "--to", &target],
            &[("AWS_ENDPOINT_URL", &endpoint)],
        )
    })
    .await
    .expect("ran");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let databases = GeoDatabases::new(Location::parse(&to));
    let store = Files {
        s3: Some(s3.clone()),
    };
    assert!(databases.refresh(&store).await.expect("read"));
    let info = databases.lookup(ip("81.2.69.1")).expect("found");
    assert_eq!(info.asn["number"], 64500);
    assert!(
        !databases.refresh(&store).await.expect("unchanged"),
        "not read again"
    );

    // A new ASN database replaces the old one at the next look.
    let renumbered = database(
        &[(
            Ipv4Addr::new(81, 2, 69, 0),
            24,
            json!({"autonomous_system_number": 65001, "autonomous_system_organization": "Renumbered"}),
        )],
        "GeoLite2-ASN",
    );
    s3.put_object()
        .bucket(&bucket)
        .key(format!("geoip/{ASN_FILE}"))
        .body(renumbered.into())
        .send()
        .await
        .expect("put");
    assert!(databases.refresh(&store).await.expect("read again"));
    // A new database comes with a new cache: the old answer is not served.
    assert_eq!(
        databases.lookup(ip("81.2.69.1")).expect("found").asn["number"],
        65001
    );
}

#[tokio::test]
async fn the_scheduled_event_installs_the_databases_with_the_secret_s_key_and_reloads_them() {
    use loader::enrich::files::Location;
    use loader::enrich::geo::GeoDatabases;
    use loader::lambda::enrichment::{self as geoip, GeoUpdateSettings, is_geoip_update};
    let config = tests::moto_config("us-east-1").await;
    let s3 = shared::aws::s3_client(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    let bucket = tests::unique_name("geoip-schedule").to_ascii_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let secret = secrets
        .create_secret()
        .name(tests::unique_name("maxmind"))
        .secret_string(r#"{"account_id": "7", "license_key": "from-secret"}"#)
        .send()
        .await
        .expect("secret");
    let server = Downloads::start(maxmind_answers(false));
    let location = Location::parse(&format!("s3://{bucket}/geoip"));
    let settings = GeoUpdateSettings {
        secret_arn: secret.arn().expect("arn").to_owned(),
        location: location.clone(),
        endpoint: server.url.clone(),
    };
    let databases = GeoDatabases::new(location);
    assert!(is_geoip_update(&json!({"task": "geoip-update"})));
    assert!(!is_geoip_update(&json!({"Records": []})));

    let response = geoip::run(Some(&settings), &secrets, &s3, Some(&databases))
        .await
        .expect("updated");
    assert_eq!(
        response["installed"].as_array().map(Vec::len),
        Some(2),
        "{response}"
    );
    assert!(
        databases.is_loaded(),
        "the function's own copy is reloaded at once"
    );
    assert_eq!(
        databases.lookup(ip("1.128.9.9")).expect("found").asn["number"],
        64501
    );
    let requests = server.requests.lock().expect("lock").clone();
    // base64("7:from-secret")
    assert!(
        requests
            .iter()
            .all(|(_, a)| a == "Basic Nzpmcm9tLXNlY3JldA=="),
        "{requests:?}"
    );
    let stored = s3
        .get_object()
        .bucket(&bucket)
        .key(format!("geoip/{CITY_FILE}"))
        .send()
        .await
        .expect("stored");
    assert_eq!(
        stored.body.collect().await.expect("body").to_vec(),
        city_db()
    );

    let err = geoip::run(None, &secrets, &s3, None)
        .await
        .expect_err("no settings");
    assert!(
        err.to_string().contains("GEOIP_LICENSE_SECRET_ARN"),
        "{err}"
    );
}
