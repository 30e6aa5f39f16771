//! CloudTrail events (management, data and Insight events; trail files and CloudTrail delivered
//! through CloudWatch Logs) to ECS. `_id` is `eventID`.

use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, add_related, get_str, set, set_opt};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::net::IpAddr;

pub fn normalize(
    record: Value,
    _ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let timestamp = match doc.get("eventTime") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            Some(parse_time(s).ok_or_else(|| NormalizeError::InvalidField {
                field: "eventTime",
                reason: format!("`{s}` is not an ISO 8601 time"),
            })?)
        }
        Some(_) => {
            return Err(NormalizeError::InvalidField {
                field: "eventTime",
                reason: "not a string".to_owned(),
            });
        }
    };
    let record = Value::Object(std::mem::take(&mut doc));
    let mut ecs = Doc::new();
    fields(&record, &mut ecs);
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    merge(&mut doc, ecs);
    let id = doc
        .get("eventID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let mut n = Normalized::new(doc, timestamp);
    n.id = id;
    out.push(n);
    Ok(())
}

/// Merges the ECS fields into the record, object by object (the record's own `tls` or `event`
/// objects, if any, keep their other keys).
fn merge(doc: &mut Doc, ecs: Doc) {
    for (key, value) in ecs {
        match (doc.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(new)) => merge(existing, new),
            (_, value) => {
                doc.insert(key, value);
            }
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn fields(r: &Value, ecs: &mut Doc) {
    let insight = r.get("eventType").and_then(Value::as_str) == Some("AwsCloudTrailInsight");
    set(ecs, "event.module", "aws");
    set(ecs, "event.dataset", "aws.cloudtrail");
    set_opt(ecs, "event.id", get_str(r, "eventID"));
    set_opt(ecs, "cloud.account.id", get_str(r, "recipientAccountId"));
    set_opt(ecs, "cloud.region", get_str(r, "awsRegion"));

    if insight {
        set(ecs, "event.kind", "alert");
        set(ecs, "event.category", vec!["api"]);
        set(ecs, "event.type", vec!["info"]);
        set_opt(ecs, "event.action", get_str(r, "insightDetails.eventName"));
        set_opt(
            ecs,
            "event.provider",
            get_str(r, "insightDetails.eventSource"),
        );
        set_opt(ecs, "rule.name", get_str(r, "insightDetails.insightType"));
        return;
    }

    let action = get_str(r, "eventName").unwrap_or_default();
    let provider = get_str(r, "eventSource").unwrap_or_default();
    set(ecs, "event.kind", "event");
    set_opt(ecs, "event.action", Some(action));
    set_opt(ecs, "event.provider", Some(provider));
    let (category, kind) = classify(provider, action);
    set(ecs, "event.category", category);
    set(ecs, "event.type", kind);

    let error_code = get_str(r, "errorCode");
    let login_failed = get_str(r, "responseElements.ConsoleLogin") == Some("Failure");
    let outcome = if error_code.is_some() || login_failed {
        "failure"
    } else {
        "success"
    };
    set(ecs, "event.outcome", outcome);
    set_opt(ecs, "error.code", error_code);
    set_opt(ecs, "error.message", get_str(r, "errorMessage"));
    if action == "ConsoleLogin" {
        // `Yes`/`No` inside a free-form object, which cannot be counted by: a boolean that can.
        let mfa = match get_str(r, "additionalEventData.MFAUsed") {
            Some("Yes") => Some(true),
            Some("No") => Some(false),
            _ => None,
        };
        set_opt(ecs, "aws.cloudtrail.console_login.mfa_used", mfa);
    }

    if let Some(address) = get_str(r, "sourceIPAddress") {
        set(ecs, "source.address", address);
        if let Ok(ip) = address.parse::<IpAddr>() {
            set(ecs, "source.ip", ip.to_string());
            add_related(ecs, "ip", &ip.to_string());
        } else if address.contains('.') && !address.contains(' ') {
            // An AWS service (`ec2.amazonaws.com`) or a host name acting for the caller.
            set(ecs, "source.domain", address);
            add_related(ecs, "hosts", address);
        }
    }
    set_opt(ecs, "user_agent.original", get_str(r, "userAgent"));
    identity(r, ecs);

    if let Some(version) = get_str(r, "tlsDetails.tlsVersion") {
        match version.strip_prefix("TLSv") {
            Some(number) => {
                set(ecs, "tls.version", number);
                set(ecs, "tls.version_protocol", "tls");
            }
            None => set(ecs, "tls.version", version),
        }
    }
    set_opt(ecs, "tls.cipher", get_str(r, "tlsDetails.cipherSuite"));
    if let Some(id) = get_str(r, "requestParameters.instanceId") {
        set(ecs, "cloud.instance.id", id);
    }
}

/// ECS category and type from the service and the API verb.
fn classify(provider: &str, action: &str) -> (Vec<&'static str>, Vec<&'static str>) {
    const AUTH: &[&str] = &[
        "ConsoleLogin",
        "CheckMfa",
        "SwitchRole",
        "ExitRole",
        "RenewRole",
        "GetSigninToken",
        "AssumeRole",
        "AssumeRoleWithSAML",
        "AssumeRoleWithWebIdentity",
        "AssumeRoot",
        "GetFederationToken",
        "GetSessionToken",
        "Federate",
        "Authenticate",
        "CredentialVerification",
        "UserAuthentication",
    ];
    if AUTH.contains(&action) {
        let kind = if action == "ExitRole" { "end" } else { "start" };
        return (vec!["authentication"], vec![kind]);
    }
    let verb = verb_type(action);
    let iam = matches!(
        provider,
        "iam.amazonaws.com"
            | "sts.amazonaws.com"
            | "sso.amazonaws.com"
            | "identitystore.amazonaws.com"
            | "sso-directory.amazonaws.com"
    );
    if iam {
        let kind = match verb {
            "access" => "info",
            other => other,
        };
        let mut kinds = vec![kind];
        if action.contains("User") {
            kinds.push("user");
        } else if action.contains("Group") {
            kinds.push("group");
        }
        return (vec!["iam"], kinds);
    }
    if verb == "access" {
        (vec!["api"], vec!["access"])
    } else {
        (vec!["api", "configuration"], vec![verb])
    }
}

fn verb_type(action: &str) -> &'static str {
    const CREATION: &[&str] = &[
        "Create", "Run", "Launch", "Allocate", "Register", "Import", "Copy", "Issue",
    ];
    const DELETION: &[&str] = &[
        "Delete",
        "Remove",
        "Terminate",
        "Deregister",
        "Release",
        "Revoke",
        "Purge",
    ];
    const CHANGE: &[&str] = &[
        "Update",
        "Put",
        "Attach",
        "Detach",
        "Add",
        "Modify",
        "Set",
        "Enable",
        "Disable",
        "Change",
        "Tag",
        "Untag",
        "Start",
        "Stop",
        "Reboot",
        "Associate",
        "Disassociate",
        "Authorize",
        "Reset",
        "Rotate",
        "Restore",
        "Replace",
        "Upload",
        "Publish",
        "Send",
        "Invoke",
        "Cancel",
        "Accept",
        "Reject",
        "Apply",
    ];
    let starts = |list: &[&str]| {
        list.iter().any(|p| {
            action.strip_prefix(p).is_some_and(|rest| {
                rest.is_empty()
                    || rest.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
            })
        })
    };
    if starts(CREATION) {
        "creation"
    } else if starts(DELETION) {
        "deletion"
    } else if starts(CHANGE) {
        "change"
    } else {
        "access"
    }
}

/// `user.*` from `userIdentity`: the most specific name the identity type offers.
fn identity(r: &Value, ecs: &mut Doc) {
    let Some(identity) = r.get("userIdentity").filter(|v| v.is_object()) else {
        return;
    };
    let id_type = get_str(identity, "type");
    set_opt(ecs, "aws.cloudtrail.user_identity.type", id_type);
    let arn = get_str(identity, "arn");
    set_opt(ecs, "aws.cloudtrail.user_identity.arn", arn);
    set_opt(
        ecs,
        "aws.cloudtrail.user_identity.access_key_id",
        get_str(identity, "accessKeyId"),
    );
    set_opt(
        ecs,
        "user.id",
        get_str(identity, "principalId").or(get_str(identity, "userId")),
    );
    set_opt(ecs, "user.domain", get_str(identity, "accountId"));

    let issuer = identity
        .get("sessionContext")
        .and_then(|c| c.get("sessionIssuer"));
    if let Some(issuer) = issuer {
        set_opt(
            ecs,
            "aws.cloudtrail.user_identity.session_issuer.type",
            get_str(issuer, "type"),
        );
        set_opt(
            ecs,
            "aws.cloudtrail.user_identity.session_issuer.arn",
            get_str(issuer, "arn"),
        );
        set_opt(
            ecs,
            "aws.cloudtrail.user_identity.session_issuer.name",
            get_str(issuer, "userName"),
        );
        if let Some(role) = get_str(issuer, "userName") {
            set(ecs, "user.roles", vec![role]);
        }
    }

    // `arn:aws:sts::111122223333:assumed-role/<role>/<session>` -> `<session>`.
    let arn_tail = |marker: &str| -> Option<String> {
        let resource = arn?.splitn(6, ':').nth(5)?;
        let rest = resource.strip_prefix(marker)?;
        rest.rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let name: Option<String> = match id_type {
        Some("Root") => get_str(identity, "userName")
            .map(str::to_owned)
            .or(Some("root".to_owned())),
        Some("AssumedRole") => arn_tail("assumed-role/").or_else(|| {
            get_str(identity, "principalId")
                .and_then(|p| p.split_once(':'))
                .map(|(_, s)| s.to_owned())
        }),
        Some("FederatedUser") => arn_tail("federated-user/").or_else(|| {
            get_str(identity, "principalId")
                .and_then(|p| p.split_once(':'))
                .map(|(_, s)| s.to_owned())
        }),
        Some("AWSService") => get_str(identity, "invokedBy").map(str::to_owned),
        Some("IdentityCenterUser") => get_str(identity, "userName")
            .or(get_str(identity, "onBehalfOf.userId"))
            .or(get_str(identity, "userId"))
            .map(str::to_owned),
        _ => None,
    }
    .or_else(|| get_str(identity, "userName").map(str::to_owned))
    .or_else(|| {
        arn.and_then(|a| a.rsplit('/').next())
            .filter(|s| !s.is_empty() && !s.contains(':'))
            .map(str::to_owned)
    })
    .or_else(|| get_str(identity, "invokedBy").map(str::to_owned))
    .or_else(|| get_str(identity, "principalId").map(str::to_owned));
    if let Some(name) = name {
        add_related(ecs, "user", &name);
        set(ecs, "user.name", name);
    }
    if let Some(target) = get_str(r, "requestParameters.userName")
        && matches!(get_str(r, "eventSource"), Some("iam.amazonaws.com"))
    {
        set(ecs, "user.target.name", target);
        add_related(ecs, "user", target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::get;
    use chrono::TimeZone;
    use serde_json::json;

    fn ctx() -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/x.json.gz",
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

    fn one(record: Value) -> Normalized {
        let mut out = Vec::new();
        normalize(record, &ctx(), &mut out).expect("normalizes");
        assert_eq!(out.len(), 1);
        out.remove(0)
    }

    #[test]
    fn iam_user_api_call() {
        let n = one(json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"},
            "eventTime": "2024-05-01T12:00:00Z", "eventSource": "ec2.amazonaws.com", "eventName": "StartInstances",
            "awsRegion": "us-east-1", "sourceIPAddress": "192.0.2.10", "userAgent": "aws-cli/2",
            "eventID": "e1", "recipientAccountId": "111122223333", "tlsDetails": {"tlsVersion": "TLSv1.3"}
        }));
        let d = Value::Object(n.doc);
        assert_eq!(n.id.as_deref(), Some("e1"));
        assert_eq!(
            n.timestamp.map(|t| t.to_rfc3339()),
            Some("2024-05-01T12:00:00+00:00".to_owned())
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("StartInstances")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("success")));
        assert_eq!(get(&d, "event.type"), Some(&json!(["change"])));
        assert_eq!(get(&d, "source.ip"), Some(&json!("192.0.2.10")));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(get(&d, "tls.version"), Some(&json!("1.3")));
        assert_eq!(
            get(&d, "eventName"),
            Some(&json!("StartInstances")),
            "original fields kept"
        );
        assert_eq!(get(&d, "tlsDetails.tlsVersion"), Some(&json!("TLSv1.3")));
    }

    #[test]
    fn service_source_is_not_an_ip_and_assumed_role_names_the_session() {
        let n = one(json!({
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:i-0abc", "arn": "arn:aws:sts::111122223333:assumed-role/app-role/i-0abc",
                "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/app-role", "userName": "app-role"}}},
            "eventTime": "2024-05-01T12:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
            "sourceIPAddress": "ec2.amazonaws.com", "eventID": "e2"
        }));
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "source.ip"), None);
        assert_eq!(get(&d, "source.domain"), Some(&json!("ec2.amazonaws.com")));
        assert_eq!(get(&d, "user.name"), Some(&json!("i-0abc")));
        assert_eq!(get(&d, "user.roles"), Some(&json!(["app-role"])));
        assert_eq!(
            get(&d, "aws.cloudtrail.user_identity.session_issuer.arn"),
            Some(&json!("arn:aws:iam::111122223333:role/app-role"))
        );
        assert_eq!(get(&d, "event.type"), Some(&json!(["access"])));
    }

    #[test]
    fn failures_from_error_code_and_console_login() {
        let n = one(
            json!({"eventName": "UpdateTrail", "eventSource": "cloudtrail.amazonaws.com", "errorCode": "TrailNotFoundException", "errorMessage": "Unknown trail", "sourceIPAddress": "AWS Internal"}),
        );
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(
            get(&d, "error.code"),
            Some(&json!("TrailNotFoundException"))
        );
        assert_eq!(get(&d, "source.address"), Some(&json!("AWS Internal")));
        assert_eq!(get(&d, "source.domain"), None);
        assert_eq!(n.timestamp, None);
        let n = one(
            json!({"eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com", "responseElements": {"ConsoleLogin": "Failure"},
            "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"}}),
        );
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["authentication"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("root")));
        assert_eq!(get(&d, "aws.cloudtrail.console_login.mfa_used"), None);
        for (said, mfa) in [("Yes", true), ("No", false)] {
            let n = one(
                json!({"eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com",
                "additionalEventData": {"MFAUsed": said}}),
            );
            let d = Value::Object(n.doc);
            assert_eq!(
                get(&d, "aws.cloudtrail.console_login.mfa_used"),
                Some(&json!(mfa))
            );
        }
    }

    #[test]
    fn insight_events() {
        let n = one(
            json!({"eventTime": "2024-05-01T00:00:00Z", "eventType": "AwsCloudTrailInsight", "eventID": "i1",
            "insightDetails": {"state": "Start", "eventSource": "ssm.amazonaws.com", "eventName": "UpdateInstanceInformation", "insightType": "ApiCallRateInsight"}}),
        );
        let d = Value::Object(n.doc);
        assert_eq!(get(&d, "event.kind"), Some(&json!("alert")));
        assert_eq!(get(&d, "rule.name"), Some(&json!("ApiCallRateInsight")));
        assert_eq!(get(&d, "event.outcome"), None);
    }

    #[test]
    fn bad_records_are_errors() {
        let mut out = Vec::new();
        assert_eq!(
            normalize(json!([1]), &ctx(), &mut out),
            Err(NormalizeError::NotAnObject)
        );
        assert!(matches!(
            normalize(json!({"eventTime": "yesterday"}), &ctx(), &mut out),
            Err(NormalizeError::InvalidField {
                field: "eventTime",
                ..
            })
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn verbs() {
        assert_eq!(verb_type("CreateUser"), "creation");
        assert_eq!(verb_type("Creative"), "access");
        assert_eq!(verb_type("DeleteBucket"), "deletion");
        assert_eq!(verb_type("PutObject"), "change");
        assert_eq!(verb_type("ListBuckets"), "access");
        assert_eq!(
            classify("iam.amazonaws.com", "CreateUser"),
            (vec!["iam"], vec!["creation", "user"])
        );
    }
}
