//! The security promises of the StackSets templates, checked over the parsed templates.
//!
//! Each check returns the violations it found (empty = kept). Every check is also run on a copy
//! of the template broken in memory, to prove it can fail.

use crate::cfn::{
    TEMPLATES, Template, as_list, get_att, policy_statements, ref_target, stacksets_dir, sub_text,
};
use serde_json::{Value, json};

fn central() -> Template {
    Template::load("central.yaml")
}

fn member() -> Template {
    Template::load("member.yaml")
}

pub fn props(resource: &Value) -> &Value {
    resource.get("Properties").unwrap_or(&Value::Null)
}

/// Logical id of the resource a `Ref` or `GetAtt` points to.
fn referenced_id(v: &Value) -> Option<&str> {
    ref_target(v).or_else(|| get_att(v).map(|(id, _)| id))
}

// ------------------------------------------------------------------------------------ checks

/// Buckets that receive another bucket's server access logs: S3 delivers those only to a bucket
/// encrypted with S3-managed keys, so they are the one documented exception to the customer key.
pub fn access_log_targets(t: &Template) -> Vec<&str> {
    t.resources_of_type("AWS::S3::Bucket")
        .into_iter()
        .filter_map(|(_, b)| {
            props(b)
                .pointer("/LoggingConfiguration/DestinationBucketName")
                .and_then(ref_target)
        })
        .collect()
}

/// Every bucket is encrypted by default with SSE-KMS under a customer key of the same template
/// (rotation on), not with S3-managed keys; a server access log target uses SSE-S3 and says why
/// in its metadata.
fn bucket_encryption_uses_customer_key(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let access_log_targets = access_log_targets(t);
    for (id, bucket) in t.resources_of_type("AWS::S3::Bucket") {
        if access_log_targets.contains(&id) {
            let algorithm = props(bucket).pointer(
                "/BucketEncryption/ServerSideEncryptionConfiguration/0/ServerSideEncryptionByDefault/SSEAlgorithm",
            );
            let reason = bucket
                .pointer("/Metadata/SuppressedRuleReasons/S3_BUCKET_CUSTOMER_KEY")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if algorithm != Some(&json!("AES256")) || reason.len() < 20 {
                violations.push(format!(
                    "{}: access log bucket {id} must use SSE-S3 (the only encryption S3 log delivery supports) and give the reason in its metadata",
                    t.file
                ));
            }
            continue;
        }
        let rules = props(bucket)
            .pointer("/BucketEncryption/ServerSideEncryptionConfiguration")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if rules.is_empty() {
            violations.push(format!("{}: bucket {id} has no default encryption", t.file));
        }
        for rule in &rules {
            let algorithm = rule
                .pointer("/ServerSideEncryptionByDefault/SSEAlgorithm")
                .and_then(Value::as_str);
            if algorithm != Some("aws:kms") {
                violations.push(format!(
                    "{}: bucket {id} encrypts with {algorithm:?}, not aws:kms",
                    t.file
                ));
            }
            let key = rule
                .pointer("/ServerSideEncryptionByDefault/KMSMasterKeyID")
                .and_then(referenced_id);
            match key {
                Some(key_id) if t.resource_type(key_id) == Some("AWS::KMS::Key") => {
                    let rotation = t
                        .resource(key_id)
                        .map(props)
                        .and_then(|p| p.get("EnableKeyRotation"))
                        .and_then(Value::as_bool);
                    if rotation != Some(true) {
                        violations.push(format!("{}: key {key_id} does not rotate", t.file));
                    }
                }
                _ => violations.push(format!(
                    "{}: bucket {id} is not encrypted with a customer key of this template",
                    t.file
                )),
            }
        }
    }
    violations
}

/// Every bucket blocks all four kinds of public access and disables ACLs.
fn public_access_blocked(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, bucket) in t.resources_of_type("AWS::S3::Bucket") {
        let block = props(bucket).get("PublicAccessBlockConfiguration");
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            if block.and_then(|b| b.get(flag)).and_then(Value::as_bool) != Some(true) {
                violations.push(format!("{}: bucket {id} does not set {flag}", t.file));
            }
        }
        let ownership = props(bucket)
            .pointer("/OwnershipControls/Rules/0/ObjectOwnership")
            .and_then(Value::as_str);
        if ownership != Some("BucketOwnerEnforced") {
            violations.push(format!(
                "{}: bucket {id} ownership is {ownership:?}, not BucketOwnerEnforced",
                t.file
            ));
        }
    }
    violations
}

/// `false` as CloudFormation writes it: a YAML boolean or the string "false".
fn is_false(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(false))) || v == Some(&json!("false"))
}

fn is_everyone(principal: Option<&Value>) -> bool {
    match principal {
        Some(Value::String(s)) => s == "*",
        Some(Value::Object(m)) => m.get("AWS").and_then(Value::as_str) == Some("*"),
        _ => false,
    }
}

/// Every bucket has a policy denying any request that does not use TLS, on the bucket and on
/// every object.
fn bucket_is_tls_only(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, _) in t.resources_of_type("AWS::S3::Bucket") {
        let policies: Vec<&Value> = t
            .resources_of_type("AWS::S3::BucketPolicy")
            .into_iter()
            .filter(|(_, p)| props(p).get("Bucket").and_then(ref_target) == Some(id))
            .map(|(_, p)| props(p))
            .collect();
        let object_arn = format!("${{{id}.Arn}}/*");
        let denies_plain_http = policies.iter().any(|p| {
            as_list(p.pointer("/PolicyDocument/Statement"))
                .into_iter()
                .any(|s| {
                    let resources = as_list(s.get("Resource"));
                    s.get("Effect").and_then(Value::as_str) == Some("Deny")
                        && is_everyone(s.get("Principal"))
                        && as_list(s.get("Action"))
                            .iter()
                            .any(|a| matches!(a.as_str(), Some("s3:*" | "*")))
                        && resources.iter().any(|r| get_att(r) == Some((id, "Arn")))
                        && resources
                            .iter()
                            .any(|r| sub_text(r) == Some(object_arn.as_str()))
                        && is_false(s.pointer("/Condition/Bool/aws:SecureTransport"))
                })
        });
        if !denies_plain_http {
            violations.push(format!(
                "{}: bucket {id} has no policy denying requests without TLS (aws:SecureTransport false) on the bucket and its objects",
                t.file
            ));
        }
    }
    violations
}

/// No Allow statement anywhere grants every action on every resource, and none uses the
/// inverted forms (NotAction / NotResource) that grant everything but a list.
fn no_admin_statements(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (place, s) in policy_statements(t) {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        if s.get("NotAction").is_some() || s.get("NotResource").is_some() {
            violations.push(format!("{place}: Allow with NotAction/NotResource"));
        }
        let all_actions = as_list(s.get("Action"))
            .iter()
            .any(|a| a.as_str() == Some("*"));
        let all_resources = as_list(s.get("Resource"))
            .iter()
            .any(|r| r.as_str() == Some("*"));
        if all_actions && all_resources {
            violations.push(format!("{place}: allows action * on resource *"));
        }
    }
    violations
}

/// Actions for which AWS defines no resource type: a statement of these alone may (and must)
/// name every resource.
const ACTIONS_WITHOUT_RESOURCES: &[&str] = &[
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "logs:DescribeAccountPolicies",
    "logs:PutAccountPolicy",
    "logs:DeleteAccountPolicy",
];

/// Roles are least privilege: no identity statement of a role targets every resource (unless
/// all its actions are [`ACTIONS_WITHOUT_RESOURCES`]), and no role carries a managed policy
/// (whose content the template cannot show).
fn roles_name_their_resources(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, role) in t.resources_of_type("AWS::IAM::Role") {
        if props(role).get("ManagedPolicyArns").is_some() {
            violations.push(format!("{}: role {id} attaches managed policies", t.file));
        }
        let policies = Template {
            file: format!("{}: role {id}", t.file),
            doc: props(role).get("Policies").cloned().unwrap_or(Value::Null),
        };
        for (place, s) in policy_statements(&policies) {
            let only_resourceless = as_list(s.get("Action")).iter().all(|a| {
                a.as_str()
                    .is_some_and(|a| ACTIONS_WITHOUT_RESOURCES.contains(&a))
            });
            if !only_resourceless
                && as_list(s.get("Resource"))
                    .iter()
                    .any(|r| r.as_str() == Some("*"))
            {
                violations.push(format!("{place}: grants on resource *"));
            }
        }
    }
    violations
}

/// Every function writes its logs to a log group of the template that has a retention, named
/// as Lambda names it, and its role may write only there (and may not create other groups,
/// which would have no retention).
fn functions_log_with_retention(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, function) in t.resources_of_type("AWS::Lambda::Function") {
        let p = props(function);
        let group_id = p.pointer("/LoggingConfig/LogGroup").and_then(ref_target);
        let Some(group_id) = group_id.filter(|g| t.resource_type(g) == Some("AWS::Logs::LogGroup"))
        else {
            violations.push(format!(
                "{}: function {id} does not log to a log group of this template",
                t.file
            ));
            continue;
        };
        let group = t.resource(group_id).map(props).unwrap_or(&Value::Null);
        if group.get("RetentionInDays").is_none() {
            violations.push(format!(
                "{}: log group {group_id} of {id} has no retention",
                t.file
            ));
        }
        let function_name = p.get("FunctionName").and_then(sub_text);
        let group_name = group.get("LogGroupName").and_then(sub_text);
        match (function_name, group_name) {
            (Some(f), Some(g)) if g == format!("/aws/lambda/{f}") => {}
            _ => violations.push(format!(
                "{}: log group {group_id} is not named /aws/lambda/<FunctionName of {id}>",
                t.file
            )),
        }
        let role_id = p.get("Role").and_then(get_att).map(|(r, _)| r);
        let Some(role) = role_id.and_then(|r| t.resource(r)) else {
            violations.push(format!(
                "{}: function {id} has no role of this template",
                t.file
            ));
            continue;
        };
        let role_policies = Template {
            file: t.file.clone(),
            doc: props(role).get("Policies").cloned().unwrap_or(Value::Null),
        };
        for (place, s) in policy_statements(&role_policies) {
            let actions = as_list(s.get("Action"));
            if actions
                .iter()
                .any(|a| a.as_str() == Some("logs:CreateLogGroup"))
            {
                violations.push(format!("{place}: role of {id} may create log groups"));
            }
            if actions
                .iter()
                .any(|a| a.as_str() == Some("logs:PutLogEvents"))
            {
                let own_group = as_list(s.get("Resource")).iter().all(|r| {
                    get_att(r) == Some((group_id, "Arn"))
                        || sub_text(r) == Some(format!("${{{group_id}.Arn}}").as_str())
                });
                if !own_group {
                    violations.push(format!(
                        "{place}: role of {id} may write logs outside {group_id}"
                    ));
                }
            }
        }
    }
    violations
}

/// The collector role may put objects only under its own account's prefix of the central
/// bucket, encrypt only with the central key, and do nothing else but write its own logs (and
/// assume the optional writer role).
fn collector_role_limited_to_own_prefix(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let role_id = t
        .resource("CollectorFunction")
        .map(props)
        .and_then(|p| p.get("Role"))
        .and_then(get_att)
        .map(|(r, _)| r);
    let Some(role) = role_id.and_then(|r| t.resource(r)) else {
        return vec![format!("{}: no CollectorFunction with a role", t.file)];
    };
    let policies = Template {
        file: format!("{}: collector role", t.file),
        doc: props(role).get("Policies").cloned().unwrap_or(Value::Null),
    };
    let own_prefix = "arn:${AWS::Partition}:s3:::${CentralBucketName}/AWSLogs/${AWS::AccountId}/*";
    let mut writes = 0;
    for (place, s) in policy_statements(&policies) {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let resources = as_list(s.get("Resource"));
        for action in as_list(s.get("Action")) {
            let action = action.as_str().unwrap_or("<not a string>");
            let service = action.split(':').next().unwrap_or_default();
            match service {
                "s3" => {
                    if action != "s3:PutObject" {
                        violations.push(format!("{place}: collector may {action}"));
                    }
                    if resources.len() != 1 || sub_text(resources[0]) != Some(own_prefix) {
                        violations.push(format!(
                            "{place}: collector writes to {resources:?}, not only {own_prefix}"
                        ));
                    }
                    writes += 1;
                }
                "kms" => {
                    if !matches!(action, "kms:GenerateDataKey" | "kms:Encrypt")
                        || resources.len() != 1
                        || ref_target(resources[0]) != Some("KmsKeyArn")
                    {
                        violations.push(format!(
                            "{place}: collector may {action} on {resources:?} (only encrypt with the central key)"
                        ));
                    }
                }
                "logs" => {}
                "sqs" => {
                    if action != "sqs:SendMessage"
                        || resources.len() != 1
                        || get_att(resources[0]) != Some(("CollectorDeadLetterQueue", "Arn"))
                    {
                        violations.push(format!(
                            "{place}: collector may {action} on {resources:?} (only dead-letter to its own queue)"
                        ));
                    }
                }
                "sts" if action == "sts:AssumeRole" => {
                    if resources.len() != 1 || ref_target(resources[0]) != Some("WriterRoleArn") {
                        violations.push(format!("{place}: collector may assume {resources:?}"));
                    }
                }
                _ => violations.push(format!("{place}: collector may {action}")),
            }
        }
    }
    if writes == 0 {
        violations.push(format!(
            "{}: the collector role cannot write at all",
            t.file
        ));
    }
    violations
}

/// In the central bucket policy, principals of the organization may put objects only under
/// `AWSLogs/<their own account>/`; no other statement lets an arbitrary AWS principal write.
fn bucket_policy_confines_accounts_to_own_prefix(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let mut org_writes = 0;
    for (_, policy) in t.resources_of_type("AWS::S3::BucketPolicy") {
        let bucket = props(policy).get("Bucket").and_then(ref_target);
        let Some(bucket) = bucket else {
            violations.push(format!(
                "{}: bucket policy names no bucket of the template",
                t.file
            ));
            continue;
        };
        let own_prefix = format!("${{{bucket}.Arn}}/AWSLogs/${{!aws:PrincipalAccount}}/*");
        for s in as_list(props(policy).pointer("/PolicyDocument/Statement")) {
            let writes = as_list(s.get("Action"))
                .iter()
                .any(|a| matches!(a.as_str(), Some("s3:PutObject" | "s3:*" | "*")));
            if s.get("Effect").and_then(Value::as_str) != Some("Allow")
                || !writes
                || !is_everyone(s.get("Principal"))
            {
                continue;
            }
            let sid = s.get("Sid").and_then(Value::as_str).unwrap_or("<no Sid>");
            let resources = as_list(s.get("Resource"));
            if resources.len() != 1 || sub_text(resources[0]) != Some(own_prefix.as_str()) {
                violations.push(format!(
                    "{}: statement {sid} lets any principal write to {resources:?}, not only {own_prefix}",
                    t.file
                ));
            }
            if s.pointer("/Condition/StringEquals/aws:PrincipalOrgID")
                .and_then(ref_target)
                != Some("OrganizationId")
            {
                violations.push(format!(
                    "{}: statement {sid} is not limited to the organization (aws:PrincipalOrgID)",
                    t.file
                ));
            }
            let roles = as_list(s.pointer("/Condition/ArnLike/aws:PrincipalArn"));
            if roles.is_empty()
                || roles
                    .iter()
                    .any(|r| !sub_text(r).is_some_and(|arn| arn.contains(":role/${NamePrefix}-")))
            {
                violations.push(format!(
                    "{}: statement {sid} lets any principal of an account write, not only the pipeline's roles (aws:PrincipalArn)",
                    t.file
                ));
            }
            org_writes += 1;
        }
    }
    if org_writes == 0 {
        violations.push(format!(
            "{}: no statement lets the organization's accounts write",
            t.file
        ));
    }
    violations
}

/// Every bucket keeps versions and has a lifecycle that tiers objects and expires them after
/// the configured number of days (and expires old versions too). A snapshot repository
/// (metadata `SnapshotRepository: true`) is the exception the other way round: S3 must never
/// expire or archive its current objects, since snapshots share files and only the snapshot
/// policy knows which are still used; only replaced versions expire.
fn bucket_versioned_with_lifecycle(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, bucket) in t.resources_of_type("AWS::S3::Bucket") {
        let p = props(bucket);
        if p.pointer("/VersioningConfiguration/Status") != Some(&json!("Enabled")) {
            violations.push(format!("{}: bucket {id} is not versioned", t.file));
        }
        let rules = as_list(p.pointer("/LifecycleConfiguration/Rules"));
        let enabled: Vec<&&Value> = rules
            .iter()
            .filter(|r| r.get("Status") == Some(&json!("Enabled")))
            .collect();
        if bucket.pointer("/Metadata/SnapshotRepository") == Some(&json!(true)) {
            if enabled.iter().any(|r| {
                r.get("ExpirationInDays").is_some() || !as_list(r.get("Transitions")).is_empty()
            }) {
                violations.push(format!(
                    "{}: snapshot bucket {id} expires or archives snapshot files the snapshot policy still uses",
                    t.file
                ));
            }
            if !enabled.iter().any(|r| {
                r.pointer("/NoncurrentVersionExpiration/NoncurrentDays")
                    .is_some()
            }) {
                violations.push(format!(
                    "{}: snapshot bucket {id} keeps replaced versions forever",
                    t.file
                ));
            }
            continue;
        }
        let is_param = |v: &Value| {
            ref_target(v).is_some_and(|n| t.doc.pointer(&format!("/Parameters/{n}")).is_some())
        };
        // A parameter, or a condition choosing between two parameters.
        let param = |r: &Value, field: &str| {
            r.pointer(field).is_some_and(|v| {
                is_param(v)
                    || v.get("Fn::If")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.len() == 3 && is_param(&a[1]) && is_param(&a[2]))
            })
        };
        if !enabled.iter().any(|r| param(r, "/ExpirationInDays")) {
            violations.push(format!(
                "{}: bucket {id} has no lifecycle expiry set by a parameter",
                t.file
            ));
        }
        if !enabled
            .iter()
            .any(|r| param(r, "/NoncurrentVersionExpiration/NoncurrentDays"))
        {
            violations.push(format!(
                "{}: bucket {id} keeps old versions forever",
                t.file
            ));
        }
        // Access logs are many small objects: Standard-IA would bill each as 128 KB.
        if !access_log_targets(t).contains(&id)
            && !enabled
                .iter()
                .any(|r| !as_list(r.get("Transitions")).is_empty())
        {
            violations.push(format!(
                "{}: bucket {id} never moves objects to cheaper storage",
                t.file
            ));
        }
    }
    violations
}

/// No resource policy grants anything to every principal unless the statement is limited to
/// the organization (aws:PrincipalOrgID) or to AWS services acting for it. One exception: a
/// domain's access policy may let unsigned requests reach its Dashboards alone
/// (`.../_dashboards*`), where SAML sign-in happens in the browser and fine-grained access
/// control admits only users the identity provider vouches for (operations.rs checks that
/// this statement exists only with SAML sign-in).
fn wildcard_principals_limited_to_organization(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (place, s) in policy_statements(t) {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow")
            || !is_everyone(s.get("Principal"))
        {
            continue;
        }
        let dashboards_only = place.contains("/Properties/AccessPolicies/")
            && as_list(s.get("Resource"))
                .iter()
                .all(|r| sub_text(r).is_some_and(|r| r.ends_with("/_dashboards*")));
        if dashboards_only {
            continue;
        }
        let org = s
            .get("Condition")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|ops| ops.values())
            .any(|keys| keys.get("aws:PrincipalOrgID").is_some());
        if !org {
            violations.push(format!(
                "{place}: grants to every principal without aws:PrincipalOrgID"
            ));
        }
    }
    violations
}

/// Object notifications that fail five times land in a dead-letter queue instead of vanishing.
fn queue_has_dead_letter_queue(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let Some(queue) = t.resource("LogQueue").map(props) else {
        return vec![format!("{}: no LogQueue", t.file)];
    };
    let dlq = queue
        .pointer("/RedrivePolicy/deadLetterTargetArn")
        .and_then(get_att)
        .map(|(id, _)| id);
    if dlq.is_none_or(|id| t.resource_type(id) != Some("AWS::SQS::Queue")) {
        violations.push(format!("{}: LogQueue has no dead-letter queue", t.file));
    }
    let alarmed = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, a)| {
            props(a).pointer("/Dimensions/0/Value").and_then(get_att)
                == dlq.map(|id| (id, "QueueName"))
                && props(a).get("MetricName") == Some(&json!("ApproximateNumberOfMessagesVisible"))
                && props(a)
                    .pointer("/AlarmActions/0")
                    .and_then(ref_target)
                    .is_some()
        });
    if !alarmed {
        violations.push(format!(
            "{}: nobody is alerted about dead-lettered objects",
            t.file
        ));
    }
    violations
}

/// The loader consumes the queue with partial batch responses, and batch size and maximum
/// concurrency are parameters.
fn loader_event_source_reports_partial_failures(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let mappings = t.resources_of_type("AWS::Lambda::EventSourceMapping");
    if mappings.is_empty() {
        violations.push(format!("{}: no event source mapping", t.file));
    }
    for (id, m) in mappings {
        let p = props(m);
        if !as_list(p.get("FunctionResponseTypes"))
            .iter()
            .any(|v| v.as_str() == Some("ReportBatchItemFailures"))
        {
            violations.push(format!(
                "{}: {id} does not report batch item failures",
                t.file
            ));
        }
        for field in ["/BatchSize", "/ScalingConfig/MaximumConcurrency"] {
            let param = p.pointer(field).and_then(ref_target);
            if param.is_none_or(|name| t.doc.pointer(&format!("/Parameters/{name}")).is_none()) {
                violations.push(format!("{}: {id}{field} is not a parameter", t.file));
            }
        }
    }
    violations
}

/// The loader prepares OpenSearch (templates, retention, dashboards) through a custom resource
/// of its own function (or, under fine-grained access control, of a function running the same
/// code as the master user), again for every new code version, before the queue feeds it.
fn opensearch_prepared_before_loading(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let setups = t.resources_of_type("Custom::OpenSearchSetup");
    let Some((id, setup)) = setups.first() else {
        return vec![format!("{}: no Custom::OpenSearchSetup", t.file)];
    };
    let p = props(setup);
    let loader_code = |function: &str| {
        t.resource(function)
            .map(props)
            .and_then(|f| f.pointer("/Code/S3Key"))
            .and_then(ref_target)
            == Some("LoaderCodeKey")
    };
    let token = p.get("ServiceToken");
    let by_loader_code = match token.and_then(get_att) {
        Some(("LoaderFunction", "Arn")) => true,
        _ => token
            .and_then(|v| v.get("Fn::If"))
            .and_then(Value::as_array)
            .is_some_and(|branches| {
                branches.iter().skip(1).all(|b| {
                    get_att(b).is_some_and(|(function, attribute)| {
                        attribute == "Arn" && loader_code(function)
                    })
                }) && branches.get(2).and_then(get_att) == Some(("LoaderFunction", "Arn"))
            }),
    };
    if !by_loader_code {
        violations.push(format!(
            "{}: {id} is not run by the loader function",
            t.file
        ));
    }
    if p.get("LoaderCodeKey").and_then(ref_target) != Some("LoaderCodeKey") {
        violations.push(format!(
            "{}: {id} does not change with the loader's code, so an upgrade keeps old content",
            t.file
        ));
    }
    for field in ["Shards", "Replicas", "RefreshInterval", "RetentionDays"] {
        let param = p.get(field).and_then(ref_target);
        if param.is_none_or(|name| t.doc.pointer(&format!("/Parameters/{name}")).is_none()) {
            violations.push(format!("{}: {id} {field} is not a parameter", t.file));
        }
    }
    // The event source mapping waits for a resource whose metadata refers to the setup (a
    // conditional resource cannot be named in DependsOn).
    let waits_for_setup = t
        .resource("LoaderEventSource")
        .map(|m| as_list(m.get("DependsOn")))
        .unwrap_or_default()
        .iter()
        .filter_map(|d| t.resource(d.as_str()?))
        .any(|r| {
            r.get("Metadata")
                .is_some_and(|m| m.to_string().contains(&format!("{{\"Ref\":\"{id}\"}}")))
        });
    if !waits_for_setup {
        violations.push(format!(
            "{}: the queue may feed the loader before {id} prepared the indices",
            t.file
        ));
    }
    violations
}

/// Functions run the packaged `bootstrap` on provided.al2023, on the architecture parameter,
/// with code from parameters, and with the environment the binaries read.
fn functions_match_the_binaries(t: &Template, expected_env: &[(&str, &[&str])]) -> Vec<String> {
    let mut violations = Vec::new();
    let architecture = t.doc.pointer("/Parameters/Architecture");
    if architecture.and_then(|a| a.get("AllowedValues")) != Some(&json!(["x86_64", "arm64"]))
        || architecture.and_then(|a| a.get("Default")) != Some(&json!("x86_64"))
    {
        violations.push(format!(
            "{}: Architecture must allow x86_64 (default) and arm64",
            t.file
        ));
    }
    for (id, f) in t.resources_of_type("AWS::Lambda::Function") {
        let p = props(f);
        if p.get("Runtime") != Some(&json!("provided.al2023"))
            || p.get("Handler") != Some(&json!("bootstrap"))
        {
            violations.push(format!(
                "{}: {id} is not bootstrap on provided.al2023",
                t.file
            ));
        }
        if p.get("Architectures") != Some(&json!([{ "Ref": "Architecture" }])) {
            violations.push(format!(
                "{}: {id} ignores the Architecture parameter",
                t.file
            ));
        }
        if p.pointer("/Code/S3Key").and_then(ref_target).is_none() {
            violations.push(format!("{}: {id} code key is not a parameter", t.file));
        }
    }
    for (id, names) in expected_env {
        let vars = t
            .resource(id)
            .map(props)
            .and_then(|p| p.pointer("/Environment/Variables"));
        for name in names.iter() {
            if vars.and_then(|v| v.get(name)).is_none() {
                violations.push(format!(
                    "{}: {id} lacks environment variable {name}",
                    t.file
                ));
            }
        }
    }
    violations
}

const LOADER_ENV: &[&str] = &[
    "OPENSEARCH_ENDPOINT",
    "OPENSEARCH_AUTH",
    "QUARANTINE_BUCKET",
    "QUARANTINE_PREFIX",
    "OPENSEARCH_SECRET_ARN",
    "ORGANIZATION_ID",
    "ALERT_TOPIC_ARN",
    "ALERT_MIN_LEVEL",
    "LOADER_RULES_LOCATION",
    "LOADER_DISABLED_RULES",
    "GEOIP_DATABASE_DIR",
    "GEOIP_LICENSE_SECRET_ARN",
    "THREAT_INTEL_FEEDS",
    "ORG_CONTEXT",
    "ORG_CONTEXT_TAGS",
];
const COLLECTOR_ENV: &[&str] = &[
    "BUCKET",
    "KMS_KEY_ARN",
    "EXPECTED_BUCKET_OWNER",
    "WRITER_ROLE_ARN",
];
const SUBSCRIBER_ENV: &[&str] = &[
    "DESTINATION_ARN",
    "FILTER_NAME",
    "FILTER_PATTERN",
    "INCLUDE_PATTERNS",
    "EXCLUDE_PATTERNS",
    "COLLECTOR_FUNCTION_NAME",
    "PROTECTED_LOG_GROUPS",
];

// ------------------------------------------------------------------------------------ tests

pub fn assert_kept(violations: Vec<String>) {
    assert!(
        violations.is_empty(),
        "violations:\n{}",
        violations.join("\n")
    );
}

pub fn assert_broken(violations: Vec<String>, what: &str) {
    assert!(
        !violations.is_empty(),
        "the check did not notice a template that {what}"
    );
}

#[test]
fn every_template_parses_and_is_listed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(stacksets_dir())
        .expect("stacksets/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml") || n.ends_with(".json"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = TEMPLATES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "every template in stacksets/ must be checked"
    );
    for file in TEMPLATES {
        let t = Template::load(file);
        assert!(!t.resources().is_empty(), "{file} has no resources");
    }
}

#[test]
fn unknown_short_tags_are_rejected() {
    let err = Template::parse("x.yaml", "Resources:\n  A:\n    Type: !Bogus x\n")
        .expect_err("an unknown tag must not parse");
    assert!(err.contains("!Bogus"), "{err}");
    let t = Template::parse(
        "x.yaml",
        "Resources:\n  A:\n    Type: T\n    Properties:\n      B: !GetAtt Key.Arn\n      C: !Sub x\n",
    )
    .expect("short tags parse");
    assert_eq!(
        t.doc.pointer("/Resources/A/Properties/B"),
        Some(&json!({"Fn::GetAtt": ["Key", "Arn"]}))
    );
    assert_eq!(
        t.doc.pointer("/Resources/A/Properties/C"),
        Some(&json!({"Fn::Sub": "x"}))
    );
}

#[test]
fn central_bucket_is_encrypted_with_the_customer_key() {
    let t = central();
    assert!(!t.resources_of_type("AWS::S3::Bucket").is_empty());
    assert_kept(bucket_encryption_uses_customer_key(&t));
    let sse = "/Resources/LogBucket/Properties/BucketEncryption/ServerSideEncryptionConfiguration/0/ServerSideEncryptionByDefault";
    assert_broken(
        bucket_encryption_uses_customer_key(
            &t.mutated(&format!("{sse}/SSEAlgorithm"), Some(json!("AES256"))),
        ),
        "encrypts with S3-managed keys",
    );
    assert_broken(
        bucket_encryption_uses_customer_key(&t.mutated(
            &format!("{sse}/KMSMasterKeyID"),
            Some(json!("alias/aws/s3")),
        )),
        "uses the AWS-managed key",
    );
}

#[test]
fn central_bucket_blocks_public_access() {
    let t = central();
    assert_kept(public_access_blocked(&t));
    assert_broken(
        public_access_blocked(&t.mutated(
            "/Resources/LogBucket/Properties/PublicAccessBlockConfiguration/BlockPublicPolicy",
            Some(json!(false)),
        )),
        "allows a public policy",
    );
}

#[test]
fn central_bucket_is_tls_only() {
    let t = central();
    assert_kept(bucket_is_tls_only(&t));
    assert_broken(
        bucket_is_tls_only(&t.mutated(
            "/Resources/LogBucketPolicy/Properties/PolicyDocument/Statement/0",
            None,
        )),
        "lacks the TLS-only statement",
    );
}

#[test]
fn no_template_allows_everything_on_everything() {
    for file in TEMPLATES {
        let t = Template::load(file);
        assert_kept(no_admin_statements(&t));
        assert_kept(roles_name_their_resources(&t));
    }
    let admin = json!({"Effect": "Allow", "Action": "*", "Resource": "*"});
    let broken = central().mutated(
        "/Resources/LoaderRole/Properties/Policies/0/PolicyDocument/Statement/0",
        Some(admin),
    );
    assert_broken(no_admin_statements(&broken), "grants * on *");
    assert_broken(roles_name_their_resources(&broken), "grants on resource *");
    // Describing the VPC may name every resource; creating interfaces beside it may not.
    let mixed = json!({"Effect": "Allow", "Resource": "*",
        "Action": ["ec2:DescribeSubnets", "ec2:CreateNetworkInterface"]});
    assert_broken(
        roles_name_their_resources(&central().mutated(
            "/Resources/LoaderRole/Properties/Policies/0/PolicyDocument/Statement/0",
            Some(mixed),
        )),
        "creates network interfaces anywhere",
    );
}

#[test]
fn every_function_logs_to_a_group_with_retention() {
    let mut functions = 0;
    for file in TEMPLATES {
        let t = Template::load(file);
        functions += t.resources_of_type("AWS::Lambda::Function").len();
        assert_kept(functions_log_with_retention(&t));
    }
    assert_eq!(
        functions, 4,
        "loader, its setup function under fine-grained access control, collector and subscriber"
    );
    let m = member();
    assert_broken(
        functions_log_with_retention(&m.mutated(
            "/Resources/CollectorLogGroup/Properties/RetentionInDays",
            None,
        )),
        "keeps collector logs forever",
    );
    assert_broken(
        functions_log_with_retention(&m.mutated(
            "/Resources/SubscriberFunction/Properties/LoggingConfig",
            None,
        )),
        "lets the subscriber log to an unmanaged group",
    );
}

#[test]
fn collector_role_writes_only_under_its_own_account_prefix() {
    let t = member();
    assert_kept(collector_role_limited_to_own_prefix(&t));
    let statements = "/Resources/CollectorRole/Properties/Policies/0/PolicyDocument/Statement";
    assert_broken(
        collector_role_limited_to_own_prefix(&t.mutated(
            &format!("{statements}/1/Resource"),
            Some(json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${CentralBucketName}/AWSLogs/*"})),
        )),
        "lets the collector write under other accounts",
    );
    assert_broken(
        collector_role_limited_to_own_prefix(&t.mutated(
            &format!("{statements}/1/Action"),
            Some(json!(["s3:PutObject", "s3:DeleteObject"])),
        )),
        "lets the collector delete",
    );
}

#[test]
fn organization_accounts_write_only_under_their_own_prefix() {
    let t = central();
    assert_kept(bucket_policy_confines_accounts_to_own_prefix(&t));
    let statement = "/Resources/LogBucketPolicy/Properties/PolicyDocument/Statement/3";
    assert_eq!(
        t.doc
            .pointer(&format!("{statement}/Sid"))
            .and_then(Value::as_str),
        Some("OrganizationPipelineRolesWriteOwnPrefix")
    );
    assert_broken(
        bucket_policy_confines_accounts_to_own_prefix(&t.mutated(
            &format!("{statement}/Resource"),
            Some(json!({"Fn::Sub": "${LogBucket.Arn}/AWSLogs/*"})),
        )),
        "lets an account write under another account's prefix",
    );
    assert_broken(
        bucket_policy_confines_accounts_to_own_prefix(
            &t.mutated(&format!("{statement}/Condition"), None),
        ),
        "lets principals outside the organization write",
    );
    assert_broken(
        bucket_policy_confines_accounts_to_own_prefix(
            &t.mutated(&format!("{statement}/Condition/ArnLike"), None),
        ),
        "lets every principal of a member account write",
    );
}

#[test]
fn loader_reports_partial_batch_failures() {
    let t = central();
    assert_kept(loader_event_source_reports_partial_failures(&t));
    assert_broken(
        loader_event_source_reports_partial_failures(&t.mutated(
            "/Resources/LoaderEventSource/Properties/FunctionResponseTypes",
            None,
        )),
        "fails whole batches",
    );
    assert_broken(
        loader_event_source_reports_partial_failures(&t.mutated(
            "/Resources/LoaderEventSource/Properties/ScalingConfig/MaximumConcurrency",
            Some(json!(5)),
        )),
        "hard-codes the maximum concurrency",
    );
}

#[test]
fn the_loader_prepares_opensearch_before_it_loads() {
    let t = central();
    assert_kept(opensearch_prepared_before_loading(&t));
    assert_broken(
        opensearch_prepared_before_loading(
            &t.mutated("/Resources/LoaderEventSource/DependsOn", None),
        ),
        "loads before the templates exist",
    );
    assert_broken(
        opensearch_prepared_before_loading(&t.mutated("/Resources/OpenSearchReady/Metadata", None)),
        "waits for nothing",
    );
    assert_broken(
        opensearch_prepared_before_loading(
            &t.mutated("/Resources/OpenSearchSetup/Properties/LoaderCodeKey", None),
        ),
        "never runs again after an upgrade",
    );
    assert_broken(
        opensearch_prepared_before_loading(&t.mutated(
            "/Resources/OpenSearchSetup/Properties/ServiceToken",
            Some(json!(
                "arn:aws:lambda:eu-west-1:111122223333:function:other"
            )),
        )),
        "is run by another function",
    );
}

#[test]
fn functions_run_the_packaged_binaries_with_their_environment() {
    let c = central();
    assert_kept(functions_match_the_binaries(
        &c,
        &[("LoaderFunction", LOADER_ENV)],
    ));
    let m = member();
    let member_env: &[(&str, &[&str])] = &[
        ("CollectorFunction", COLLECTOR_ENV),
        ("SubscriberFunction", SUBSCRIBER_ENV),
    ];
    assert_kept(functions_match_the_binaries(&m, member_env));
    assert_broken(
        functions_match_the_binaries(
            &m.mutated(
                "/Resources/SubscriberFunction/Properties/Environment/Variables/DESTINATION_ARN",
                None,
            ),
            member_env,
        ),
        "drops the subscriber's destination",
    );
    assert_broken(
        functions_match_the_binaries(
            &c.mutated(
                "/Resources/LoaderFunction/Properties/Runtime",
                Some(json!("provided.al2")),
            ),
            &[("LoaderFunction", LOADER_ENV)],
        ),
        "runs on the retired runtime",
    );
}

#[test]
fn member_stack_wires_rules_permissions_and_backfill() {
    let t = member();
    let target_of = |rule: &str| {
        t.resource(rule)
            .map(props)
            .and_then(|p| p.pointer("/Targets/0/Arn"))
            .and_then(get_att)
            .map(|(id, _)| id.to_owned())
    };
    assert_eq!(
        target_of("CreateLogGroupRule").as_deref(),
        Some("SubscriberFunction")
    );
    assert_eq!(
        target_of("DeleteSubscriptionFilterRule").as_deref(),
        Some("SubscriberFunction")
    );
    assert_eq!(
        target_of("ReconcileScheduleRule").as_deref(),
        Some("SubscriberFunction")
    );
    assert_eq!(
        target_of("SecurityHubFindingsRule").as_deref(),
        Some("CollectorFunction")
    );
    assert_eq!(
        target_of("GuardDutyFindingsRule").as_deref(),
        Some("CollectorFunction")
    );

    // Every rule may invoke its target, and CloudWatch Logs may invoke the collector.
    let permissions = t.resources_of_type("AWS::Lambda::Permission");
    for (rule, r) in t.resources_of_type("AWS::Events::Rule") {
        if props(r).pointer("/Targets/0/Arn").and_then(ref_target) == Some("CentralAlertBusArn") {
            // Forwards to an event bus, not to a function.
            continue;
        }
        assert!(
            permissions.iter().any(|(_, p)| {
                props(p).get("Principal") == Some(&json!("events.amazonaws.com"))
                    && props(p).get("SourceArn").and_then(get_att) == Some((rule, "Arn"))
            }),
            "no permission lets rule {rule} invoke its target"
        );
    }
    assert!(permissions.iter().any(|(_, p)| {
        props(p).get("Principal") == Some(&json!("logs.amazonaws.com"))
            && props(p).get("FunctionName").and_then(ref_target) == Some("CollectorFunction")
            && props(p).get("SourceAccount") == Some(&json!({"Ref": "AWS::AccountId"}))
    }));

    let backfill = t.resource("SubscriptionBackfill").expect("custom resource");
    assert_eq!(
        props(backfill).get("ServiceToken").and_then(get_att),
        Some(("SubscriberFunction", "Arn"))
    );
}

#[test]
fn central_bucket_keeps_versions_and_expires_logs() {
    let t = central();
    assert_kept(bucket_versioned_with_lifecycle(&t));
    assert_broken(
        bucket_versioned_with_lifecycle(&t.mutated(
            "/Resources/LogBucket/Properties/VersioningConfiguration/Status",
            Some(json!("Suspended")),
        )),
        "suspends versioning",
    );
    assert_broken(
        bucket_versioned_with_lifecycle(&t.mutated(
            "/Resources/LogBucket/Properties/LifecycleConfiguration/Rules/0/ExpirationInDays",
            None,
        )),
        "keeps logs forever",
    );
    assert_broken(
        bucket_versioned_with_lifecycle(&t.mutated(
            "/Resources/SnapshotBucket/Properties/LifecycleConfiguration/Rules/0",
            Some(
                json!({"Id": "Expire", "Status": "Enabled", "ExpirationInDays": 30,
                        "NoncurrentVersionExpiration": {"NoncurrentDays": 7}}),
            ),
        )),
        "expires snapshot files under the snapshot policy",
    );
    assert_broken(
        bucket_versioned_with_lifecycle(&t.mutated(
            "/Resources/SnapshotBucket/Properties/LifecycleConfiguration/Rules/0/NoncurrentVersionExpiration",
            None,
        )),
        "keeps replaced snapshot files forever",
    );
}

#[test]
fn grants_to_everyone_are_limited_to_the_organization() {
    for file in TEMPLATES {
        assert_kept(wildcard_principals_limited_to_organization(
            &Template::load(file),
        ));
    }
    let t = central();
    let statement = "/Resources/LogBucketPolicy/Properties/PolicyDocument/Statement/3";
    assert_broken(
        wildcard_principals_limited_to_organization(
            &t.mutated(&format!("{statement}/Condition"), None),
        ),
        "lets anyone write",
    );
    assert_broken(
        wildcard_principals_limited_to_organization(&t.mutated(
            "/Resources/LogKey/Properties/KeyPolicy/Statement/1/Condition/StringEquals/aws:PrincipalOrgID",
            None,
        )),
        "lets anyone use the key",
    );
}

#[test]
fn failed_objects_are_dead_lettered_and_alarmed() {
    let t = central();
    assert_kept(queue_has_dead_letter_queue(&t));
    assert_broken(
        queue_has_dead_letter_queue(
            &t.mutated("/Resources/LogQueue/Properties/RedrivePolicy", None),
        ),
        "drops failed objects",
    );
    assert_broken(
        queue_has_dead_letter_queue(&t.mutated("/Resources/DeadLetterAlarm", None)),
        "tells nobody about dead-lettered objects",
    );
}
