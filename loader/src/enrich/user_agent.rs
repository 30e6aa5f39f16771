//! User agents: `user_agent.name`, `version`, `os.name`, `os.version`, `os.full` and
//! `device.name` from `user_agent.original`.
//!
//! Browsers, operating systems and devices come from the community patterns of uap-core
//! (`uap-core/`, refreshed by `scripts/update-user-agent-regexes`) run by the `ua-parser`
//! crate, each pattern compiled when an agent first needs it (`uap`). The agents AWS writes
//! into CloudTrail are recognized first: the CLI and SDKs (`aws-cli/2.15.0 Python/3.11.6
//! Linux/6.1 ...`), tools built on them, the console, and AWS services acting on a caller's
//! behalf (`AWS Internal`, `ec2.amazonaws.com`). Each distinct agent is parsed once per
//! process.

use super::cache::Recent;
use super::uap::{Agents, Devices, LazyList, Systems};
use crate::ecs::Doc;
use regex::Regex;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// uap-core's patterns, as JSON (the YAML of the package, converted).
const PATTERNS: &str = include_str!("uap-core/regexes.json");

/// Distinct agents remembered per process.
const CACHE_ENTRIES: usize = 16_384;

/// Agents longer than this are not parsed (no browser sends one; the patterns' cost grows
/// with the text).
const MAX_AGENT_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
#[error("the user-agent patterns cannot be read: {0}")]
pub struct PatternError(String);

/// What one agent says, as the `user_agent` fields to add.
type Parsed = Option<Map<String, Value>>;

/// uap-core's three lists.
struct Community {
    agents: LazyList<Agents>,
    systems: LazyList<Systems>,
    devices: LazyList<Devices>,
}

pub struct UserAgents {
    /// Read at the first agent: a load of types without agents (flow logs, findings, host
    /// logs) never reads the patterns at all.
    community: OnceLock<Option<Community>>,
    /// Also compiled at the first agent, for the same reason.
    aws: OnceLock<AwsAgents>,
    cache: Recent<String, Parsed>,
}

impl std::fmt::Debug for UserAgents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserAgents")
    }
}

impl Default for UserAgents {
    fn default() -> Self {
        Self::new()
    }
}

impl UserAgents {
    /// The parser; uap-core's patterns are compiled when the first agent comes.
    pub fn new() -> Self {
        Self {
            community: OnceLock::new(),
            aws: OnceLock::new(),
            cache: Recent::new(CACHE_ENTRIES),
        }
    }

    /// uap-core's patterns, read once; `None` (said once) if they cannot be.
    fn community(&self) -> Option<&Community> {
        self.community
            .get_or_init(|| match compile_community() {
                Ok(extractor) => Some(extractor),
                Err(e) => {
                    tracing::warn!("{e}; documents load without browser, system and device names");
                    None
                }
            })
            .as_ref()
    }

    fn aws(&self) -> &AwsAgents {
        self.aws.get_or_init(AwsAgents::new)
    }

    /// The instance the pipelines of a process share, with its cache.
    pub fn shared() -> &'static UserAgents {
        static SHARED: OnceLock<UserAgents> = OnceLock::new();
        SHARED.get_or_init(UserAgents::new)
    }

    /// Adds the parsed fields beside `<object>.original` (`user_agent` is ECS's object),
    /// unless the document has them.
    pub fn enrich(&self, doc: &mut Doc, object: &str) {
        let Some(Value::Object(agent)) = doc.get_mut(object) else {
            return;
        };
        if agent.contains_key("name") {
            return;
        }
        let Some(original) = agent
            .get("original")
            .and_then(Value::as_str)
            .filter(|o| *o != "-")
        else {
            return;
        };
        if let Some(fields) = self.parse_cached(original) {
            agent.extend(fields);
        }
    }

    fn parse_cached(&self, original: &str) -> Parsed {
        if let Some(known) = self.cache.get(original) {
            return known;
        }
        let parsed = self.parse(original);
        self.cache.put(original.to_owned(), parsed.clone());
        parsed
    }

    /// The fields of one agent.
    pub fn parse(&self, original: &str) -> Parsed {
        let original = original.trim();
        if original.is_empty() || original.len() > MAX_AGENT_LEN {
            return None;
        }
        let mut fields = Map::new();
        let put = |fields: &mut Map<String, Value>, key: &str, value: &str| {
            if !value.is_empty() && value != "Other" {
                fields.insert(key.to_owned(), Value::String(value.to_owned()));
            }
        };
        let community = self.community();
        match self.aws().recognize(original) {
            Some(aws) => {
                put(&mut fields, "name", &aws.name);
                if let Some(version) = &aws.version {
                    put(&mut fields, "version", version);
                }
            }
            None => {
                if let Some(agent) = community.and_then(|c| c.agents.extract(original)) {
                    put(&mut fields, "name", &agent.family);
                    let version = join_version(&[
                        agent.major.as_deref(),
                        agent.minor.as_deref(),
                        agent.patch.as_deref(),
                        agent.patch_minor.as_deref(),
                    ]);
                    put(&mut fields, "version", &version);
                }
            }
        }
        let os_fields = community
            .and_then(|c| c.systems.extract(original))
            .map(|os| {
                let version = join_version(&[
                    os.major.as_deref(),
                    os.minor.as_deref(),
                    os.patch.as_deref(),
                    os.patch_minor.as_deref(),
                ]);
                (os.os, version)
            })
            .or_else(|| self.aws().os(original).map(|name| (name, String::new())));
        if let Some((name, version)) = os_fields
            && name != "Other"
        {
            let mut os = Map::new();
            put(&mut os, "name", &name);
            put(&mut os, "version", &version);
            let full = if version.is_empty() {
                name.clone()
            } else {
                format!("{name} {version}")
            };
            put(&mut os, "full", &full);
            fields.insert("os".to_owned(), Value::Object(os));
        }
        if let Some(device) = community.and_then(|c| c.devices.extract(original))
            && device.device != "Other"
        {
            let mut d = Map::new();
            put(&mut d, "name", &device.device);
            fields.insert("device".to_owned(), Value::Object(d));
        }
        (!fields.is_empty()).then_some(fields)
    }
}

fn compile_community() -> Result<Community, PatternError> {
    let mut regexes: ua_parser::Regexes<'static> =
        serde_json::from_str(PATTERNS).map_err(|e| PatternError(e.to_string()))?;
    for regex in regexes
        .user_agent_parsers
        .iter_mut()
        .map(|p| &mut p.regex)
        .chain(regexes.os_parsers.iter_mut().map(|p| &mut p.regex))
        .chain(regexes.device_parsers.iter_mut().map(|p| &mut p.regex))
    {
        if let Some(ascii) = ascii_digits(regex) {
            *regex = ascii.into();
        }
    }
    Ok(Community {
        agents: LazyList::new(regexes.user_agent_parsers),
        systems: LazyList::new(regexes.os_parsers),
        devices: LazyList::new(regexes.device_parsers),
    })
}

/// The pattern with `\d` written `[0-9]`, or `None` when it has none. uap-core's digits are
/// the ASCII digits of version numbers; the regex crate's `\d` is every Unicode digit, which
/// made the patterns' automata, and their compiling, several times larger. Inside a class
/// (`[\d.]`) the nested `[0-9]` is the same union.
fn ascii_digits(regex: &str) -> Option<String> {
    if !regex.contains("\\d") {
        return None;
    }
    let mut out = String::with_capacity(regex.len() + 16);
    let mut chars = regex.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    Some(out)
}

/// `1.2.3` from the parts a pattern found (up to the first missing one).
fn join_version(parts: &[Option<&str>]) -> String {
    parts
        .iter()
        .map_while(|p| p.filter(|p| !p.is_empty()))
        .collect::<Vec<_>>()
        .join(".")
}

/// An AWS agent's product.
struct AwsAgent {
    name: String,
    version: Option<String>,
}

/// The agents of AWS tools and services, which the community patterns do not know.
struct AwsAgents {
    /// The first `product/version` of the CLI, the SDKs and tools built on them (`APN/1.0
    /// HashiCorp/1.0 Terraform/1.6.6 ...` is Terraform; a bracketed list, as the console
    /// writes, counts by its first entry).
    product: Regex,
    /// Operating-system tokens of the SDKs: `Linux/6.1`, `os/linux`, `(go1.20; linux; amd64)`.
    os: Regex,
}

impl AwsAgents {
    fn new() -> Self {
        let compile = |pattern: &str| {
            Regex::new(pattern).unwrap_or_else(|e| unreachable!("a fixed pattern compiles: {e}"))
        };
        Self {
            product: compile(
                r"(?i)(?:^|[\s\[,(])(aws-cli|aws-sdk-[a-z0-9.-]+|boto3|botocore|aws-cdk|aws-chalice|aws-amplify|aws-toolkit-[a-z0-9-]+|awscrt|aws-internal|s3console|terraform-provider-aws|hashicorp terraform|terraform|pulumi|cloudformation|aws-sam-cli|copilot|eksctl|aws-powertools-[a-z0-9-]+)/([0-9][0-9a-z.+_-]*)",
            ),
            os: compile(
                r"(?i)(?:^|[\s(;])(?:os/)?(linux|macos|darwin|windows|windows_nt|windows-nt)(?:[/#]|;|\s|$)",
            ),
        }
    }

    fn recognize(&self, agent: &str) -> Option<AwsAgent> {
        if agent == "AWS Internal" {
            return Some(AwsAgent {
                name: "AWS Internal".to_owned(),
                version: None,
            });
        }
        // A service calling on a caller's behalf writes its own host name; the console too.
        if !agent.contains(' ') && agent.ends_with(".amazonaws.com") {
            let name = match agent {
                "console.amazonaws.com" | "console.aws.amazon.com" => "AWS Management Console",
                service => service,
            };
            return Some(AwsAgent {
                name: name.to_owned(),
                version: None,
            });
        }
        // A browser names itself first, even when a page's SDK adds its own token.
        if agent.starts_with("Mozilla/") {
            return None;
        }
        let captures = self.product.captures(agent)?;
        let product = captures.get(1)?.as_str();
        let name = match product.to_ascii_lowercase().as_str() {
            "boto3" => "Boto3".to_owned(),
            "botocore" => "Botocore".to_owned(),
            "s3console" => "S3 Console".to_owned(),
            "hashicorp terraform" | "terraform" => "Terraform".to_owned(),
            "aws-internal" => "AWS Internal".to_owned(),
            other => other.to_owned(),
        };
        Some(AwsAgent {
            name,
            version: captures.get(2).map(|v| v.as_str().to_owned()),
        })
    }

    fn os(&self, agent: &str) -> Option<String> {
        let found = self
            .os
            .captures(agent)?
            .get(1)?
            .as_str()
            .to_ascii_lowercase();
        Some(
            match found.as_str() {
                "linux" => "Linux",
                "macos" | "darwin" => "Mac OS X",
                _ => "Windows",
            }
            .to_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(agent: &str) -> Value {
        let agents = UserAgents::shared();
        Value::Object(agents.parse(agent).unwrap_or_default())
    }

    #[test]
    fn pattern_digits_become_ascii_digits_and_escaped_backslashes_stay() {
        assert_eq!(
            ascii_digits(r"(\d+)\.(\d+)").as_deref(),
            Some(r"([0-9]+)\.([0-9]+)")
        );
        assert_eq!(ascii_digits(r"v[\d.]+").as_deref(), Some(r"v[[0-9].]+"));
        assert_eq!(ascii_digits(r"a\\d").as_deref(), Some(r"a\\d"));
        assert_eq!(ascii_digits(r"Firefox/(\w+)"), None);
        // Every pattern still parses and compiles, digits rewritten.
        let community = compile_community().expect("patterns");
        community.agents.check().expect("agent patterns");
        community.systems.check().expect("system patterns");
        community.devices.check().expect("device patterns");
    }

    #[test]
    fn browsers_operating_systems_and_devices_come_from_the_community_patterns() {
        let chrome = parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
        );
        assert_eq!(chrome["name"], "Chrome");
        assert_eq!(chrome["version"], "120.0.6099.109");
        assert_eq!(chrome["os"]["name"], "Windows");
        let iphone = parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(iphone["name"], "Mobile Safari");
        assert_eq!(iphone["os"]["name"], "iOS");
        assert_eq!(iphone["os"]["full"], "iOS 17.1");
        assert_eq!(iphone["device"]["name"], "iPhone");
        let curl = parse("curl/8.4.0");
        assert_eq!(curl["name"], "curl");
        assert_eq!(curl["version"], "8.4.0");
    }

    #[test]
    fn aws_tools_and_services_are_named_by_their_product() {
        let cli = parse(
            "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64.amzn.2 prompt/off command/s3.ls",
        );
        assert_eq!(cli["name"], "aws-cli");
        assert_eq!(cli["version"], "2.15.0");
        assert_eq!(cli["os"]["name"], "Linux");
        let boto = parse(
            "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.12.0",
        );
        assert_eq!(boto["name"], "Boto3");
        assert_eq!(boto["version"], "1.34.0");
        assert_eq!(boto["os"]["name"], "Linux");
        let go =
            parse("aws-sdk-go-v2/1.24.0 os/macos lang/go#1.21.5 md/GOOS#darwin md/GOARCH#arm64");
        assert_eq!(go["name"], "aws-sdk-go-v2");
        assert_eq!(go["os"]["name"], "Mac OS X");
        let console = parse("[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488]");
        assert_eq!(console["name"], "S3 Console");
        assert_eq!(parse("AWS Internal")["name"], "AWS Internal");
        assert_eq!(parse("ec2.amazonaws.com")["name"], "ec2.amazonaws.com");
        assert_eq!(
            parse("console.amazonaws.com")["name"],
            "AWS Management Console"
        );
        let terraform = parse(
            "APN/1.0 HashiCorp/1.0 Terraform/1.6.6 (+https://www.terraform.io) terraform-provider-aws/5.31.0",
        );
        assert_eq!(terraform["name"], "Terraform");
        assert_eq!(terraform["version"], "1.6.6");
    }

    #[test]
    fn a_document_gets_the_fields_beside_its_original_once() {
        let agents = UserAgents::shared();
        let mut doc: Doc = serde_json::from_value(json!({
            "user_agent": {"original": "curl/8.4.0"}
        }))
        .expect("doc");
        agents.enrich(&mut doc, "user_agent");
        assert_eq!(doc["user_agent"]["name"], "curl");
        assert_eq!(doc["user_agent"]["original"], "curl/8.4.0");
        let mut own: Doc = serde_json::from_value(json!({
            "user_agent": {"original": "curl/8.4.0", "name": "kept"}
        }))
        .expect("doc");
        agents.enrich(&mut own, "user_agent");
        assert_eq!(own["user_agent"]["name"], "kept");
        for empty in ["", "-"] {
            let mut none: Doc =
                serde_json::from_value(json!({"user_agent": {"original": empty}})).expect("doc");
            agents.enrich(&mut none, "user_agent");
            assert_eq!(none["user_agent"], json!({"original": empty}));
        }
        let mut elsewhere: Doc =
            serde_json::from_value(json!({"client_agent": {"original": "curl/8.4.0"}}))
                .expect("doc");
        agents.enrich(&mut elsewhere, "client_agent");
        assert_eq!(elsewhere["client_agent"]["name"], "curl");
    }
}
