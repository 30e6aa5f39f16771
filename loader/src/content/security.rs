//! Who may do what on a cluster with fine-grained access control (the security plugin): the
//! loader writes the log and alert indices and nothing else; analysts read them and the
//! dashboards and change nothing. Each is a role of the security plugin and the mapping of
//! backend roles (IAM role ARNs, SAML or Cognito groups) to it. Administrators are the
//! domain's master user and its backend role, set where the domain is made.

use super::{Artifact, ArtifactKind};
use serde_json::json;

/// The loader's role on the cluster.
pub const WRITER_ROLE: &str = "org_security_logs_writer";
/// The read-only analysts' role.
pub const ANALYST_ROLE: &str = "org_security_logs_analyst";

/// Backend roles to map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOptions {
    /// Principals that load (the loader's IAM role ARN).
    pub writers: Vec<String>,
    /// Principals that read (an IAM role ARN of a Cognito group, a SAML group name).
    pub analysts: Vec<String>,
}

impl SecurityOptions {
    pub fn is_empty(&self) -> bool {
        self.writers.is_empty() && self.analysts.is_empty()
    }
}

/// The indices the loader writes and analysts read.
fn data_indices() -> Vec<String> {
    vec![
        "log-*".to_owned(),
        format!("{}-*", crate::rules::alert::ALERT_INDEX),
    ]
}

/// A role and its mapping, for each group that has principals. The roles are written in full,
/// so an edit on the cluster is put back.
pub fn artifacts(options: &SecurityOptions) -> Vec<Artifact> {
    let mut out = Vec::new();
    if !options.writers.is_empty() {
        out.push(Artifact {
            kind: ArtifactKind::SecurityRole,
            name: WRITER_ROLE.to_owned(),
            body: json!({
                "description": "The org-security-logs loader: creates and writes the log and alert indices, reads them for its freshness check; nothing else",
                "cluster_permissions": ["cluster_composite_ops", "indices:data/write/bulk"],
                "index_permissions": [{
                    "index_patterns": data_indices(),
                    "allowed_actions": ["crud", "create_index", "indices:admin/mapping/put"],
                }],
                "tenant_permissions": [],
            }),
            existing: None,
        });
        out.push(mapping(WRITER_ROLE, &options.writers));
    }
    if !options.analysts.is_empty() {
        out.push(Artifact {
            kind: ArtifactKind::SecurityRole,
            name: ANALYST_ROLE.to_owned(),
            body: json!({
                "description": "Security analysts: search the log and alert indices and use the dashboards of the global tenant; change nothing",
                "cluster_permissions": ["cluster_composite_ops_ro"],
                "index_permissions": [
                    {
                        "index_patterns": data_indices(),
                        "allowed_actions": ["read", "indices:admin/mappings/get", "indices:admin/resolve/index"],
                    },
                    {
                        "index_patterns": [".kibana", ".kibana_*", ".opensearch_dashboards", ".opensearch_dashboards_*"],
                        "allowed_actions": ["read"],
                    },
                ],
                "tenant_permissions": [{
                    "tenant_patterns": ["global_tenant"],
                    "allowed_actions": ["kibana_all_read"],
                }],
            }),
            existing: None,
        });
        out.push(mapping(ANALYST_ROLE, &options.analysts));
    }
    out
}

fn mapping(role: &str, backend_roles: &[String]) -> Artifact {
    let mut roles = backend_roles.to_vec();
    roles.sort();
    roles.dedup();
    Artifact {
        kind: ArtifactKind::SecurityRoleMapping,
        name: role.to_owned(),
        body: json!({"backend_roles": roles, "users": [], "hosts": []}),
        existing: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_writes_only_logs_and_alerts_and_analysts_only_read() {
        let a = artifacts(&SecurityOptions {
            writers: vec!["arn:aws:iam::111122223333:role/loader".into()],
            analysts: vec![
                "analysts".into(),
                "arn:aws:iam::111122223333:role/analyst".into(),
            ],
        });
        let kinds: Vec<(ArtifactKind, &str)> =
            a.iter().map(|a| (a.kind, a.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (ArtifactKind::SecurityRole, WRITER_ROLE),
                (ArtifactKind::SecurityRoleMapping, WRITER_ROLE),
                (ArtifactKind::SecurityRole, ANALYST_ROLE),
                (ArtifactKind::SecurityRoleMapping, ANALYST_ROLE),
            ]
        );
        let writer = &a[0].body;
        assert_eq!(
            writer["index_permissions"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(
            writer["index_permissions"][0]["index_patterns"],
            json!(["log-*", "alert-*"])
        );
        let analyst = a[2].body.to_string();
        for write in ["crud", "write", "create_index", "manage", "delete", "all"] {
            assert!(!analyst.contains(&format!("\"{write}\"")), "{analyst}");
        }
        assert_eq!(
            a[3].body["backend_roles"],
            json!(["analysts", "arn:aws:iam::111122223333:role/analyst"])
        );
        assert!(artifacts(&SecurityOptions::default()).is_empty());
    }
}
