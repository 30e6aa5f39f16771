//! Organization context: for the account of every document (`cloud.account.id`), its name
//! (`cloud.account.name`), its organizational unit (`aws.organization.unit.id` and `.path`,
//! e.g. `Workloads/Prod`) and the account tags a team chose (`aws.account.tags.<key>`).
//!
//! `ORG_CONTEXT` says where the directory comes from: `organizations` (AWS Organizations with
//! the function's own credentials), `organizations:<role ARN>` (through a role assumed in the
//! management or a delegated administrator account), or a mapping file for teams without that
//! access: a CSV path or `s3://bucket/key` with the columns `account_id`, `name`, `ou_path` and
//! one column per tag. `ORG_CONTEXT_TAGS` lists the tag keys to copy (from Organizations; a
//! file's tag columns are all copied), `ORG_CONTEXT_TTL` how long a directory is used before
//! it is read again (seconds, default 3600). An account the directory does not know loads as
//! it is.

use super::additions::{Additions, Shared};
use super::files::{FileSource, Files, Location};
use crate::ecs::{self, Doc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

pub const ENV: &str = "ORG_CONTEXT";
pub const TAGS_ENV: &str = "ORG_CONTEXT_TAGS";
pub const TTL_ENV: &str = "ORG_CONTEXT_TTL";
const DEFAULT_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("AWS Organizations: {0}")]
    Organizations(String),
    #[error("account mapping {file}: {reason}")]
    Mapping { file: String, reason: String },
}

/// What is known of one account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccountInfo {
    pub name: Option<String>,
    pub unit_id: Option<String>,
    /// Unit names from the root down, joined by `/`; empty for an account at the root.
    pub unit_path: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Accounts by id.
#[derive(Debug, Default, PartialEq)]
pub struct Directory {
    accounts: HashMap<String, AccountInfo>,
    /// Each account's `aws` members (unit, tags), made once and shared by its documents
    /// (absent for an account without any).
    aws_members: HashMap<String, AwsMembers>,
}

#[derive(Debug, PartialEq)]
struct AwsMembers {
    /// The whole `aws` object, for a document without one.
    whole: Arc<Shared>,
    /// Its members (`organization`, `account`), for a document with its own `aws`.
    each: Vec<(&'static str, Arc<Shared>)>,
}

impl AwsMembers {
    fn new(members: Map<String, Value>) -> Option<Self> {
        let mut each = Vec::new();
        for (key, value) in &members {
            let key = match key.as_str() {
                "organization" => "organization",
                "account" => "account",
                _ => continue,
            };
            if let Value::Object(fields) = value {
                each.push((key, Shared::new(fields.clone())));
            }
        }
        (!members.is_empty()).then(|| Self {
            whole: Shared::new(members),
            each,
        })
    }
}

impl Directory {
    pub fn new(accounts: HashMap<String, AccountInfo>) -> Self {
        let aws_members = accounts
            .iter()
            .filter_map(|(id, info)| {
                let mut doc = Doc::new();
                set_aws_fields(&mut doc, info);
                let members = match doc.remove("aws") {
                    Some(Value::Object(members)) => AwsMembers::new(members),
                    _ => None,
                };
                Some((id.clone(), members?))
            })
            .collect();
        Self {
            accounts,
            aws_members,
        }
    }

    pub fn get(&self, account: &str) -> Option<&AccountInfo> {
        self.accounts.get(account)
    }

    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// A mapping file: CSV with a header naming `account_id`, `name`, `ou_path` (and
    /// optionally `ou_id`); every other column is a tag.
    pub fn from_csv(file: &str, text: &str) -> Result<Self, OrgError> {
        let bad = |reason: String| OrgError::Mapping {
            file: file.to_owned(),
            reason,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| bad(format!("the header cannot be read: {e}")))?
            .iter()
            .map(str::to_owned)
            .collect();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let id = column("account_id").ok_or_else(|| bad("no `account_id` column".to_owned()))?;
        let (name, path, unit) = (column("name"), column("ou_path"), column("ou_id"));
        let mut accounts = HashMap::new();
        for (row, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(format!("row {}: {e}", row + 2)))?;
            let cell = |i: Option<usize>| {
                i.and_then(|i| record.get(i))
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let Some(account) = cell(Some(id)) else {
                continue;
            };
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!(
                    "row {}: {account:?} is not a 12-digit account id",
                    row + 2
                )));
            }
            let tags = headers
                .iter()
                .enumerate()
                .filter(|(i, _)| ![Some(id), name, path, unit].contains(&Some(*i)))
                .filter_map(|(i, key)| Some((key.clone(), cell(Some(i))?)))
                .collect();
            accounts.insert(
                account,
                AccountInfo {
                    name: cell(name),
                    unit_id: cell(unit),
                    unit_path: cell(path),
                    tags,
                },
            );
        }
        Ok(Self::new(accounts))
    }

    /// An account's context as a flow log writer writes it.
    pub fn flow_fields(&self, account: &str) -> Option<FlowFields> {
        let info = self.accounts.get(account)?;
        let mut members = Vec::new();
        if let Some(aws) = self.aws_members.get(account) {
            let json = &aws.whole.json;
            // The object's members, without its braces.
            members.extend_from_slice(&json[1..json.len() - 1]);
        }
        Some(FlowFields {
            name: info.name.clone(),
            aws_members: members,
        })
    }

    /// Adds the context of the document's account, unless the document has it.
    pub fn enrich(&self, doc: &mut Doc, additions: &mut Additions) {
        let Some((account, info)) = ecs::get_in(doc, "cloud.account.id")
            .and_then(Value::as_str)
            .and_then(|id| self.accounts.get_key_value(id))
        else {
            return;
        };
        if let Some(name) = &info.name
            && ecs::get_in(doc, "cloud.account.name").is_none()
        {
            ecs::set(doc, "cloud.account.name", name.clone());
        }
        let Some(members) = self.aws_members.get(account) else {
            return;
        };
        match doc.get_mut("aws") {
            Some(Value::Object(aws)) => {
                // Beside what the record put under `aws.organization` / `aws.account`.
                for (key, shared) in &members.each {
                    match aws.get_mut(*key) {
                        Some(Value::Object(own)) => {
                            for (k, v) in &shared.fields {
                                own.insert(k.clone(), v.clone());
                            }
                        }
                        other => {
                            if other.is_some() {
                                aws.remove(*key);
                            }
                            additions.add(Some("aws"), key, shared.clone());
                        }
                    }
                }
            }
            other => {
                if other.is_some() {
                    doc.remove("aws");
                }
                additions.add(None, "aws", members.whole.clone());
            }
        }
    }
}

/// An account's context for a writer of JSON text.
#[derive(Debug, Clone)]
pub struct FlowFields {
    /// For `cloud.account.name`.
    pub name: Option<String>,
    /// The members of `aws`: `"organization":{...},"account":{...}` (empty when none).
    pub aws_members: Vec<u8>,
}

/// The account's unit and tags, under `aws`.
fn set_aws_fields(doc: &mut Doc, info: &AccountInfo) {
    if let Some(id) = &info.unit_id {
        ecs::set(doc, "aws.organization.unit.id", id.clone());
    }
    if let Some(path) = &info.unit_path {
        ecs::set(doc, "aws.organization.unit.path", path.clone());
    }
    if !info.tags.is_empty() {
        let tags: Map<String, Value> = info
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        ecs::set(doc, "aws.account.tags", Value::Object(tags));
    }
}

/// Reads the whole organization: each account's name, unit path and chosen tags.
pub async fn fetch(
    client: &aws_sdk_organizations::Client,
    tag_keys: &[String],
) -> Result<Directory, OrgError> {
    let mut accounts = HashMap::new();
    let mut pages = client.list_accounts().into_paginator().send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(organizations_error)?;
        for account in page.accounts() {
            if let Some(id) = account.id() {
                listed.push((id.to_owned(), account.name().map(str::to_owned)));
            }
        }
    }
    let mut units: HashMap<String, Unit> = HashMap::new();
    for (id, name) in listed {
        let (unit_id, unit_path) = unit_of(client, &id, &mut units).await?;
        let mut tags = BTreeMap::new();
        if !tag_keys.is_empty() {
            let mut pages = client
                .list_tags_for_resource()
                .resource_id(&id)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(organizations_error)?;
                for tag in page.tags() {
                    if tag_keys.iter().any(|k| k == tag.key()) {
                        tags.insert(tag.key().to_owned(), tag.value().to_owned());
                    }
                }
            }
        }
        accounts.insert(
            id,
            AccountInfo {
                name,
                unit_id,
                unit_path: Some(unit_path),
                tags,
            },
        );
    }
    Ok(Directory::new(accounts))
}

/// A unit's name and the unit it sits in (`None`: the root).
struct Unit {
    name: String,
    parent: Option<String>,
}

fn organizations_error(e: impl std::error::Error + 'static) -> OrgError {
    OrgError::Organizations(aws_sdk_organizations::error::DisplayErrorContext(e).to_string())
}

/// The unit `child` (an account or a unit) sits in; `None` at the root.
async fn parent_unit(
    client: &aws_sdk_organizations::Client,
    child: &str,
) -> Result<Option<String>, OrgError> {
    let parents = client
        .list_parents()
        .child_id(child)
        .send()
        .await
        .map_err(organizations_error)?;
    Ok(parents
        .parents()
        .first()
        .filter(|p| {
            p.r#type() == Some(&aws_sdk_organizations::types::ParentType::OrganizationalUnit)
        })
        .and_then(|p| p.id())
        .map(str::to_owned))
}

/// The unit an account sits in and the path of unit names from the root down; `units` keeps
/// what was learned, since many accounts share their units.
async fn unit_of(
    client: &aws_sdk_organizations::Client,
    account: &str,
    units: &mut HashMap<String, Unit>,
) -> Result<(Option<String>, String), OrgError> {
    let first = parent_unit(client, account).await?;
    let mut names = Vec::new();
    let mut next = first.clone();
    // Units nest five deep at most; the bound stops a loop on answers that go round.
    for _ in 0..8 {
        let Some(unit) = next else { break };
        if !units.contains_key(&unit) {
            let described = client
                .describe_organizational_unit()
                .organizational_unit_id(&unit)
                .send()
                .await
                .map_err(organizations_error)?;
            let name = described
                .organizational_unit()
                .and_then(|u| u.name())
                .unwrap_or(&unit)
                .to_owned();
            let parent = parent_unit(client, &unit).await?;
            units.insert(unit.clone(), Unit { name, parent });
        }
        let Some(known) = units.get(&unit) else { break };
        names.push(known.name.clone());
        next = known.parent.clone();
    }
    names.reverse();
    Ok((first, names.join("/")))
}

/// Where the directory comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum OrgSource {
    Organizations { role: Option<String> },
    Mapping(String),
}

impl OrgSource {
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        match text.strip_prefix("organizations") {
            Some("") => Self::Organizations { role: None },
            Some(rest) if rest.starts_with(':') => Self::Organizations {
                role: Some(rest[1..].to_owned()),
            },
            _ => Self::Mapping(text.to_owned()),
        }
    }
}

/// The directory in use, read again when its time is up; the one read before stays in use
/// when a read fails.
pub struct OrgContext {
    source: OrgSource,
    tag_keys: Vec<String>,
    ttl: Duration,
    loaded: RwLock<(Option<Instant>, Arc<Directory>)>,
    refreshing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for OrgContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgContext")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl OrgContext {
    pub fn new(source: OrgSource, tag_keys: Vec<String>, ttl: Duration) -> Self {
        Self {
            source,
            tag_keys,
            ttl,
            loaded: RwLock::new((None, Arc::new(Directory::default()))),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn current(&self) -> Arc<Directory> {
        self.loaded.read().map(|l| l.1.clone()).unwrap_or_default()
    }

    /// Reads the directory (Organizations through `aws`, a file through `files`).
    pub async fn refresh(
        &self,
        aws: Option<&aws_config::SdkConfig>,
        files: &dyn FileSource,
    ) -> Result<usize, OrgError> {
        let _one = self.refreshing.lock().await;
        let directory = match &self.source {
            OrgSource::Organizations { role } => {
                let aws = aws.ok_or_else(|| {
                    OrgError::Organizations("no AWS configuration here".to_owned())
                })?;
                let config = match role {
                    Some(role) => {
                        shared::aws::assumed_role_config(
                            aws,
                            role,
                            "org-security-logs-loader",
                            None,
                        )
                        .await
                    }
                    None => aws.clone(),
                };
                fetch(&aws_sdk_organizations::Client::new(&config), &self.tag_keys).await?
            }
            OrgSource::Mapping(place) => {
                let (location, name) = split_file(place);
                let bytes = files
                    .read(&location, &name)
                    .await
                    .map_err(|e| OrgError::Mapping {
                        file: place.clone(),
                        reason: e.to_string(),
                    })?
                    .ok_or_else(|| OrgError::Mapping {
                        file: place.clone(),
                        reason: "no such file".to_owned(),
                    })?;
                let text = String::from_utf8(bytes).map_err(|e| OrgError::Mapping {
                    file: place.clone(),
                    reason: e.to_string(),
                })?;
                Directory::from_csv(place, &text)?
            }
        };
        let accounts = directory.len();
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = (Some(Instant::now()), Arc::new(directory));
        }
        Ok(accounts)
    }

    /// [`OrgContext::refresh`] when the directory is older than its time to live; a failure
    /// is a warning.
    pub async fn refresh_if_due(
        &self,
        aws: Option<&aws_config::SdkConfig>,
        files: &dyn FileSource,
    ) {
        let due = self
            .loaded
            .read()
            .map(|l| l.0.is_none_or(|at| at.elapsed() >= self.ttl))
            .unwrap_or(false);
        if !due {
            return;
        }
        match self.refresh(aws, files).await {
            Ok(accounts) => tracing::info!(accounts, "organization context read"),
            Err(e) => {
                tracing::warn!("{e}; documents load with the organization context read before");
                // Try again after a while, not on every invocation.
                if let Ok(mut loaded) = self.loaded.write() {
                    loaded.0 = Some(Instant::now());
                }
            }
        }
    }
}

/// A file path or `s3://bucket/key` as the location of its folder and its name.
fn split_file(place: &str) -> (Location, String) {
    let (dir, name) = place.rsplit_once('/').unwrap_or((".", place));
    let dir = if dir.is_empty() { "/" } else { dir };
    (Location::parse(dir), name.to_owned())
}

/// The context `ORG_CONTEXT` names, read once; `None` when it is not set, or (one warning) when
/// the first read fails.
pub async fn from_env(
    aws: Option<&aws_config::SdkConfig>,
    s3: Option<aws_sdk_s3::Client>,
) -> Option<Arc<OrgContext>> {
    let text = std::env::var(ENV).ok().filter(|t| !t.trim().is_empty())?;
    let tag_keys = std::env::var(TAGS_ENV)
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let ttl = std::env::var(TTL_ENV)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL);
    let context = OrgContext::new(OrgSource::parse(&text), tag_keys, ttl);
    match context.refresh(aws, &Files { s3 }).await {
        Ok(accounts) => {
            tracing::info!(accounts, "organization context read");
            Some(Arc::new(context))
        }
        Err(e) => {
            tracing::warn!("{e}; documents load without organization context");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The context as the document's fields.
    fn enrich(directory: &Directory, doc: &mut Doc) {
        let mut additions = Additions::default();
        directory.enrich(doc, &mut additions);
        additions.copy_into(doc);
    }

    #[test]
    fn a_mapping_file_names_accounts_units_and_tags() {
        let directory = Directory::from_csv(
            "accounts.csv",
            "# the organization\naccount_id,name,ou_path,env,owner\n111122223333,prod-payments,Workloads/Prod,prod,payments-team\n444455556666,sandbox,,dev,\n",
        )
        .expect("csv");
        assert_eq!(directory.len(), 2);
        let mut doc: Doc =
            serde_json::from_value(json!({"cloud": {"account": {"id": "111122223333"}}}))
                .expect("doc");
        enrich(&directory, &mut doc);
        assert_eq!(doc["cloud"]["account"]["name"], "prod-payments");
        assert_eq!(doc["aws"]["organization"]["unit"]["path"], "Workloads/Prod");
        assert_eq!(
            doc["aws"]["account"]["tags"],
            json!({"env": "prod", "owner": "payments-team"})
        );
        let mut sandbox: Doc =
            serde_json::from_value(json!({"cloud": {"account": {"id": "444455556666"}}}))
                .expect("doc");
        enrich(&directory, &mut sandbox);
        assert_eq!(sandbox["aws"]["account"]["tags"], json!({"env": "dev"}));
        assert!(sandbox["aws"].get("organization").is_none());
        // Beside a record's own `aws`: its objects are completed, other values replaced.
        let mut own: Doc = serde_json::from_value(json!({
            "cloud": {"account": {"id": "111122223333"}},
            "aws": {"cloudtrail": {"x": 1}, "organization": {"id": "o-1"}, "account": "text"}
        }))
        .expect("doc");
        enrich(&directory, &mut own);
        assert_eq!(
            own["aws"],
            json!({
                "cloudtrail": {"x": 1},
                "organization": {"id": "o-1", "unit": {"path": "Workloads/Prod"}},
                "account": {"tags": {"env": "prod", "owner": "payments-team"}}
            })
        );
        let mut unknown: Doc =
            serde_json::from_value(json!({"cloud": {"account": {"id": "999999999999"}}}))
                .expect("doc");
        enrich(&directory, &mut unknown);
        assert_eq!(
            unknown,
            serde_json::from_value::<Doc>(json!({"cloud": {"account": {"id": "999999999999"}}}))
                .expect("doc")
        );
        for (text, why) in [
            ("name\nx\n", "account_id"),
            ("account_id,name\n12345,x\n", "12-digit"),
        ] {
            let err = Directory::from_csv("accounts.csv", text)
                .expect_err(why)
                .to_string();
            assert!(err.contains("accounts.csv") && err.contains(why), "{err}");
        }
    }

    #[test]
    fn sources_are_organizations_with_or_without_a_role_or_a_file() {
        assert_eq!(
            OrgSource::parse("organizations"),
            OrgSource::Organizations { role: None }
        );
        assert_eq!(
            OrgSource::parse("organizations:arn:aws:iam::111122223333:role/OrgRead"),
            OrgSource::Organizations {
                role: Some("arn:aws:iam::111122223333:role/OrgRead".to_owned())
            }
        );
        assert_eq!(
            OrgSource::parse("s3://b/org/accounts.csv"),
            OrgSource::Mapping("s3://b/org/accounts.csv".to_owned())
        );
        let (location, name) = split_file("s3://b/org/accounts.csv");
        assert_eq!(
            (location.to_string(), name.as_str()),
            ("s3://b/org".to_owned(), "accounts.csv")
        );
    }
}
