//! A recording HTTP endpoint in front of osmem-server, standing in for what it lacks: the ISM
//! plugin's policy API, the Alerting plugin's monitors, the Notifications plugin's channels and
//! OpenSearch Dashboards' saved-objects API, kept in memory the way the real servers answer (they add fields of their own, ISM wants sequence numbers for an update,
//! Dashboards wants `osd-xsrf` on writes). Everything else is forwarded to osmem. Every request
//! is recorded, and chosen requests can be refused as an older cluster would.

use crate::sink::proxy::{Reply, forward_to, reply};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub xsrf: bool,
    /// The `Authorization` header, when there is one.
    pub authorization: Option<String>,
    pub body: Value,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        !(self.method == "GET"
            || self.path == "/api/saved_objects/_bulk_get"
            || self.path.ends_with("/_search"))
    }
}

#[derive(Default)]
struct Store {
    requests: Vec<Recorded>,
    /// ISM policies: id -> (policy as given, seq_no).
    policies: BTreeMap<String, (Value, u64)>,
    /// Indices ISM manages: index -> policy id.
    managed: BTreeMap<String, String>,
    /// Saved objects by `type/id`.
    objects: BTreeMap<String, Value>,
    /// (method, path) answered 400 with `reason`.
    refuse: Vec<(String, String, String)>,
    /// Alerting monitors: id -> (monitor as given, seq_no).
    monitors: BTreeMap<String, (Value, u64)>,
    /// Notifications channels: id -> config.
    channels: BTreeMap<String, Value>,
    /// Security plugin roles and role mappings: "roles/<name>" or "rolesmapping/<name>" -> body.
    security: BTreeMap<String, Value>,
    /// Snapshot repositories: name -> body as given.
    repositories: BTreeMap<String, Value>,
    /// Snapshot management policies: name -> (policy as given, seq_no).
    sm_policies: BTreeMap<String, (Value, u64)>,
}

pub struct Recorder {
    pub url: String,
    store: Arc<Mutex<Store>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    /// Listens on a free loopback port in front of `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let store = Arc::new(Mutex::new(Store::default()));
        let upstream: Arc<str> = upstream.trim_start_matches("http://").into();
        let shared = Arc::clone(&store);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let store = Arc::clone(&shared);
                let upstream = Arc::clone(&upstream);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let store = Arc::clone(&store);
                        let upstream = Arc::clone(&upstream);
                        async move {
                            Ok::<_, std::convert::Infallible>(handle(&store, &upstream, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            url: format!("http://{addr}"),
            store,
            task,
        }
    }

    /// Answers `method path` with a 400 and this reason from now on.
    pub fn refuse(&self, method: &str, path: &str, reason: &str) {
        self.lock()
            .refuse
            .push((method.into(), path.into(), reason.into()));
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    pub fn policy(&self, id: &str) -> Option<Value> {
        self.lock().policies.get(id).map(|(p, _)| p.clone())
    }

    pub fn saved_object_count(&self) -> usize {
        self.lock().objects.len()
    }

    /// The monitors kept, as given.
    pub fn monitors(&self) -> Vec<Value> {
        self.lock()
            .monitors
            .values()
            .map(|(m, _)| m.clone())
            .collect()
    }

    /// A security role (`api` `roles`) or role mapping (`rolesmapping`) as kept.
    pub fn security(&self, api: &str, name: &str) -> Option<Value> {
        self.lock().security.get(&format!("{api}/{name}")).cloned()
    }

    pub fn repository(&self, name: &str) -> Option<Value> {
        self.lock().repositories.get(name).cloned()
    }

    pub fn snapshot_policy(&self, name: &str) -> Option<Value> {
        self.lock().sm_policies.get(name).map(|(p, _)| p.clone())
    }

    pub fn channel(&self, id: &str) -> Option<Value> {
        self.lock().channels.get(id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().expect("recorder state")
    }
}

fn error(status: StatusCode, kind: &str, reason: &str) -> Reply {
    reply(
        status,
        json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
               "status": status.as_u16()})
        .to_string(),
    )
}

async fn handle(store: &Mutex<Store>, upstream: &str, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let method = parts.method.to_string();
    let recorded = Recorded {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        xsrf: parts.headers.contains_key("osd-xsrf"),
        authorization: parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    };
    let refused = {
        let mut s = store.lock().expect("state");
        s.requests.push(recorded.clone());
        s.refuse
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|(_, _, r)| r.clone())
    };
    if let Some(reason) = refused {
        return error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            &reason,
        );
    }
    if path.starts_with("/_plugins/_alerting/monitors") {
        return monitors(store, &parts.method, &path, &query, recorded.body);
    }
    if let Some(key) = path.strip_prefix("/_plugins/_security/api/") {
        return security(store, &parts.method, key, recorded.body);
    }
    if let Some(name) = path.strip_prefix("/_snapshot/") {
        return repositories(store, &parts.method, name, recorded.body);
    }
    if let Some(name) = path.strip_prefix("/_plugins/_sm/policies/") {
        return sm_policies(store, &parts.method, name, &query, recorded.body);
    }
    if path.starts_with("/_plugins/_notifications/configs") {
        return channels(store, &parts.method, &path, recorded.body);
    }
    if let Some(id) = path.strip_prefix("/_plugins/_ism/policies/") {
        return policy(store, &parts.method, id, &query, recorded.body);
    }
    if let Some(pattern) = path.strip_prefix("/_plugins/_ism/add/") {
        let indices = indices(upstream, pattern).await;
        let mut s = store.lock().expect("state");
        let id = recorded.body["policy_id"].as_str().unwrap_or_default();
        if !s.policies.contains_key(id) {
            return error(
                StatusCode::NOT_FOUND,
                "status_exception",
                "policy not found",
            );
        }
        let mut updated = 0;
        for index in indices {
            if let std::collections::btree_map::Entry::Vacant(e) = s.managed.entry(index) {
                e.insert(id.to_owned());
                updated += 1;
            }
        }
        return ism_answer(updated);
    }
    if let Some(pattern) = path.strip_prefix("/_plugins/_ism/change_policy/") {
        let indices = indices(upstream, pattern).await;
        let s = store.lock().expect("state");
        let id = recorded.body["policy_id"].as_str().unwrap_or_default();
        let updated = indices
            .iter()
            .filter(|i| s.managed.get(*i).is_some_and(|p| p == id))
            .count();
        return ism_answer(updated);
    }
    if let Some(call) = path.strip_prefix("/api/saved_objects/") {
        if !recorded.xsrf {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"statusCode": 400, "error": "Bad Request", "message": "Request must contain a osd-xsrf header."})
                    .to_string(),
            );
        }
        return saved_objects(store, call, &query, recorded.body);
    }
    forward_to(upstream, &parts, bytes).await
}

/// The Alerting monitors API: a search by name (404 before the first monitor, as the
/// monitors' index does not exist yet), a create that picks the id, an update that needs the
/// sequence numbers. The server adds fields of its own to what it keeps.
fn monitors(store: &Mutex<Store>, method: &Method, path: &str, query: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    let rest = path.trim_start_matches("/_plugins/_alerting/monitors");
    match (method.as_str(), rest) {
        ("POST" | "GET", "/_search") => {
            if s.monitors.is_empty() {
                return error(
                    StatusCode::NOT_FOUND,
                    "index_not_found_exception",
                    "no such index [.opendistro-alerting-config]",
                );
            }
            let name = body["query"]["term"]["monitor.name.keyword"].clone();
            let hits: Vec<Value> = s
                .monitors
                .iter()
                .filter(|(_, (m, _))| m["name"] == name)
                .map(|(id, (m, seq))| {
                    let mut kept = m.clone();
                    kept["last_update_time"] = json!(1_764_000_000_000u64);
                    kept["schema_version"] = json!(5);
                    if let Some(triggers) = kept["triggers"].as_array_mut() {
                        for t in triggers {
                            t["bucket_level_trigger"]["id"] = json!(format!("{id}-t"));
                        }
                    }
                    json!({"_id": id, "_seq_no": seq, "_primary_term": 1, "_source": kept})
                })
                .collect();
            reply(
                StatusCode::OK,
                json!({"hits": {"total": {"value": hits.len()}, "hits": hits}}).to_string(),
            )
        }
        ("POST", "") => {
            let id = format!("monitor-{}", s.monitors.len() + 1);
            s.monitors.insert(id.clone(), (body.clone(), 0));
            reply(
                StatusCode::CREATED,
                json!({"_id": id, "_version": 1, "_seq_no": 0, "_primary_term": 1, "monitor": body})
                    .to_string(),
            )
        }
        ("PUT", id) => {
            let id = id.trim_start_matches('/');
            let versions = query_pairs(query);
            let Some((_, seq)) = s.monitors.get(id).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "status_exception",
                    "Monitor not found",
                );
            };
            if versions.get("if_seq_no") != Some(&seq.to_string()) {
                return error(
                    StatusCode::CONFLICT,
                    "version_conflict_engine_exception",
                    "[monitor]: version conflict",
                );
            }
            s.monitors.insert(id.to_owned(), (body.clone(), seq + 1));
            reply(
                StatusCode::OK,
                json!({"_id": id, "_seq_no": seq + 1, "_primary_term": 1, "monitor": body})
                    .to_string(),
            )
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "unsupported monitors call",
        ),
    }
}

/// The security plugin's roles and role mappings: kept as given, answered with the fields the
/// plugin adds.
fn security(store: &Mutex<Store>, method: &Method, key: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    let name = key.rsplit('/').next().unwrap_or_default().to_owned();
    match method.as_str() {
        "GET" => match s.security.get(key) {
            None => error(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("{name} not found."),
            ),
            Some(kept) => {
                let mut answered = kept.clone();
                answered["reserved"] = json!(false);
                answered["hidden"] = json!(false);
                answered["static"] = json!(false);
                reply(StatusCode::OK, json!({ name: answered }).to_string())
            }
        },
        "PUT" => {
            let created = !s.security.contains_key(key);
            s.security.insert(key.to_owned(), body);
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let word = if created { "CREATED" } else { "OK" };
            reply(
                status,
                json!({"status": word, "message": format!("'{name}' updated.")}).to_string(),
            )
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "unsupported security call",
        ),
    }
}

/// The snapshot repositories API: settings are kept as strings, as a cluster answers them.
fn repositories(store: &Mutex<Store>, method: &Method, name: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    match method.as_str() {
        "GET" => match s.repositories.get(name) {
            None => error(
                StatusCode::NOT_FOUND,
                "repository_missing_exception",
                &format!("[{name}] missing"),
            ),
            Some(kept) => reply(StatusCode::OK, json!({ name: kept }).to_string()),
        },
        "PUT" => {
            if body["type"] != "s3" || !body["settings"]["bucket"].is_string() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "repository_verification_exception",
                    "an s3 repository needs a bucket",
                );
            }
            let mut kept = body.clone();
            if let Some(settings) = kept["settings"].as_object_mut() {
                for value in settings.values_mut() {
                    if !value.is_string() {
                        *value = Value::String(value.to_string());
                    }
                }
            }
            s.repositories.insert(name.to_owned(), kept);
            reply(StatusCode::OK, json!({"acknowledged": true}).to_string())
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "unsupported snapshot call",
        ),
    }
}

/// The snapshot management API: create with POST, update with PUT and the sequence numbers of
/// the version read; the server adds fields of its own to what it keeps.
fn sm_policies(
    store: &Mutex<Store>,
    method: &Method,
    name: &str,
    query: &str,
    body: Value,
) -> Reply {
    let mut s = store.lock().expect("state");
    let kept_form = |policy: &Value| {
        let mut kept = policy.clone();
        kept["name"] = json!(name);
        kept["schema_version"] = json!(21);
        kept["last_updated_time"] = json!(1_764_000_000_000u64);
        kept
    };
    match method.as_str() {
        "GET" => match s.sm_policies.get(name) {
            None => error(
                StatusCode::NOT_FOUND,
                "status_exception",
                &format!("Snapshot management policy [{name}] not found."),
            ),
            Some((policy, seq)) => reply(
                StatusCode::OK,
                json!({"_id": format!("{name}-sm-policy"), "_version": seq + 1, "_seq_no": seq,
                       "_primary_term": 1, "sm_policy": kept_form(policy)})
                .to_string(),
            ),
        },
        "POST" => {
            if s.sm_policies.contains_key(name) {
                return error(
                    StatusCode::CONFLICT,
                    "version_conflict_engine_exception",
                    "policy exists",
                );
            }
            s.sm_policies.insert(name.to_owned(), (body.clone(), 0));
            reply(
                StatusCode::CREATED,
                json!({"_id": format!("{name}-sm-policy"), "_seq_no": 0, "_primary_term": 1,
                       "sm_policy": kept_form(&body)})
                .to_string(),
            )
        }
        "PUT" => {
            let versions = query_pairs(query);
            let Some((_, seq)) = s.sm_policies.get(name).cloned() else {
                return error(
                    StatusCode::NOT_FOUND,
                    "status_exception",
                    "policy not found",
                );
            };
            if versions.get("if_seq_no") != Some(&seq.to_string())
                || versions.get("if_primary_term").map(String::as_str) != Some("1")
            {
                return error(
                    StatusCode::CONFLICT,
                    "version_conflict_engine_exception",
                    "[sm policy]: version conflict",
                );
            }
            s.sm_policies
                .insert(name.to_owned(), (body.clone(), seq + 1));
            reply(
                StatusCode::OK,
                json!({"_id": format!("{name}-sm-policy"), "_seq_no": seq + 1, "_primary_term": 1,
                       "sm_policy": kept_form(&body)})
                .to_string(),
            )
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "illegal_argument_exception",
            "unsupported snapshot management call",
        ),
    }
}

/// The Notifications channels API.
fn channels(store: &Mutex<Store>, method: &Method, path: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    let id = path
        .trim_start_matches("/_plugins/_notifications/configs")
        .trim_start_matches('/');
    match (method.as_str(), id) {
        ("GET", id) => match s.channels.get(id) {
            None => error(
                StatusCode::NOT_FOUND,
                "status_exception",
                &format!("NotificationConfig {id} not found"),
            ),
            Some(config) => reply(
                StatusCode::OK,
                json!({"config_list": [{"config_id": id, "last_updated_time_ms": 1, "created_time_ms": 1, "config": config}]})
                    .to_string(),
            ),
        },
        ("POST", "") => {
            let id = body["config_id"].as_str().unwrap_or("generated").to_owned();
            s.channels.insert(id.clone(), body["config"].clone());
            reply(StatusCode::OK, json!({"config_id": id}).to_string())
        }
        ("PUT", id) if s.channels.contains_key(id) => {
            s.channels.insert(id.to_owned(), body["config"].clone());
            reply(StatusCode::OK, json!({"config_id": id}).to_string())
        }
        _ => error(StatusCode::NOT_FOUND, "status_exception", "not found"),
    }
}

fn ism_answer(updated: usize) -> Reply {
    reply(
        StatusCode::OK,
        json!({"updated_indices": updated, "failures": false, "failed_indices": []}).to_string(),
    )
}

/// The indices of a pattern, as osmem lists them.
async fn indices(upstream: &str, pattern: &str) -> Vec<String> {
    let request = Request::builder()
        .method(Method::GET)
        .uri(format!("/_cat/indices/{pattern}?format=json"))
        .body(())
        .expect("request");
    let (parts, ()) = request.into_parts();
    let answer = forward_to(upstream, &parts, Vec::new()).await;
    let body = answer
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let list: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["index"].as_str().map(str::to_owned))
        .collect()
}

/// The ISM policy API: GET adds the server's own fields, PUT over an existing policy needs
/// its sequence numbers.
fn policy(store: &Mutex<Store>, method: &Method, id: &str, query: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    match *method {
        Method::GET => match s.policies.get(id) {
            None => error(
                StatusCode::NOT_FOUND,
                "status_exception",
                "Policy not found",
            ),
            Some((given, seq)) => {
                let mut policy = given["policy"].clone();
                policy["policy_id"] = json!(id);
                policy["last_updated_time"] = json!(1_764_000_000_000u64);
                policy["schema_version"] = json!(21);
                if let Some(states) = policy["states"].as_array_mut() {
                    for action in states
                        .iter_mut()
                        .filter_map(|s| s["actions"].as_array_mut())
                        .flatten()
                    {
                        action["retry"] =
                            json!({"count": 3, "backoff": "exponential", "delay": "1m"});
                    }
                }
                if let Some(templates) = policy["ism_template"].as_array_mut() {
                    for t in templates {
                        t["last_updated_time"] = json!(1_764_000_000_000u64);
                    }
                }
                reply(
                    StatusCode::OK,
                    json!({"_id": id, "_version": seq + 1, "_seq_no": seq, "_primary_term": 1, "policy": policy})
                        .to_string(),
                )
            }
        },
        Method::PUT => {
            let versions = query_pairs(query);
            let current = s.policies.get(id).map(|(_, seq)| *seq);
            let conflict = match current {
                None => false,
                Some(seq) => {
                    versions.get("if_seq_no") != Some(&seq.to_string())
                        || versions.get("if_primary_term").map(String::as_str) != Some("1")
                }
            };
            if conflict {
                return error(
                    StatusCode::CONFLICT,
                    "version_conflict_engine_exception",
                    "[policy]: version conflict, document already exists",
                );
            }
            let seq = current.map_or(0, |s| s + 1);
            s.policies.insert(id.to_owned(), (body.clone(), seq));
            let status = if current.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            reply(
                status,
                json!({"_id": id, "_seq_no": seq, "_primary_term": 1, "policy": body}).to_string(),
            )
        }
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "x", "not here"),
    }
}

fn query_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// `_bulk_get` and `_bulk_create` of the saved-objects API.
fn saved_objects(store: &Mutex<Store>, call: &str, query: &str, body: Value) -> Reply {
    let mut s = store.lock().expect("state");
    let items = body.as_array().cloned().unwrap_or_default();
    let key = |o: &Value| {
        format!(
            "{}/{}",
            o["type"].as_str().unwrap_or(""),
            o["id"].as_str().unwrap_or("")
        )
    };
    let answer: Vec<Value> = match call {
        "_bulk_get" => items
            .iter()
            .map(|o| match s.objects.get(&key(o)) {
                Some(found) => {
                    let mut found = found.clone();
                    found["version"] = json!("WzEsMV0=");
                    found["updated_at"] = json!("2026-12-01T00:00:00.000Z");
                    found["migrationVersion"] = json!({"visualization": "7.10.0"});
                    found
                }
                None => json!({"type": o["type"], "id": o["id"], "error": {"statusCode": 404, "error": "Not Found",
                    "message": format!("Saved object [{}] not found", key(o))}}),
            })
            .collect(),
        "_bulk_create" => {
            let overwrite = query_pairs(query).get("overwrite").map(String::as_str) == Some("true");
            items
                .iter()
                .map(|o| {
                    if s.objects.contains_key(&key(o)) && !overwrite {
                        return json!({"type": o["type"], "id": o["id"], "error": {"statusCode": 409, "message": "conflict"}});
                    }
                    s.objects.insert(key(o), o.clone());
                    let mut saved = o.clone();
                    saved["version"] = json!("WzEsMV0=");
                    saved
                })
                .collect()
        }
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({"statusCode": 404, "error": "Not Found", "message": "Not Found"}).to_string(),
            );
        }
    };
    reply(StatusCode::OK, json!({"saved_objects": answer}).to_string())
}
