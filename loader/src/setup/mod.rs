//! `loader setup`: the artifacts of [`crate::content`] applied to a cluster and to OpenSearch
//! Dashboards, idempotently.
//!
//! Every artifact is read first and written only when it is missing or differs: templates by
//! the hash in their `_meta`, ISM policies and saved objects by comparing what was given with
//! what the server keeps (it adds fields of its own). So a second run changes nothing and says
//! so, and a run after an upgrade changes exactly what the upgrade changed. One artifact that
//! fails (an older cluster without `flat_object`, a missing plugin, a refused request) is
//! reported with the server's answer and the rest goes on.
//!
//! The HTTP edge is the small [`Http`] trait: the sink's client in production
//! ([`OpenSearchTransport`]), a recording fake in tests.

pub mod answers;
pub mod options;

use crate::content::{Artifact, ArtifactKind};
use crate::sink::{HttpReply, OpenSearchTransport, SendError};
use futures::future::BoxFuture;
use opensearch::http::Method;
use serde_json::{Value, json};
use std::fmt;

/// One HTTP request with a JSON body; implementations never retry.
pub trait Http: Send + Sync {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        query: &'a [(&'a str, &'a str)],
        body: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Result<HttpReply, SendError>>;
}

impl Http for OpenSearchTransport {
    fn request<'a>(
        &'a self,
        method: Method,
        path: &'a str,
        query: &'a [(&'a str, &'a str)],
        body: Option<Vec<u8>>,
    ) -> BoxFuture<'a, Result<HttpReply, SendError>> {
        Box::pin(OpenSearchTransport::request(
            self, method, path, query, body,
        ))
    }
}

/// The client of OpenSearch Dashboards at `url`: the cluster's settings and authentication,
/// and the `osd-xsrf` header Dashboards wants on every write.
pub async fn dashboards_client(
    cluster: &crate::sink::SinkConfig,
    url: &str,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<OpenSearchTransport, crate::sink::TransportError> {
    let mut config = cluster.clone();
    config.endpoint = url.trim().to_owned();
    Ok(OpenSearchTransport::connect(&config, aws)
        .await?
        .with_header("osd-xsrf", "true"))
}

/// Whether the cluster is OpenSearch Serverless, which has no ISM: retention is left to the
/// collection's data lifecycle policy.
pub fn is_serverless(cluster: &crate::sink::SinkConfig) -> bool {
    matches!(&cluster.auth, crate::sink::Auth::SigV4 { service, .. } if service == "aoss")
}

/// Where the artifacts go.
pub struct Targets<'a> {
    /// The cluster; `None` only in a dry run without one (every artifact is then new).
    pub cluster: Option<&'a dyn Http>,
    /// OpenSearch Dashboards; `None` skips the saved objects (unless in a dry run).
    pub dashboards: Option<&'a dyn Http>,
    /// Read only: say what would be written, write nothing.
    pub dry_run: bool,
}

/// What happened to one artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Not applied, on purpose (the reason says why).
    Skipped(String),
    Failed(String),
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: ArtifactKind,
    pub name: String,
    pub outcome: Outcome,
    /// More about a success (existing indices the policy was attached to, ...).
    pub note: Option<String>,
}

/// A write that was sent (or, in a dry run, would be).
#[derive(Debug, Clone, PartialEq)]
pub struct WriteRequest {
    pub method: &'static str,
    /// `dashboards` or `opensearch`.
    pub target: &'static str,
    pub path: String,
    pub body: Value,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub dry_run: bool,
    pub entries: Vec<Entry>,
    pub writes: Vec<WriteRequest>,
}

impl Report {
    pub fn count(&self, wanted: fn(&Outcome) -> bool) -> usize {
        self.entries.iter().filter(|e| wanted(&e.outcome)).count()
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed(_)))
    }

    /// The summary line.
    pub fn summary(&self) -> String {
        let created = self.count(|o| *o == Outcome::Created);
        let updated = self.count(|o| *o == Outcome::Updated);
        let unchanged = self.count(|o| *o == Outcome::Unchanged);
        let skipped = self.count(|o| matches!(o, Outcome::Skipped(_)));
        let (create, update) = if self.dry_run {
            ("to create", "to update")
        } else {
            ("created", "updated")
        };
        let mut text = format!(
            "{created} {create}, {updated} {update}, {unchanged} unchanged, {skipped} skipped, {} failed",
            self.failed()
        );
        if self.dry_run {
            text.push_str(" (dry run: nothing was written)");
        } else if created + updated == 0 && self.failed() == 0 {
            text.push_str(": nothing to change");
        }
        text
    }
}

impl fmt::Display for Report {
    /// One line per artifact (artifacts of one kind skipped for one reason share a line),
    /// then the summary.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        while i < self.entries.len() {
            let e = &self.entries[i];
            if let Outcome::Skipped(why) = &e.outcome {
                let same = self.entries[i..]
                    .iter()
                    .take_while(|o| o.kind == e.kind && o.outcome == e.outcome)
                    .count();
                if same > 1 {
                    writeln!(f, "{:<13} {same} {}s: {why}", "skipped", e.kind.label())?;
                    i += same;
                    continue;
                }
            }
            let word = match (&e.outcome, self.dry_run) {
                (Outcome::Created, false) => "created",
                (Outcome::Created, true) => "would create",
                (Outcome::Updated, false) => "updated",
                (Outcome::Updated, true) => "would update",
                (Outcome::Unchanged, _) => "unchanged",
                (Outcome::Skipped(_), _) => "skipped",
                (Outcome::Failed(_), _) => "FAILED",
            };
            write!(f, "{word:<13} {:<19} {}", e.kind.label(), e.name)?;
            match (&e.outcome, &e.note) {
                (Outcome::Failed(why) | Outcome::Skipped(why), _) => write!(f, ": {why}")?,
                (_, Some(note)) => write!(f, " ({note})")?,
                _ => {}
            }
            writeln!(f)?;
            i += 1;
        }
        writeln!(f, "setup: {}", self.summary())
    }
}

/// Applies `artifacts` in order and reports each one.
pub async fn apply(artifacts: &[Artifact], targets: &Targets<'_>) -> Report {
    let mut run = Run {
        targets,
        report: Report {
            dry_run: targets.dry_run,
            ..Report::default()
        },
    };
    let mut saved_objects = Vec::new();
    for artifact in artifacts {
        match artifact.kind {
            ArtifactKind::ComponentTemplate => {
                run.template(artifact, "_component_template").await;
            }
            ArtifactKind::IndexTemplate => run.template(artifact, "_index_template").await,
            ArtifactKind::IsmPolicy => run.policy(artifact).await,
            ArtifactKind::SavedObject => saved_objects.push(artifact),
            ArtifactKind::NotificationChannel => run.channel(artifact).await,
            ArtifactKind::Monitor => run.monitor(artifact).await,
            ArtifactKind::SnapshotRepository => run.repository(artifact).await,
            ArtifactKind::SnapshotPolicy => run.snapshot_policy(artifact).await,
            ArtifactKind::SecurityRole => run.security(artifact, "roles").await,
            ArtifactKind::SecurityRoleMapping => run.security(artifact, "rolesmapping").await,
        }
    }
    if !saved_objects.is_empty() {
        run.saved_objects(&saved_objects).await;
    }
    run.report
}

struct Run<'a> {
    targets: &'a Targets<'a>,
    report: Report,
}

/// What a read found.
enum Current {
    Missing,
    Same,
    Different,
}

impl Run<'_> {
    fn entry(&mut self, artifact: &Artifact, outcome: Outcome, note: Option<String>) {
        self.report.entries.push(Entry {
            kind: artifact.kind,
            name: artifact.name.clone(),
            outcome,
            note,
        });
    }

    /// Sends a write (or records it, in a dry run); the answer is `None` in a dry run.
    async fn write(
        &mut self,
        target: &'static str,
        http: Option<&dyn Http>,
        method: Method,
        path: String,
        query: &[(&str, &str)],
        body: Value,
    ) -> Result<Option<HttpReply>, String> {
        let shown = if query.is_empty() {
            path.clone()
        } else {
            let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{path}?{}", q.join("&"))
        };
        self.report.writes.push(WriteRequest {
            method: method_name(method),
            target,
            path: shown,
            body: body.clone(),
        });
        if self.targets.dry_run {
            return Ok(None);
        }
        let Some(http) = http else {
            return Err(format!("no {target} endpoint to send to"));
        };
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        http.request(method, &path, query, Some(bytes))
            .await
            .map(Some)
            .map_err(|e| format!("no answer from {target}: {e}"))
    }

    async fn read(
        &self,
        http: Option<&dyn Http>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Option<HttpReply>, String> {
        let Some(http) = http else {
            return Ok(None);
        };
        let body = body.map(|b| b.to_string().into_bytes());
        http.request(method, path, &[], body)
            .await
            .map(Some)
            .map_err(|e| format!("cannot read it: {e}"))
    }

    /// A component or index template, compared by its content hash.
    async fn template(&mut self, artifact: &Artifact, api: &str) {
        let path = format!("/{api}/{}", artifact.name);
        let cluster = self.targets.cluster;
        let current = match self.read(cluster, Method::Get, &path, None).await {
            Ok(None) => Ok(Current::Missing),
            Ok(Some(reply)) if reply.status == 404 => Ok(Current::Missing),
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let wanted = crate::content::templates::hash_of(&artifact.body);
                if answers::template_hash(&answer, &artifact.name) == wanted {
                    Ok(Current::Same)
                } else {
                    Ok(Current::Different)
                }
            }
            Ok(Some(reply)) => Err(format!(
                "cannot read it: {}",
                answers::reason(reply.status, &reply.body)
            )),
            Err(e) => Err(e),
        };
        let outcome = match current {
            Err(why) => Outcome::Failed(why),
            Ok(Current::Same) => Outcome::Unchanged,
            Ok(state) => {
                let done = match state {
                    Current::Missing => Outcome::Created,
                    _ => Outcome::Updated,
                };
                let body = artifact.body.clone();
                match self
                    .write("opensearch", cluster, Method::Put, path, &[], body)
                    .await
                {
                    Ok(None) => done,
                    Ok(Some(reply)) if (200..300).contains(&reply.status) => done,
                    Ok(Some(reply)) => Outcome::Failed(answers::reason(reply.status, &reply.body)),
                    Err(why) => Outcome::Failed(why),
                }
            }
        };
        if matches!(outcome, Outcome::Failed(_)) || artifact.existing.is_none() {
            self.entry(artifact, outcome, None);
            return;
        }
        match self.attach_alias(artifact).await {
            Ok(None) => self.entry(artifact, outcome, None),
            // The template was as wanted, but its indices were not: that is a change.
            Ok(Some(note)) if outcome == Outcome::Unchanged => {
                self.entry(artifact, Outcome::Updated, Some(note))
            }
            Ok(note) => self.entry(artifact, outcome, note),
            Err(why) => self.entry(artifact, Outcome::Failed(why), None),
        }
    }

    /// An ISM policy: created, or updated with the sequence numbers of the version read (ISM
    /// refuses an update without them); then attached to the indices that already exist.
    async fn policy(&mut self, artifact: &Artifact) {
        let path = format!("/_plugins/_ism/policies/{}", artifact.name);
        let cluster = self.targets.cluster;
        let read = self.read(cluster, Method::Get, &path, None).await;
        let (current, versions) = match read {
            Ok(None) => (Current::Missing, None),
            Ok(Some(reply)) if reply.status == 404 => (Current::Missing, None),
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let versions = (
                    answer["_seq_no"].as_u64().unwrap_or_default().to_string(),
                    answer["_primary_term"]
                        .as_u64()
                        .unwrap_or_default()
                        .to_string(),
                );
                if answers::contains(&answer, &artifact.body) {
                    (Current::Same, None)
                } else {
                    (Current::Different, Some(versions))
                }
            }
            Ok(Some(reply)) => {
                let why = ism_reason(reply.status, &reply.body);
                self.entry(
                    artifact,
                    Outcome::Failed(format!("cannot read it: {why}")),
                    None,
                );
                return;
            }
            Err(why) => {
                self.entry(artifact, Outcome::Failed(why), None);
                return;
            }
        };
        if matches!(current, Current::Same) {
            self.entry(artifact, Outcome::Unchanged, None);
            return;
        }
        let query: Vec<(&str, &str)> = match &versions {
            Some((seq, term)) => vec![("if_seq_no", seq), ("if_primary_term", term)],
            None => Vec::new(),
        };
        let done = if versions.is_some() {
            Outcome::Updated
        } else {
            Outcome::Created
        };
        let body = artifact.body.clone();
        match self
            .write("opensearch", cluster, Method::Put, path, &query, body)
            .await
        {
            Ok(None) => self.entry(artifact, done, None),
            Ok(Some(reply)) if (200..300).contains(&reply.status) => {
                let attach = self.attach_policy(artifact, versions.is_some()).await;
                match attach {
                    Ok(note) => self.entry(artifact, done, note),
                    Err(why) => self.entry(
                        artifact,
                        Outcome::Failed(format!(
                            "the policy is saved, but not attached to the existing indices: {why}"
                        )),
                        None,
                    ),
                }
            }
            Ok(Some(reply)) => self.entry(
                artifact,
                Outcome::Failed(ism_reason(reply.status, &reply.body)),
                None,
            ),
            Err(why) => self.entry(artifact, Outcome::Failed(why), None),
        }
    }

    /// The policy's `ism_template` only reaches indices created after it: indices that
    /// already exist get it here, and those managed by an older version move to the new one.
    /// They are named one by one: a pattern would also reach the indices of a longer index name.
    async fn attach_policy(
        &mut self,
        artifact: &Artifact,
        updated: bool,
    ) -> Result<Option<String>, String> {
        let indices = self.existing_indices(artifact).await?;
        if indices.is_empty() {
            return Ok(None);
        }
        let mut calls = vec![("add", "attached to")];
        if updated {
            calls.push(("change_policy", "moved to this version"));
        }
        let mut notes = Vec::new();
        for (call, what) in calls {
            let path = format!("/_plugins/_ism/{call}/{}", indices.join(","));
            let body = json!({"policy_id": artifact.name});
            let cluster = self.targets.cluster;
            let reply = self
                .write("opensearch", cluster, Method::Post, path, &[], body)
                .await?;
            let Some(reply) = reply else { continue };
            if !(200..300).contains(&reply.status) {
                return Err(answers::reason(reply.status, &reply.body));
            }
            let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            let n = answer["updated_indices"].as_u64().unwrap_or(0);
            if n > 0 {
                notes.push(format!("{what} {n} existing index(es)"));
            }
        }
        Ok((!notes.is_empty()).then(|| notes.join("; ")))
    }

    /// The rotated indices of an artifact's index that exist on the cluster, by name.
    async fn existing_indices(&self, artifact: &Artifact) -> Result<Vec<String>, String> {
        let Some(existing) = &artifact.existing else {
            return Ok(Vec::new());
        };
        let Some(http) = self.targets.cluster else {
            return Ok(Vec::new());
        };
        let path = format!("/_cat/indices/{}", existing.pattern());
        let reply = http
            .request(
                Method::Get,
                &path,
                &[("format", "json"), ("h", "index")],
                None,
            )
            .await
            .map_err(|e| format!("cannot list the existing indices: {e}"))?;
        match reply.status {
            404 => Ok(Vec::new()),
            200 => {
                let list: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let mut names: Vec<String> = list
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i["index"].as_str())
                    .filter(|name| existing.matches(name))
                    .map(str::to_owned)
                    .collect();
                names.sort();
                Ok(names)
            }
            status => Err(format!(
                "cannot list the existing indices: {}",
                answers::reason(status, &reply.body)
            )),
        }
    }

    /// The index template's alias on the rotated indices created before it.
    async fn attach_alias(&mut self, artifact: &Artifact) -> Result<Option<String>, String> {
        let Some(existing) = &artifact.existing else {
            return Ok(None);
        };
        let indices = self.existing_indices(artifact).await?;
        if indices.is_empty() {
            return Ok(None);
        }
        let alias = existing.alias.clone();
        let cluster = self.targets.cluster;
        let having: Vec<String> = match self
            .read(cluster, Method::Get, &format!("/_alias/{alias}"), None)
            .await?
        {
            Some(reply) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                answer
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            }
            Some(reply) if reply.status != 404 => {
                return Err(format!(
                    "cannot read the alias {alias}: {}",
                    answers::reason(reply.status, &reply.body)
                ));
            }
            _ => Vec::new(),
        };
        let missing: Vec<String> = indices
            .into_iter()
            .filter(|i| !having.contains(i))
            .collect();
        if missing.is_empty() {
            return Ok(None);
        }
        let n = missing.len();
        let body = json!({"actions": [{"add": {"indices": missing, "alias": alias}}]});
        let reply = self
            .write(
                "opensearch",
                cluster,
                Method::Post,
                "/_aliases".to_owned(),
                &[],
                body,
            )
            .await?;
        match reply {
            Some(reply) if !(200..300).contains(&reply.status) => Err(format!(
                "cannot add the alias {alias} to the existing indices: {}",
                answers::reason(reply.status, &reply.body)
            )),
            _ => Ok(Some(format!(
                "alias {alias} added to {n} existing index(es)"
            ))),
        }
    }

    /// A Notifications channel, by its id: created, updated when it differs, else left.
    async fn channel(&mut self, artifact: &Artifact) {
        let path = format!("/_plugins/_notifications/configs/{}", artifact.name);
        let cluster = self.targets.cluster;
        let current = match self.read(cluster, Method::Get, &path, None).await {
            Ok(None) => Current::Missing,
            Ok(Some(reply)) if reply.status == 404 => Current::Missing,
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let kept = &answer["config_list"][0]["config"];
                if answers::contains(kept, &artifact.body["config"]) {
                    Current::Same
                } else {
                    Current::Different
                }
            }
            Ok(Some(reply)) => {
                let why = plugin_reason("Notifications", reply.status, &reply.body);
                return self.entry(
                    artifact,
                    Outcome::Failed(format!("cannot read it: {why}")),
                    None,
                );
            }
            Err(why) => return self.entry(artifact, Outcome::Failed(why), None),
        };
        let (method, path, body, done) = match current {
            Current::Same => {
                self.entry(artifact, Outcome::Unchanged, None);
                return;
            }
            Current::Missing => (
                Method::Post,
                "/_plugins/_notifications/configs".to_owned(),
                artifact.body.clone(),
                Outcome::Created,
            ),
            Current::Different => (
                Method::Put,
                path,
                json!({"config": artifact.body["config"]}),
                Outcome::Updated,
            ),
        };
        let outcome = match self
            .write("opensearch", cluster, method, path, &[], body)
            .await
        {
            Ok(None) => done,
            Ok(Some(reply)) if (200..300).contains(&reply.status) => done,
            Ok(Some(reply)) => {
                Outcome::Failed(plugin_reason("Notifications", reply.status, &reply.body))
            }
            Err(why) => Outcome::Failed(why),
        };
        self.entry(artifact, outcome, None);
    }

    /// A role or role mapping of the security plugin (`api` is `roles` or `rolesmapping`).
    async fn security(&mut self, artifact: &Artifact, api: &str) {
        let path = format!("/_plugins/_security/api/{api}/{}", artifact.name);
        self.put_by_name(artifact, path, security_reason).await;
    }

    /// A snapshot repository: registered when missing or when its settings differ.
    async fn repository(&mut self, artifact: &Artifact) {
        let path = format!("/_snapshot/{}", artifact.name);
        self.put_by_name(artifact, path, repository_reason).await;
    }

    /// An artifact the cluster answers under its own name at `path` (`{"<name>": {...}}`): put
    /// when missing or when what it holds differs from what was given. `reason` explains a
    /// refusal.
    async fn put_by_name(
        &mut self,
        artifact: &Artifact,
        path: String,
        reason: fn(u16, &[u8]) -> String,
    ) {
        let cluster = self.targets.cluster;
        let current = match self.read(cluster, Method::Get, &path, None).await {
            Ok(None) => Current::Missing,
            // A 404 without a handler is a missing API (a plugin that is not there), not a
            // missing artifact.
            Ok(Some(reply))
                if reply.status == 404
                    && !answers::reason(reply.status, &reply.body).contains("no handler found") =>
            {
                Current::Missing
            }
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                if answers::contains(&answer[&artifact.name], &artifact.body) {
                    Current::Same
                } else {
                    Current::Different
                }
            }
            Ok(Some(reply)) => {
                let why = reason(reply.status, &reply.body);
                return self.entry(
                    artifact,
                    Outcome::Failed(format!("cannot read it: {why}")),
                    None,
                );
            }
            Err(why) => return self.entry(artifact, Outcome::Failed(why), None),
        };
        let done = match current {
            Current::Same => return self.entry(artifact, Outcome::Unchanged, None),
            Current::Missing => Outcome::Created,
            Current::Different => Outcome::Updated,
        };
        let outcome = match self
            .write(
                "opensearch",
                cluster,
                Method::Put,
                path,
                &[],
                artifact.body.clone(),
            )
            .await
        {
            Ok(None) => done,
            Ok(Some(reply)) if (200..300).contains(&reply.status) => done,
            Ok(Some(reply)) => Outcome::Failed(reason(reply.status, &reply.body)),
            Err(why) => Outcome::Failed(why),
        };
        self.entry(artifact, outcome, None);
    }

    /// A snapshot management policy: created, updated with the sequence numbers of the version
    /// read, or left unchanged.
    async fn snapshot_policy(&mut self, artifact: &Artifact) {
        let path = format!("/_plugins/_sm/policies/{}", artifact.name);
        let cluster = self.targets.cluster;
        let (current, versions) = match self.read(cluster, Method::Get, &path, None).await {
            Ok(None) => (Current::Missing, None),
            Ok(Some(reply))
                if reply.status == 404
                    && !answers::reason(reply.status, &reply.body).contains("no handler found") =>
            {
                (Current::Missing, None)
            }
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let versions = answer["_seq_no"]
                    .as_u64()
                    .zip(answer["_primary_term"].as_u64());
                if answers::contains(&answer["sm_policy"], &artifact.body) {
                    (Current::Same, versions)
                } else {
                    (Current::Different, versions)
                }
            }
            Ok(Some(reply)) => {
                let why = plugin_reason("snapshot management", reply.status, &reply.body);
                return self.entry(
                    artifact,
                    Outcome::Failed(format!("cannot read it: {why}")),
                    None,
                );
            }
            Err(why) => return self.entry(artifact, Outcome::Failed(why), None),
        };
        let (method, query, done) = match (current, versions) {
            (Current::Same, _) => return self.entry(artifact, Outcome::Unchanged, None),
            (Current::Missing, _) => (Method::Post, Vec::new(), Outcome::Created),
            (Current::Different, Some((seq_no, term))) => (
                Method::Put,
                vec![
                    ("if_seq_no", seq_no.to_string()),
                    ("if_primary_term", term.to_string()),
                ],
                Outcome::Updated,
            ),
            (Current::Different, None) => {
                let why = "the cluster did not say which version of the policy it holds".to_owned();
                return self.entry(artifact, Outcome::Failed(why), None);
            }
        };
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let outcome = match self
            .write(
                "opensearch",
                cluster,
                method,
                path,
                &query,
                artifact.body.clone(),
            )
            .await
        {
            Ok(None) => done,
            Ok(Some(reply)) if (200..300).contains(&reply.status) => done,
            Ok(Some(reply)) => Outcome::Failed(plugin_reason(
                "snapshot management",
                reply.status,
                &reply.body,
            )),
            Err(why) => Outcome::Failed(why),
        };
        self.entry(artifact, outcome, None);
    }

    /// An Alerting monitor, found by its name (monitors get ids of the server's choosing):
    /// created, updated with the sequence numbers of the version read, or left unchanged.
    async fn monitor(&mut self, artifact: &Artifact) {
        let cluster = self.targets.cluster;
        let search = json!({
            "size": 10,
            "query": {"term": {"monitor.name.keyword": artifact.name}}
        });
        let read = self
            .read(
                cluster,
                Method::Post,
                "/_plugins/_alerting/monitors/_search",
                Some(search),
            )
            .await;
        let found = match read {
            Ok(None) => None,
            // The monitors' index does not exist before the first monitor.
            Ok(Some(reply)) if reply.status == 404 && answers::is_missing_index(&reply.body) => {
                None
            }
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                answers::monitor_named(&answer, &artifact.name)
            }
            Ok(Some(reply)) => {
                let why = plugin_reason("Alerting", reply.status, &reply.body);
                return self.entry(
                    artifact,
                    Outcome::Failed(format!("cannot read it: {why}")),
                    None,
                );
            }
            Err(why) => return self.entry(artifact, Outcome::Failed(why), None),
        };
        let (method, path, query, done) = match &found {
            Some(m) if answers::contains(&m.monitor, &artifact.body) => {
                self.entry(artifact, Outcome::Unchanged, None);
                return;
            }
            Some(m) => (
                Method::Put,
                format!("/_plugins/_alerting/monitors/{}", m.id),
                vec![
                    ("if_seq_no", m.seq_no.to_string()),
                    ("if_primary_term", m.primary_term.to_string()),
                ],
                Outcome::Updated,
            ),
            None => (
                Method::Post,
                "/_plugins/_alerting/monitors".to_owned(),
                Vec::new(),
                Outcome::Created,
            ),
        };
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = artifact.body.clone();
        let outcome = match self
            .write("opensearch", cluster, method, path, &query, body)
            .await
        {
            Ok(None) => done,
            Ok(Some(reply)) if (200..300).contains(&reply.status) => done,
            Ok(Some(reply)) => {
                Outcome::Failed(plugin_reason("Alerting", reply.status, &reply.body))
            }
            Err(why) => Outcome::Failed(why),
        };
        self.entry(artifact, outcome, None);
    }

    /// Saved objects: one `_bulk_get` to compare, one `_bulk_create` of those that differ.
    async fn saved_objects(&mut self, objects: &[&Artifact]) {
        let dashboards = self.targets.dashboards;
        if dashboards.is_none() && !self.targets.dry_run {
            for object in objects {
                self.entry(
                    object,
                    Outcome::Skipped(
                        "no --dashboards URL (loader setup --out DIR writes them as NDJSON)".into(),
                    ),
                    None,
                );
            }
            return;
        }
        let wanted: Vec<Value> = objects
            .iter()
            .map(|o| json!({"type": o.body["type"], "id": o.body["id"]}))
            .collect();
        let read = self
            .read(
                dashboards,
                Method::Post,
                "/api/saved_objects/_bulk_get",
                Some(Value::Array(wanted)),
            )
            .await;
        let found: Vec<Value> = match read {
            Ok(None) => Vec::new(),
            Ok(Some(reply)) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                answer["saved_objects"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            }
            Ok(Some(reply)) => {
                let why = format!(
                    "cannot read the saved objects: {}",
                    answers::reason(reply.status, &reply.body)
                );
                for object in objects {
                    self.entry(object, Outcome::Failed(why.clone()), None);
                }
                return;
            }
            Err(why) => {
                for object in objects {
                    self.entry(object, Outcome::Failed(why.clone()), None);
                }
                return;
            }
        };
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(objects.len());
        // Objects to write, with whether they exist already.
        let mut pending: Vec<(usize, bool)> = Vec::new();
        for (i, object) in objects.iter().enumerate() {
            let current = found.iter().find(|f| same_object(f, &object.body));
            let outcome = match current.map(|f| (f, f.get("error"))) {
                Some((_, Some(error))) if error["statusCode"] != json!(404) => {
                    Some(Outcome::Failed(format!(
                        "cannot read it: {}",
                        error["message"].as_str().unwrap_or("error")
                    )))
                }
                Some((f, None))
                    if answers::contains(&f["attributes"], &object.body["attributes"])
                        && same_references(&f["references"], &object.body["references"]) =>
                {
                    Some(Outcome::Unchanged)
                }
                other => {
                    pending.push((i, matches!(other, Some((_, None)))));
                    None
                }
            };
            outcomes.push(outcome);
        }
        if !pending.is_empty() {
            let body = pending
                .iter()
                .map(|(i, _)| objects[*i].body.clone())
                .collect();
            let saved = self.bulk_create(dashboards, body).await;
            for (i, existed) in pending {
                let done = if existed {
                    Outcome::Updated
                } else {
                    Outcome::Created
                };
                outcomes[i] = Some(match &saved {
                    Err(why) => Outcome::Failed(why.clone()),
                    Ok(None) => done,
                    Ok(Some(saved)) => {
                        match saved.iter().find(|s| same_object(s, &objects[i].body)) {
                            Some(s) if s.get("error").is_some() => Outcome::Failed(
                                s["error"]["message"]
                                    .as_str()
                                    .unwrap_or("refused")
                                    .to_owned(),
                            ),
                            Some(_) => done,
                            None => {
                                Outcome::Failed("missing from the answer of _bulk_create".into())
                            }
                        }
                    }
                });
            }
        }
        for (object, outcome) in objects.iter().zip(outcomes) {
            let outcome = outcome.unwrap_or_else(|| Outcome::Failed("no result".into()));
            self.entry(object, outcome, None);
        }
    }

    /// Writes saved objects, replacing those that exist; the per-object answers (`None` in a
    /// dry run).
    async fn bulk_create(
        &mut self,
        dashboards: Option<&dyn Http>,
        objects: Vec<Value>,
    ) -> Result<Option<Vec<Value>>, String> {
        let reply = self
            .write(
                "dashboards",
                dashboards,
                Method::Post,
                "/api/saved_objects/_bulk_create".to_owned(),
                &[("overwrite", "true")],
                Value::Array(objects),
            )
            .await?;
        match reply {
            None => Ok(None),
            Some(reply) if reply.status == 200 => {
                let answer: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                Ok(Some(
                    answer["saved_objects"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                ))
            }
            Some(reply) => Err(answers::reason(reply.status, &reply.body)),
        }
    }
}

fn same_object(a: &Value, b: &Value) -> bool {
    a["type"] == b["type"] && a["id"] == b["id"]
}

/// References compared without their order.
fn same_references(actual: &Value, wanted: &Value) -> bool {
    let key = |v: &Value| {
        let mut refs: Vec<String> = v
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!("{}|{}|{}", r["name"], r["type"], r["id"]))
            .collect();
        refs.sort();
        refs
    };
    key(actual) == key(wanted)
}

/// An ISM error, with a hint when the plugin itself is missing.
/// The reason of a plugin API's refusal; a cluster without the plugin answers that no handler
/// takes the path.
fn plugin_reason(plugin: &str, status: u16, body: &[u8]) -> String {
    let reason = answers::reason(status, body);
    if reason.contains("no handler found") || (status == 404 && !reason.contains("_exception")) {
        format!("the {plugin} plugin is not available on this cluster ({reason})")
    } else {
        reason
    }
}

/// Why the security plugin refused, with what to check.
fn security_reason(status: u16, body: &[u8]) -> String {
    let reason = plugin_reason("security", status, body);
    if status == 403 || status == 401 {
        format!(
            "{reason} (only the domain's master user, or a user mapped to security_manager, may change roles)"
        )
    } else {
        reason
    }
}

/// Why a repository was refused, with what to check on Amazon OpenSearch Service.
fn repository_reason(status: u16, body: &[u8]) -> String {
    let reason = answers::reason(status, body);
    if reason.contains("role_arn")
        || reason.contains("PassRole")
        || reason.contains("not authorized")
    {
        format!(
            "{reason} (the caller needs iam:PassRole on the repository's role, and the role must trust es.amazonaws.com)"
        )
    } else {
        reason
    }
}

fn ism_reason(status: u16, body: &[u8]) -> String {
    let reason = answers::reason(status, body);
    if reason.contains("no handler found") || status == 405 {
        format!(
            "{reason} (the cluster has no Index State Management plugin; OpenSearch Serverless keeps data by the collection's lifecycle policy: run with --skip retention)"
        )
    } else {
        reason
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Put => "PUT",
        Method::Post => "POST",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
    }
}
