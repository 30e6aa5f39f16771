//! CloudWatch Logs subscription payloads written by the collector: one document per log event,
//! the message handed to the parser its log group maps to (`loggroup` of a type in the
//! configuration: CloudTrail, VPC Flow Logs in the default format, Linux secure logs, and types
//! defined in a user file, parsed by their `log_pattern` or as JSON), anything else a generic
//! document with the message (and the message parsed as JSON in `json` when it
//! is JSON). CONTROL_MESSAGE payloads yield nothing.

use super::{Context, NormalizeError, Normalized, cloudtrail, configured, linux_secure, vpcflow};
use crate::config::{Config, LazyRegex, LogType, ParserKind};
use crate::ecs::{Doc, get_in, set, set_opt};
use crate::enrich::geo::GeoLookup;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// How the messages of a routed log group are parsed.
#[derive(Debug, Clone)]
enum Target {
    Builtin(ParserKind),
    /// A type of the user file: `log_pattern` (text) or JSON, then its `ecs` lines.
    Configured(Box<LogType>),
}

impl Target {
    fn for_type(t: &LogType) -> Option<Self> {
        match t.parser {
            Some(
                kind @ (ParserKind::CloudTrail | ParserKind::VpcFlow | ParserKind::LinuxSecure),
            ) => Some(Self::Builtin(kind)),
            Some(_) => None,
            None => Some(Self::Configured(Box::new(t.clone()))),
        }
    }
}

/// A CloudWatch Logs subscription payload (as Firehose or the collector writes it).
pub fn is_payload(record: &Value) -> bool {
    record.get("logEvents").is_some_and(Value::is_array)
        && record.get("messageType").is_some_and(Value::is_string)
}

/// Log-group patterns and the type their messages are parsed as, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<Route>,
    /// For the `geoip` key of configured types, as in their own objects.
    geo: Option<Arc<dyn GeoLookup>>,
}

/// The log groups (and, when set, the streams of them) whose messages a type reads.
#[derive(Debug, Clone)]
struct Route {
    group: LazyRegex,
    stream: Option<LazyRegex>,
    target: Target,
    name: String,
}

impl Route {
    /// The groups `group` matches, to `log_type` (the streams its `logstream` matches).
    fn of(log_type: &LogType, group: LazyRegex) -> Option<Self> {
        Some(Self {
            group,
            stream: log_type.logstream.clone(),
            target: Target::for_type(log_type)?,
            name: log_type.name.clone(),
        })
    }
}

impl Routes {
    pub fn from_config(config: &Config) -> Self {
        let routes = config
            .types
            .iter()
            .filter_map(|t| Route::of(t, t.loggroup.clone()?))
            .collect();
        Self { routes, geo: None }
    }

    /// Every log group (its `logstream` streams, if set) to one type: the payloads in objects
    /// of a `via_cwl` type. `None` for a type whose messages no parser reads (WAF, findings:
    /// never sent through log groups).
    pub fn only(log_type: &LogType) -> Option<Self> {
        Some(Self {
            routes: vec![Route::of(log_type, LazyRegex::new("").ok()?)?],
            geo: None,
        })
    }

    /// The same routes with GeoIP for the configured types that ask for it.
    pub fn with_geo(mut self, geo: Option<Arc<dyn GeoLookup>>) -> Self {
        self.geo = geo;
        self
    }

    fn route(&self, log_group: &str, log_stream: &str) -> Option<(&Target, &str)> {
        self.routes
            .iter()
            .find(|r| {
                r.group.is_match(log_group)
                    && r.stream.as_ref().is_none_or(|s| s.is_match(log_stream))
            })
            .map(|r| (&r.target, r.name.as_str()))
    }
}

fn builtin_routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        Config::builtin()
            .map(|c| Routes::from_config(&c))
            .unwrap_or_default()
    })
}

/// Normalizes with the log-group routes of the bundled configuration.
pub fn normalize(
    record: Value,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    normalize_with(record, ctx, builtin_routes(), out)
}

/// Normalizes one DATA_MESSAGE payload with the given routes.
pub fn normalize_with(
    record: Value,
    ctx: &Context<'_>,
    routes: &Routes,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut payload) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let message_type = payload.get("messageType").and_then(Value::as_str);
    if message_type == Some("CONTROL_MESSAGE") {
        return Ok(());
    }
    if let Some(other) = message_type.filter(|t| *t != "DATA_MESSAGE") {
        return Err(NormalizeError::InvalidField {
            field: "messageType",
            reason: format!("`{other}` is neither DATA_MESSAGE nor CONTROL_MESSAGE"),
        });
    }
    let text = |payload: &Map<String, Value>, field: &'static str| {
        payload
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(NormalizeError::MissingField(field))
    };
    let owner = text(&payload, "owner")?;
    let log_group = text(&payload, "logGroup")?;
    let log_stream = text(&payload, "logStream")?;
    let Some(Value::Array(events)) = payload.remove("logEvents") else {
        return Err(NormalizeError::MissingField("logEvents"));
    };
    let route = routes.route(&log_group, &log_stream);
    let owner_differs = ctx.key_account.is_some_and(|a| a != owner);
    for event in events {
        let Value::Object(mut event) = event else {
            return Err(NormalizeError::InvalidField {
                field: "logEvents",
                reason: "an event is not an object".to_owned(),
            });
        };
        let message = match event.remove("message") {
            Some(Value::String(m)) => m,
            _ => return Err(NormalizeError::MissingField("logEvents.message")),
        };
        let event_time = event
            .get("timestamp")
            .and_then(Value::as_i64)
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let event_id = event
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let start = out.len();
        let parse_error = match route {
            Some((Target::Builtin(kind), type_name)) => {
                dispatch(*kind, type_name, &message, event_time, ctx, out)
            }
            Some((Target::Configured(lt), _)) => {
                configured_message(lt, &message, routes.geo.as_deref(), ctx, out)
            }
            None => Err("no parser for this log group".to_owned()),
        };
        if let Err(reason) = parse_error {
            out.truncate(start);
            out.push(generic(
                &message,
                event_time,
                route.is_some().then_some(reason),
            ));
        }
        let several = out.len() - start > 1;
        for (nth, n) in out[start..].iter_mut().enumerate() {
            let doc = &mut n.doc;
            set(doc, "aws.cloudwatch.log_group", log_group.as_str());
            set(doc, "aws.cloudwatch.log_stream", log_stream.as_str());
            set(doc, "aws.cloudwatch.owner", owner.as_str());
            set_opt(doc, "aws.cloudwatch.event_id", event_id.as_deref());
            if get_in(doc, "cloud.account.id").is_none() {
                set(doc, "cloud.account.id", owner.as_str());
            }
            if owner_differs {
                // The collector writes under its own account's prefix: a payload of another
                // owner there deserves a look.
                set(doc, "aws.cloudwatch.owner_differs_from_key", true);
            }
            if n.timestamp.is_none() {
                n.timestamp = event_time;
            }
            if n.id.is_none() {
                // One event holding several records (XML events side by side): one id each.
                n.id = match (&event_id, several) {
                    (Some(id), true) => Some(format!("{id}-{nth}")),
                    (id, _) => id.clone(),
                };
            }
        }
    }
    Ok(())
}

/// A message of a log group routed to a configured type: split as a record of its objects is
/// (`log_pattern` groups, a JSON value, XML elements), then normalized from its
/// configuration.
fn configured_message(
    lt: &LogType,
    message: &str,
    geo: Option<&dyn GeoLookup>,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), String> {
    let records = crate::decode::message_records(lt, message)?;
    if records.is_empty() {
        return Err("the message holds no record".to_owned());
    }
    let start = out.len();
    for record in records {
        configured::normalize(record, lt, geo, ctx, out).map_err(|e| e.to_string())?;
    }
    for n in &mut out[start..] {
        n.doc
            .insert("@log_type".to_owned(), Value::String(lt.name.clone()));
    }
    Ok(())
}

/// Runs the message parser of the routed type; `Err` explains why the message is kept as a
/// generic document instead.
fn dispatch(
    kind: ParserKind,
    type_name: &str,
    message: &str,
    event_time: Option<DateTime<Utc>>,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), String> {
    let start = out.len();
    match kind {
        ParserKind::CloudTrail => {
            let value: Value = serde_json::from_str(message)
                .map_err(|e| format!("the CloudTrail message is not JSON: {e}"))?;
            cloudtrail::normalize(value, ctx, out).map_err(|e| e.to_string())?;
        }
        ParserKind::VpcFlow => {
            if !vpcflow::normalize_default_line(message, out).map_err(|e| e.to_string())? {
                return Err("not a default-format flow log line".to_owned());
            }
        }
        ParserKind::LinuxSecure => {
            let mut doc = Doc::new();
            doc.insert("message".to_owned(), Value::String(message.to_owned()));
            set(&mut doc, "event.module", "system");
            set(&mut doc, "event.dataset", "system.auth");
            set(&mut doc, "event.kind", "event");
            if !linux_secure::enrich(message, &mut doc) {
                set(&mut doc, "event.category", vec!["host"]);
                set(&mut doc, "event.type", vec!["info"]);
            }
            // The log event's time has a year; the syslog prefix does not.
            out.push(Normalized::new(doc, event_time));
        }
        _ => return Err("no message parser for this type".to_owned()),
    }
    for n in &mut out[start..] {
        n.doc
            .insert("@log_type".to_owned(), Value::String(type_name.to_owned()));
    }
    Ok(())
}

/// The message as it is, parsed into `json` when it is a JSON object.
fn generic(message: &str, event_time: Option<DateTime<Utc>>, error: Option<String>) -> Normalized {
    let mut doc = Doc::new();
    let trimmed = message.trim_start();
    if trimmed.starts_with('{')
        && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(message)
    {
        doc.insert("json".to_owned(), value);
    }
    doc.insert("message".to_owned(), Value::String(message.to_owned()));
    set(&mut doc, "event.module", "aws");
    set(&mut doc, "event.dataset", "aws.cloudwatch_logs");
    set(&mut doc, "event.kind", "event");
    set_opt(&mut doc, "error.message", error);
    Normalized::new(doc, event_time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::get;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/CloudWatchLogs/us-east-1/app/2024/05/01/00/s-1.json.gz",
            key_account: Some("111122223333"),
            key_region: Some("us-east-1"),
            ingested: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("time"),
            reference: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .expect("time"),
            key_time: None,
        }
    }

    fn payload(group: &str, owner: &str, messages: &[&str]) -> Value {
        let events: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"id": format!("id{i}"), "timestamp": 1714521600000_i64 + i as i64, "message": m}))
            .collect();
        json!({"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": group, "logStream": "s", "subscriptionFilters": ["f"], "logEvents": events})
    }

    fn run(record: Value) -> Vec<Normalized> {
        let mut out = Vec::new();
        normalize(record, &ctx(), &mut out).expect("normalizes");
        out
    }

    #[test]
    fn generic_events_keep_the_message_and_parse_json() {
        let out = run(payload(
            "/app/api",
            "111122223333",
            &["plain text", "{\"level\":\"warn\",\"n\":1}"],
        ));
        assert_eq!(out.len(), 2);
        let d = Value::Object(out[1].doc.clone());
        assert_eq!(get(&d, "json.level"), Some(&json!("warn")));
        assert_eq!(
            get(&d, "aws.cloudwatch.log_group"),
            Some(&json!("/app/api"))
        );
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("111122223333")));
        assert_eq!(get(&d, "aws.cloudwatch.owner_differs_from_key"), None);
        assert_eq!(out[0].id.as_deref(), Some("id0"));
        assert_eq!(
            out[1].timestamp.map(|t| t.timestamp_millis()),
            Some(1714521600001)
        );
        assert_eq!(get(&Value::Object(out[0].doc.clone()), "json"), None);
    }

    #[test]
    fn owner_mismatch_is_flagged_and_control_messages_skipped() {
        let out = run(payload("/app/api", "444455556666", &["x"]));
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(
            get(&d, "aws.cloudwatch.owner_differs_from_key"),
            Some(&json!(true))
        );
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("444455556666")));
        let mut control = payload(
            "g",
            "CloudwatchLogs",
            &["CWL CONTROL MESSAGE: Checking health"],
        );
        control["messageType"] = json!("CONTROL_MESSAGE");
        assert!(run(control).is_empty());
    }

    #[test]
    fn dispatch_by_log_group() {
        let ct = r#"{"eventID":"ev1","eventTime":"2024-05-01T00:00:00Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","recipientAccountId":"444455556666","sourceIPAddress":"203.0.113.5"}"#;
        let out = run(payload(
            "aws-cloudtrail-logs-org",
            "111122223333",
            &[ct, "{\"truncated\":"],
        ));
        assert_eq!(out.len(), 2);
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(out[0].id.as_deref(), Some("ev1"));
        assert_eq!(get(&d, "@log_type"), Some(&json!("cloudtrail")));
        assert_eq!(get(&d, "cloud.account.id"), Some(&json!("444455556666")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.5")));
        let bad = Value::Object(out[1].doc.clone());
        assert!(
            get(&bad, "error.message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.contains("not JSON"))
        );
        assert_eq!(get(&bad, "@log_type"), None);

        let flow = "2 111122223333 eni-0a1b2c3d 198.51.100.7 192.0.2.10 443 50000 6 10 8400 1714521600 1714521660 ACCEPT OK";
        let out = run(payload("/vpc/flowlogs", "111122223333", &[flow]));
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "@log_type"), Some(&json!("vpcflowlogs")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("198.51.100.7")));

        let ssh = "May  1 00:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 4242 ssh2";
        let out = run(payload("/ec2/var/log/secure", "111122223333", &[ssh]));
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "@log_type"), Some(&json!("linux_secure")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("root")));
        assert_eq!(
            out[0].timestamp.map(|t| t.timestamp_millis()),
            Some(1714521600000)
        );
    }

    #[test]
    fn a_type_may_claim_some_streams_of_a_group() {
        let config = Config::with_user_file(
            "user.ini",
            "[k8s]\ns3_key = k8s/\nindex_name = log-k8s\nloggroup = ^/k8s/prod/control-plane$$\n\
logstream = ^kube-apiserver-audit-\necs = user.name\nuser.name = who\n",
        )
        .expect("config");
        let routes = Routes::from_config(&config);
        let mut kinds = Vec::new();
        for stream in ["kube-apiserver-audit-0a1b", "authenticator-0a1b"] {
            let mut p = payload(
                "/k8s/prod/control-plane",
                "111122223333",
                &[r#"{"who": "alice"}"#],
            );
            p["logStream"] = json!(stream);
            let mut out = Vec::new();
            normalize_with(p, &ctx(), &routes, &mut out).expect("payload");
            let d = Value::Object(out.remove(0).doc);
            kinds.push((get(&d, "@log_type").cloned(), get(&d, "user.name").cloned()));
        }
        assert_eq!(
            kinds,
            [(Some(json!("k8s")), Some(json!("alice"))), (None, None)]
        );
    }

    #[test]
    fn log_groups_of_configured_types() {
        let config = Config::with_user_file(
            "user.ini",
            "[apache]\ns3_key = UserLogs/apache/\nfile_format = text\nindex_name = log-web-apache\n\
loggroup = (?i)/shop/frontend\n\
log_pattern = ^(?P<client>\\S+) \\[(?P<time>[^\\]]+)\\] (?P<status>\\d+)$$\n\
ecs = source.ip http.response.status_code\nsource.ip = client\nhttp.response.status_code = status\n\
[app]\ns3_key = UserLogs/app/\nindex_name = log-app\nloggroup = ^/app/orders$$\n\
timestamp_key = ts\ntimestamp_format = epoch\necs = user.name\nuser.name = who\n",
        )
        .expect("config");
        let routes = Routes::from_config(&config);
        let mut out = Vec::new();
        normalize_with(
            // Not a group the built-in apache-access type claims: built-in types come first.
            payload(
                "/ec2/shop/frontend",
                "111122223333",
                &["192.0.2.1 [01/May/2024:00:00:00 +0000] 404", "garbage"],
            ),
            &ctx(),
            &routes,
            &mut out,
        )
        .expect("payload");
        assert_eq!(out.len(), 2);
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "@log_type"), Some(&json!("apache")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("192.0.2.1")));
        assert_eq!(get(&d, "http.response.status_code"), Some(&json!(404)));
        assert_eq!(get(&d, "event.module"), Some(&json!("apache")));
        // No timestamp_key: the log event's time.
        assert_eq!(
            out[0].timestamp.map(|t| t.timestamp_millis()),
            Some(1714521600000)
        );
        let bad = Value::Object(out[1].doc.clone());
        assert_eq!(get(&bad, "@log_type"), None);
        assert_eq!(
            get(&bad, "error.message"),
            Some(&json!("the message does not match log_pattern"))
        );

        let mut out = Vec::new();
        normalize_with(
            payload(
                "/app/orders",
                "111122223333",
                &[r#"{"ts": 1714557600, "who": "alice"}"#],
            ),
            &ctx(),
            &routes,
            &mut out,
        )
        .expect("payload");
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "@log_type"), Some(&json!("app")));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(out[0].timestamp.map(|t| t.timestamp()), Some(1714557600));
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            normalize(json!("x"), &ctx(), &mut out),
            Err(NormalizeError::NotAnObject)
        );
        assert_eq!(
            normalize(
                json!({"owner": "1", "logGroup": "g", "logStream": "s"}),
                &ctx(),
                &mut out
            ),
            Err(NormalizeError::MissingField("logEvents"))
        );
        assert_eq!(
            normalize(json!({"logGroup": "g"}), &ctx(), &mut out),
            Err(NormalizeError::MissingField("owner"))
        );
    }

    #[derive(Debug)]
    struct OneCountry;
    impl GeoLookup for OneCountry {
        fn lookup(&self, _ip: std::net::IpAddr) -> Option<crate::enrich::geo::GeoInfo> {
            let mut info = crate::enrich::geo::GeoInfo::default();
            info.geo.insert("country_iso_code".into(), json!("JP"));
            Some(info)
        }
    }

    #[test]
    fn routed_configured_types_get_geoip_like_their_objects() {
        let config = Config::with_user_file(
            "user.ini",
            "[web]\ns3_key = UserLogs/web/\nindex_name = log-web\nloggroup = ^/web$$\n\
             file_format = json\necs = source.ip\nsource.ip = client\ngeoip = source\n",
        )
        .expect("config");
        let routes = Routes::from_config(&config).with_geo(Some(Arc::new(OneCountry)));
        let mut out = Vec::new();
        normalize_with(
            payload("/web", "111122223333", &[r#"{"client": "81.2.69.9"}"#]),
            &ctx(),
            &routes,
            &mut out,
        )
        .expect("payload");
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "source.geo.country_iso_code"), Some(&json!("JP")));
    }
}
