//! `loader setup`: the templates against osmem-server (every golden document mapped
//! explicitly and rightly, queries that need the right types), ISM and saved objects against a
//! recording endpoint, idempotency, refusals, dry runs and files.

mod custom_resource;
mod dashboards;
mod mapping;
mod recorder;
mod requests;

use loader::config::Config;
use loader::content::{self, Content, IndexGroup, Options};
use loader::setup::{self, Http, Report, Targets};
use loader::sink::{OpenSearchTransport, SinkConfig};
use opensearch::http::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The configuration the golden fixtures are made with: the bundled one and the user-defined
/// types of every fixture folder with a `user.ini` (Apache, RDS PostgreSQL), whose field
/// tables (`<type>.fields`) sit next to it.
fn fixture_config() -> (Config, Content) {
    let mut ini =
        loader::config::ini::Ini::parse(loader::config::BUILTIN_NAME, loader::config::BUILTIN_INI)
            .expect("bundled ini");
    let mut content = Content::bundled().expect("bundled content");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("user.ini").is_file())
        .collect();
    folders.sort();
    for folder in folders {
        let user = folder.join("user.ini");
        let text = std::fs::read_to_string(&user).expect("user.ini");
        ini.read(&user.display().to_string(), &text)
            .expect("user.ini");
        for entry in std::fs::read_dir(&folder).expect("folder").flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "fields") {
                content
                    .add_type_fields(
                        &path.display().to_string(),
                        &std::fs::read_to_string(&path).expect("fields"),
                    )
                    .expect("type fields");
            }
        }
    }
    (Config::from_ini(&ini).expect("config"), content)
}

fn groups(config: &Config) -> Vec<IndexGroup> {
    content::index_groups(config, &BTreeMap::new()).expect("index groups")
}

/// The group whose rotated indices `index` is one of.
fn group_of<'a>(groups: &'a [IndexGroup], index: &str) -> &'a IndexGroup {
    groups
        .iter()
        .filter(|g| index.starts_with(&format!("{}-", g.alias)))
        .max_by_key(|g| g.alias.len())
        .unwrap_or_else(|| panic!("no index of the configuration matches {index}"))
}

fn transport(url: &str) -> OpenSearchTransport {
    OpenSearchTransport::new(&SinkConfig::new(url), None).expect("client")
}

/// Applies the templates (and whatever else `skip` leaves) of the fixture configuration.
pub(crate) async fn apply(
    cluster: &dyn Http,
    dashboards: Option<&dyn Http>,
    skip_retention: bool,
) -> Report {
    let (config, content) = fixture_config();
    let artifacts: Vec<_> = content::plan(&config, &content, &Options::default())
        .expect("plan")
        .into_iter()
        .filter(|a| !(skip_retention && a.kind == content::ArtifactKind::IsmPolicy))
        .collect();
    setup::apply(
        &artifacts,
        &Targets {
            cluster: Some(cluster),
            dashboards,
            dry_run: false,
        },
    )
    .await
}

/// Applies the templates of `config` (bundled content, no retention: osmem-server has no ISM).
pub(crate) async fn apply_config(cluster: &dyn Http, config: &Config) -> Report {
    let content = Content::bundled().expect("bundled content");
    let artifacts: Vec<_> = content::plan(config, &content, &Options::default())
        .expect("plan")
        .into_iter()
        .filter(|a| a.kind != content::ArtifactKind::IsmPolicy)
        .collect();
    setup::apply(
        &artifacts,
        &Targets {
            cluster: Some(cluster),
            dashboards: None,
            dry_run: false,
        },
    )
    .await
}

/// A JSON request to a cluster, answered 2xx.
async fn call(
    http: &OpenSearchTransport,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let reply = http
        .request(method, path, &[], body.map(|b| b.to_string().into_bytes()))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(
        (200..300).contains(&reply.status),
        "{path}: {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    serde_json::from_slice(&reply.body).expect("JSON answer")
}

/// `type/id` of a saved object (as references name them).
fn object_key(object: &Value) -> String {
    format!(
        "{}/{}",
        object["type"].as_str().unwrap_or(""),
        object["id"].as_str().unwrap_or("")
    )
}

/// Calls `f` with every value of a document below the top and its dotted path; the elements
/// of a list share the list's path.
fn visit<'a>(value: &'a Value, prefix: &str, f: &mut dyn FnMut(&str, &'a Value)) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if !v.is_array() {
                    f(&path, v);
                }
                visit(v, &path, f);
            }
        }
        Value::Array(items) => {
            for v in items {
                if !v.is_array() {
                    f(prefix, v);
                }
                visit(v, prefix, f);
            }
        }
        _ => {}
    }
}

/// The built loader, with no OpenSearch or AWS settings of the environment.
fn loader() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_loader"));
    for name in [
        "OPENSEARCH_ENDPOINT",
        "OPENSEARCH_AUTH",
        "OPENSEARCH_SECRET_ARN",
        "OPENSEARCH_USERNAME",
        "OPENSEARCH_PASSWORD",
        "AWS_LAMBDA_RUNTIME_API",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}
