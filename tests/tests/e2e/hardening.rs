//! The stacks leave no hole: no log loop, no silent loss in member accounts, writes only by the
//! pipeline, tamper-proof storage, no secret in plain text. Each check returns its violations
//! and is run on a copy of the template broken in memory as well, to prove it can fail.

use crate::cfn::{TEMPLATES, Template, as_list, get_att, ref_target, sub_text};
use crate::templates::{access_log_targets, assert_broken, assert_kept, props};
use serde_json::{Value, json};

/// The text of a `!Sub` or a plain string.
fn text(v: &Value) -> Option<&str> {
    sub_text(v).or_else(|| v.as_str())
}

// ------------------------------------------------------------------------------ 1. log loop

/// The subscriber never subscribes a log group of the pipeline: its PROTECTED_LOG_GROUPS hold
/// the prefixes every log group of the member templates is named under, and the central stack's
/// groups (its output PipelineLogGroups, passed in as a parameter).
fn pipeline_log_groups_are_protected(member: &Template, others: &[Template]) -> Vec<String> {
    let mut violations = Vec::new();
    let protected: Vec<Value> = member
        .resource("SubscriberFunction")
        .map(props)
        .and_then(|p| p.pointer("/Environment/Variables/PROTECTED_LOG_GROUPS/Fn::Join/1"))
        .map(|list| as_list(Some(list)).into_iter().cloned().collect())
        .unwrap_or_default();
    if protected.is_empty() {
        return vec![format!(
            "{}: the subscriber has no PROTECTED_LOG_GROUPS list",
            member.file
        )];
    }
    if !protected
        .iter()
        .any(|p| ref_target(p) == Some("PipelineLogGroups"))
    {
        violations.push(format!(
            "{}: the central stack's log groups (parameter PipelineLogGroups) are not protected",
            member.file
        ));
    }
    let prefixes: Vec<&str> = protected
        .iter()
        .filter_map(text)
        .filter_map(|p| p.strip_suffix('*'))
        .collect();
    for t in std::iter::once(member).chain(others) {
        for (id, group) in t.resources_of_type("AWS::Logs::LogGroup") {
            let name = props(group).get("LogGroupName").and_then(text);
            if !name.is_some_and(|n| prefixes.iter().any(|p| n.starts_with(p))) {
                violations.push(format!(
                    "{}: log group {id} ({name:?}) is not under a protected prefix {prefixes:?}",
                    t.file
                ));
            }
        }
    }
    violations
}

/// The central stack tells the member stacks which log groups are its own.
fn central_names_its_log_groups(central: &Template) -> Vec<String> {
    let output = central
        .doc
        .pointer("/Outputs/PipelineLogGroups/Value")
        .and_then(text)
        .unwrap_or_default();
    let prefixes: Vec<&str> = output
        .split(',')
        .filter_map(|p| p.strip_suffix('*'))
        .collect();
    central
        .resources_of_type("AWS::Logs::LogGroup")
        .into_iter()
        .filter_map(|(id, g)| {
            let name = props(g).get("LogGroupName").and_then(text)?;
            let covered = prefixes.iter().any(|p| name.starts_with(p))
                || output.split(',').any(|n| n == name);
            (!covered).then(|| {
                format!(
                    "{}: log group {id} ({name}) is missing from the output PipelineLogGroups ({output:?})",
                    central.file
                )
            })
        })
        .collect()
}

#[test]
fn the_pipelines_own_log_groups_are_never_subscribed() {
    let member = Template::load("member.yaml");
    let central = Template::load("central.yaml");
    let others = [Template::load("member-sources.yaml")];
    assert_kept(pipeline_log_groups_are_protected(&member, &others));
    assert_kept(central_names_its_log_groups(&central));
    assert_broken(
        pipeline_log_groups_are_protected(
            &member.mutated(
                "/Resources/SubscriberFunction/Properties/Environment/Variables/PROTECTED_LOG_GROUPS",
                None,
            ),
            &others,
        ),
        "protects no pipeline log group",
    );
    assert_broken(
        pipeline_log_groups_are_protected(
            &member,
            &[others[0].mutated(
                "/Resources/WafFirehoseLogGroup/Properties/LogGroupName",
                Some(json!("/aws/kinesisfirehose/aws-waf-logs-acl")),
            )],
        ),
        "names the Firehose log group outside the protected prefixes",
    );
    assert_broken(
        central_names_its_log_groups(&central.mutated(
            "/Outputs/PipelineLogGroups/Value",
            Some(json!("/aws/lambda/other")),
        )),
        "hides the loader's log group from the member stacks",
    );
}

// ------------------------------------------------------------------- 2. no silent loss

/// Every function another service invokes asynchronously (CloudWatch Logs, EventBridge) keeps
/// what fails after its retries in an SQS queue of the template (its role may send there),
/// every rule target retries and dead-letters, and every such queue is encrypted, TLS only and
/// alarmed.
fn asynchronous_failures_are_kept(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let mut queues = Vec::new();
    let async_functions: Vec<&str> = t
        .resources_of_type("AWS::Lambda::Permission")
        .into_iter()
        .filter(|(_, p)| {
            matches!(
                props(p).get("Principal").and_then(Value::as_str),
                Some("logs.amazonaws.com" | "events.amazonaws.com")
            )
        })
        .filter_map(|(_, p)| props(p).get("FunctionName").and_then(ref_target))
        .collect();
    for function in async_functions {
        let config = t
            .resources_of_type("AWS::Lambda::EventInvokeConfig")
            .into_iter()
            .find(|(_, c)| props(c).get("FunctionName").and_then(ref_target) == Some(function));
        let Some((id, config)) = config else {
            violations.push(format!(
                "{}: {function} is invoked asynchronously but has no EventInvokeConfig",
                t.file
            ));
            continue;
        };
        let p = props(config);
        if p.get("MaximumRetryAttempts").is_none() || p.get("MaximumEventAgeInSeconds").is_none() {
            violations.push(format!("{}: {id} leaves retries to the defaults", t.file));
        }
        match p
            .pointer("/DestinationConfig/OnFailure/Destination")
            .and_then(get_att)
        {
            Some((queue, "Arn")) if t.resource_type(queue) == Some("AWS::SQS::Queue") => {
                queues.push(queue.to_owned());
                let role = t
                    .resource(function)
                    .map(props)
                    .and_then(|f| f.get("Role"))
                    .and_then(get_att)
                    .map(|(r, _)| r);
                let may_send = role.and_then(|r| t.resource(r)).is_some_and(|r| {
                    let role = Template {
                        file: t.file.clone(),
                        doc: props(r).get("Policies").cloned().unwrap_or(Value::Null),
                    };
                    crate::cfn::policy_statements(&role).iter().any(|(_, s)| {
                        as_list(s.get("Action"))
                            .iter()
                            .any(|a| a.as_str() == Some("sqs:SendMessage"))
                            && as_list(s.get("Resource"))
                                .iter()
                                .any(|r| get_att(r) == Some((queue, "Arn")))
                    })
                });
                if !may_send {
                    violations.push(format!(
                        "{}: the role of {function} may not send to its dead-letter queue {queue}",
                        t.file
                    ));
                }
            }
            _ => violations.push(format!(
                "{}: {id} has no on-failure SQS destination of this template",
                t.file
            )),
        }
    }
    for (rule, r) in t.resources_of_type("AWS::Events::Rule") {
        for target in as_list(props(r).get("Targets")) {
            if target
                .pointer("/RetryPolicy/MaximumRetryAttempts")
                .is_none()
            {
                violations.push(format!(
                    "{}: a target of {rule} has no retry policy",
                    t.file
                ));
            }
            match target.pointer("/DeadLetterConfig/Arn").and_then(get_att) {
                Some((queue, "Arn")) if t.resource_type(queue) == Some("AWS::SQS::Queue") => {
                    if !events_may_send(t, queue) {
                        violations.push(format!(
                            "{}: EventBridge may not send to {queue}, the dead-letter queue of {rule}",
                            t.file
                        ));
                    }
                    queues.push(queue.to_owned())
                }
                _ => violations.push(format!(
                    "{}: a target of {rule} has no dead-letter queue",
                    t.file
                )),
            }
        }
    }
    queues.sort();
    queues.dedup();
    for queue in &queues {
        violations.extend(queue_is_kept_well(t, queue));
    }
    violations
}

/// A queue policy lets EventBridge (for this account's rules only) send to `queue`.
fn events_may_send(t: &Template, queue: &str) -> bool {
    t.resources_of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| {
            as_list(props(p).get("Queues"))
                .iter()
                .any(|q| ref_target(q) == Some(queue))
        })
        .flat_map(|(_, p)| as_list(props(p).pointer("/PolicyDocument/Statement")))
        .any(|s| {
            s.get("Effect") == Some(&json!("Allow"))
                && s.pointer("/Principal/Service") == Some(&json!("events.amazonaws.com"))
                && s.get("Action") == Some(&json!("sqs:SendMessage"))
                && s.pointer("/Condition")
                    .is_some_and(|c| c.to_string().contains("aws:SourceArn"))
        })
}

/// A dead-letter queue is encrypted, refuses plain HTTP and has an alarm on its depth.
fn queue_is_kept_well(t: &Template, queue: &str) -> Vec<String> {
    let mut violations = Vec::new();
    let q = t.resource(queue).map(props).unwrap_or(&Value::Null);
    if q.get("SqsManagedSseEnabled") != Some(&json!(true)) && q.get("KmsMasterKeyId").is_none() {
        violations.push(format!("{}: queue {queue} is not encrypted", t.file));
    }
    let tls_only = t
        .resources_of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| {
            as_list(props(p).get("Queues"))
                .iter()
                .any(|q| ref_target(q) == Some(queue))
        })
        .flat_map(|(_, p)| as_list(props(p).pointer("/PolicyDocument/Statement")))
        .any(|s| {
            s.get("Effect") == Some(&json!("Deny"))
                && s.pointer("/Condition/Bool/aws:SecureTransport") == Some(&json!("false"))
                && get_att(s.get("Resource").unwrap_or(&Value::Null)) == Some((queue, "Arn"))
        });
    if !tls_only {
        violations.push(format!(
            "{}: queue {queue} has no policy denying requests without TLS",
            t.file
        ));
    }
    let alarmed = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .iter()
        .any(|(_, a)| {
            props(a).get("MetricName") == Some(&json!("ApproximateNumberOfMessagesVisible"))
                && props(a).pointer("/Dimensions/0/Value").and_then(get_att)
                    == Some((queue, "QueueName"))
        });
    if !alarmed {
        violations.push(format!(
            "{}: nobody hears of messages in dead-letter queue {queue}",
            t.file
        ));
    }
    violations
}

/// The collector has an error alarm, and every alarm of the member stack reaches the central
/// alert bus: the forwarding rule matches the alarms' name prefix and targets the bus parameter.
fn member_alarms_reach_the_central_team(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let alarms = t.resources_of_type("AWS::CloudWatch::Alarm");
    let collector_errors = alarms.iter().any(|(_, a)| {
        props(a).get("MetricName") == Some(&json!("Errors"))
            && props(a).pointer("/Dimensions/0/Value").and_then(ref_target)
                == Some("CollectorFunction")
    });
    if !collector_errors {
        violations.push(format!("{}: no alarm on collector errors", t.file));
    }
    let Some(rule) = t.resource("AlarmForwardRule").map(props) else {
        return vec![format!("{}: no AlarmForwardRule", t.file)];
    };
    if rule.pointer("/EventPattern/detail-type/0") != Some(&json!("CloudWatch Alarm State Change"))
    {
        violations.push(format!(
            "{}: AlarmForwardRule does not match alarm state changes",
            t.file
        ));
    }
    let prefix = rule
        .pointer("/EventPattern/resources/0/prefix")
        .and_then(text)
        .unwrap_or_default();
    for (id, a) in &alarms {
        let name = props(a).get("AlarmName").and_then(text).unwrap_or_default();
        if !prefix.ends_with(":alarm:${NamePrefix}-") || !name.starts_with("${NamePrefix}-") {
            violations.push(format!(
                "{}: alarm {id} ({name}) is not matched by the forwarding prefix {prefix:?}",
                t.file
            ));
        }
    }
    if rule.pointer("/Targets/0/Arn").and_then(ref_target) != Some("CentralAlertBusArn") {
        violations.push(format!(
            "{}: AlarmForwardRule does not target the central alert bus",
            t.file
        ));
    }
    violations
}

/// The central stack passes alarm events arriving on its bus from the organization to the alert
/// topic.
fn central_bus_feeds_the_alert_topic(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let policy = t.resource("AlertBusPolicy").map(props);
    if policy
        .and_then(|p| p.pointer("/Statement/Condition/StringEquals/aws:PrincipalOrgID"))
        .and_then(ref_target)
        != Some("OrganizationId")
    {
        violations.push(format!(
            "{}: the alert bus does not accept the organization's accounts (and only them)",
            t.file
        ));
    }
    let rule = t.resource("MemberAlarmsToTopicRule").map(props);
    let bus_name = t
        .resource("AlertBus")
        .map(props)
        .and_then(|b| b.get("Name"))
        .and_then(text);
    let on_bus = rule.and_then(|r| r.get("EventBusName")).is_some_and(|n| {
        ref_target(n) == Some("AlertBus") || text(n).is_some() && text(n) == bus_name
    });
    if !on_bus
        || rule
            .and_then(|r| r.pointer("/Targets/0/Arn"))
            .and_then(ref_target)
            != Some("AlertTopic")
    {
        violations.push(format!(
            "{}: no rule on the alert bus sends to the alert topic",
            t.file
        ));
    }
    violations
}

#[test]
fn member_failures_are_dead_lettered_alarmed_and_forwarded() {
    let member = Template::load("member.yaml");
    assert_kept(asynchronous_failures_are_kept(&member));
    assert_kept(member_alarms_reach_the_central_team(&member));
    let central = Template::load("central.yaml");
    assert_kept(asynchronous_failures_are_kept(&central));
    assert_kept(central_bus_feeds_the_alert_topic(&central));
    assert_broken(
        asynchronous_failures_are_kept(&member.mutated("/Resources/CollectorInvokeConfig", None)),
        "drops failed collector invocations",
    );
    assert_broken(
        asynchronous_failures_are_kept(&member.mutated(
            "/Resources/SecurityHubFindingsRule/Properties/Targets/0/DeadLetterConfig",
            None,
        )),
        "drops findings EventBridge could not deliver",
    );
    assert_broken(
        asynchronous_failures_are_kept(&member.mutated(
            "/Resources/CollectorRole/Properties/Policies/0/PolicyDocument/Statement/3",
            None,
        )),
        "lets the collector role not write its dead letters",
    );
    assert_broken(
        asynchronous_failures_are_kept(
            &member.mutated("/Resources/CollectorDeadLetterAlarm", None),
        ),
        "tells nobody about dead letters",
    );
    assert_broken(
        asynchronous_failures_are_kept(&member.mutated(
            "/Resources/CollectorDeadLetterQueuePolicy/Properties/PolicyDocument/Statement/1",
            None,
        )),
        "accepts plain HTTP on the dead-letter queue",
    );
    assert_broken(
        asynchronous_failures_are_kept(&central.mutated(
            "/Resources/AlertsDeadLetterQueuePolicy/Properties/PolicyDocument/Statement/1",
            None,
        )),
        "accepts plain HTTP on the central alerts dead-letter queue",
    );
    assert_broken(
        asynchronous_failures_are_kept(&central.mutated(
            "/Resources/AlertsDeadLetterQueuePolicy/Properties/PolicyDocument/Statement/0",
            None,
        )),
        "lets EventBridge not write its dead letters",
    );
    assert_broken(
        member_alarms_reach_the_central_team(&member.mutated(
            "/Resources/AlarmForwardRule/Properties/Targets/0/Arn",
            Some(json!(
                "arn:aws:events:eu-west-1:111122223333:event-bus/default"
            )),
        )),
        "keeps member alarms in the member account",
    );
    assert_broken(
        member_alarms_reach_the_central_team(
            &member.mutated("/Resources/CollectorErrorsAlarm", None),
        ),
        "has no collector error alarm",
    );
    assert_broken(
        central_bus_feeds_the_alert_topic(&central.mutated(
            "/Resources/AlertBusPolicy/Properties/Statement/Condition",
            None,
        )),
        "lets anyone put events on the alert bus",
    );
}

// ------------------------------------------------------------ 3. only the pipeline writes

/// The roles the bucket policy lets write are exactly the roles the member templates create:
/// every writing role is named under a pattern of the policy, and nobody else may write
/// `AWSLogs/` (a Deny for every principal that is neither such a role nor an AWS service).
fn only_pipeline_roles_write(central: &Template, writers: &[(&Template, &str)]) -> Vec<String> {
    let mut violations = Vec::new();
    let statements: Vec<&Value> = central
        .resource("LogBucketPolicy")
        .map(props)
        .map(|p| as_list(p.pointer("/PolicyDocument/Statement")))
        .unwrap_or_default();
    let deny = statements.iter().find(|s| {
        s.get("Effect") == Some(&json!("Deny"))
            && as_list(s.get("Action"))
                .iter()
                .any(|a| a.as_str() == Some("s3:PutObject"))
            && s.get("Resource").and_then(text) == Some("${LogBucket.Arn}/AWSLogs/*")
    });
    let Some(deny) = deny else {
        return vec![format!(
            "{}: no statement refuses log writes by principals other than the pipeline",
            central.file
        )];
    };
    if deny.pointer("/Condition/Bool/aws:PrincipalIsAWSService") != Some(&json!("false")) {
        violations.push(format!(
            "{}: the refusal must spare AWS services only (aws:PrincipalIsAWSService false)",
            central.file
        ));
    }
    let patterns: Vec<&str> = as_list(deny.pointer("/Condition/ArnNotLike/aws:PrincipalArn"))
        .into_iter()
        .filter_map(text)
        .collect();
    if patterns.is_empty() {
        violations.push(format!(
            "{}: the refusal names no pipeline role",
            central.file
        ));
    }
    for (t, role) in writers {
        let name = t
            .resource(role)
            .map(props)
            .and_then(|p| p.get("RoleName"))
            .and_then(text)
            .unwrap_or_default();
        let arn = format!("arn:${{AWS::Partition}}:iam::*:role/{name}");
        let matched = patterns.iter().any(|p| {
            p.strip_suffix('*')
                .is_some_and(|prefix| !name.is_empty() && arn.starts_with(prefix))
        });
        if !matched {
            violations.push(format!(
                "{}: role {role} ({name:?}) writes logs but the bucket policy would refuse it ({patterns:?})",
                t.file
            ));
        }
    }
    violations
}

#[test]
fn only_the_pipeline_writes_logs() {
    let central = Template::load("central.yaml");
    let member = Template::load("member.yaml");
    let sources = Template::load("member-sources.yaml");
    let writers = [(&member, "CollectorRole"), (&sources, "WafFirehoseRole")];
    assert_kept(only_pipeline_roles_write(&central, &writers));
    let statement = "/Resources/LogBucketPolicy/Properties/PolicyDocument/Statement/4";
    assert_eq!(
        central
            .doc
            .pointer(&format!("{statement}/Sid"))
            .and_then(Value::as_str),
        Some("DenyLogWritesByOthers")
    );
    assert_broken(
        only_pipeline_roles_write(&central.mutated(statement, None), &writers),
        "lets anyone in an account write logs",
    );
    assert_broken(
        only_pipeline_roles_write(
            &central.mutated(&format!("{statement}/Condition/Bool"), None),
            &writers,
        ),
        "refuses CloudTrail and log delivery too",
    );
    let renamed = member.mutated(
        "/Resources/CollectorRole/Properties/RoleName",
        Some(json!({"Fn::Sub": "collector-${AWS::Region}"})),
    );
    assert_broken(
        only_pipeline_roles_write(&central, &[(&renamed, "CollectorRole")]),
        "names the collector role outside the allowed pattern",
    );
}

// ------------------------------------------------------------- 4. tamper-proof storage

/// The log bucket can be locked (governance or compliance, days from parameters), keeps old
/// versions as long as current ones by default, and logs every access to a separate bucket
/// that only S3 log delivery for this bucket may write.
fn storage_is_tamper_proof(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let bucket = t.resource("LogBucket").map(props).unwrap_or(&Value::Null);
    let lock = bucket.pointer("/ObjectLockConfiguration/Fn::If");
    let retention = lock.and_then(|l| l.pointer("/1/Rule/DefaultRetention"));
    if lock.and_then(|l| l.get(0)) != Some(&json!("HasObjectLock"))
        || retention.and_then(|r| r.get("Mode")).and_then(ref_target) != Some("ObjectLockMode")
        || retention.and_then(|r| r.get("Days")).and_then(ref_target)
            != Some("ObjectLockRetentionDays")
        || bucket.pointer("/ObjectLockEnabled/Fn::If/0") != Some(&json!("HasObjectLock"))
    {
        violations.push(format!(
            "{}: LogBucket has no Object Lock retention chosen by ObjectLockMode and ObjectLockRetentionDays",
            t.file
        ));
    }
    let modes = t.doc.pointer("/Parameters/ObjectLockMode/AllowedValues");
    if modes != Some(&json!(["NONE", "GOVERNANCE", "COMPLIANCE"])) {
        violations.push(format!(
            "{}: ObjectLockMode must offer NONE, GOVERNANCE and COMPLIANCE",
            t.file
        ));
    }
    let noncurrent = bucket.pointer(
        "/LifecycleConfiguration/Rules/0/NoncurrentVersionExpiration/NoncurrentDays/Fn::If",
    );
    let default_zero = t
        .doc
        .pointer("/Parameters/NoncurrentVersionExpirationDays/Default")
        == Some(&json!(0));
    if !default_zero
        || noncurrent.and_then(|n| n.get(1)).and_then(ref_target) != Some("ExpirationDays")
    {
        violations.push(format!(
            "{}: by default old versions must be kept as long as current ones (ExpirationDays)",
            t.file
        ));
    }
    let target = bucket
        .pointer("/LoggingConfiguration/DestinationBucketName")
        .and_then(ref_target);
    match target {
        Some(target) if target != "LogBucket" && access_log_targets(t).contains(&target) => {
            let delivery_only = t
                .resources_of_type("AWS::S3::BucketPolicy")
                .into_iter()
                .filter(|(_, p)| props(p).get("Bucket").and_then(ref_target) == Some(target))
                .flat_map(|(_, p)| as_list(props(p).pointer("/PolicyDocument/Statement")))
                .filter(|s| s.get("Effect") == Some(&json!("Allow")))
                .all(|s| {
                    s.pointer("/Principal/Service") == Some(&json!("logging.s3.amazonaws.com"))
                        && s.pointer("/Condition/ArnLike/aws:SourceArn").is_some()
                        && s.pointer("/Condition/StringEquals/aws:SourceAccount")
                            .is_some()
                });
            if !delivery_only {
                violations.push(format!(
                    "{}: access log bucket {target} lets more than S3 log delivery for this account's bucket write",
                    t.file
                ));
            }
        }
        _ => violations.push(format!(
            "{}: LogBucket's server access logs do not go to a bucket of their own",
            t.file
        )),
    }
    violations
}

#[test]
fn log_storage_can_be_locked_and_every_access_is_logged() {
    let t = Template::load("central.yaml");
    assert_kept(storage_is_tamper_proof(&t));
    assert_broken(
        storage_is_tamper_proof(&t.mutated(
            "/Resources/LogBucket/Properties/ObjectLockConfiguration",
            None,
        )),
        "cannot lock log objects",
    );
    assert_broken(
        storage_is_tamper_proof(&t.mutated(
            "/Parameters/NoncurrentVersionExpirationDays/Default",
            Some(json!(30)),
        )),
        "drops overwritten versions after 30 days by default",
    );
    assert_broken(
        storage_is_tamper_proof(
            &t.mutated("/Resources/LogBucket/Properties/LoggingConfiguration", None),
        ),
        "does not log access to the bucket",
    );
    assert_broken(
        storage_is_tamper_proof(&t.mutated(
            "/Resources/AccessLogBucketPolicy/Properties/PolicyDocument/Statement/1/Condition",
            None,
        )),
        "lets any bucket's log delivery write the access logs",
    );
}

// ------------------------------------------------------------- 5. no secret in plain text

/// No function's environment carries a secret: no dynamic reference resolving a secret at
/// deployment, no variable named like a password or token unless it holds an ARN.
fn no_secret_in_environment(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    for (id, f) in t.resources_of_type("AWS::Lambda::Function") {
        let Some(vars) = props(f)
            .pointer("/Environment/Variables")
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, value) in vars {
            let rendered = value.to_string();
            if rendered.contains("{{resolve:secretsmanager")
                || rendered.contains("{{resolve:ssm-secure")
            {
                violations.push(format!(
                    "{}: {id} resolves a secret into {name} at deployment (plain text in the function configuration)",
                    t.file
                ));
            }
            let upper = name.to_ascii_uppercase();
            let secret_like = ["PASSWORD", "SECRET", "TOKEN", "API_KEY"]
                .iter()
                .any(|w| upper.contains(w));
            if secret_like && !upper.ends_with("_ARN") {
                violations.push(format!(
                    "{}: {id} sets {name}: pass an ARN and read the secret at run time",
                    t.file
                ));
            }
        }
    }
    violations
}

#[test]
fn no_secret_sits_in_a_function_environment() {
    for file in TEMPLATES {
        assert_kept(no_secret_in_environment(&Template::load(file)));
    }
    let t = Template::load("central.yaml");
    assert_eq!(
        t.doc
            .pointer("/Resources/LoaderFunction/Properties/Environment/Variables/OPENSEARCH_SECRET_ARN/Fn::If/1")
            .and_then(ref_target),
        Some("OpenSearchBasicAuthSecret")
    );
    assert_broken(
        no_secret_in_environment(&t.mutated(
            "/Resources/LoaderFunction/Properties/Environment/Variables/OPENSEARCH_SECRET_ARN",
            Some(json!({"Fn::Sub": "{{resolve:secretsmanager:${OpenSearchBasicAuthSecret}:SecretString:password}}"})),
        )),
        "resolves the password into the environment",
    );
}

// ------------------------------------------------------- 8. Firehose multipart uploads

/// Firehose may decrypt with the central key only through S3 and only for the central bucket
/// (S3 needs kms:Decrypt to complete a multipart upload under SSE-KMS), and the key policy
/// grants it to the delivery roles alone.
fn firehose_decrypt_is_narrow(sources: &Template, central: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let role = Template {
        file: sources.file.clone(),
        doc: sources
            .resource("WafFirehoseRole")
            .map(props)
            .and_then(|p| p.get("Policies"))
            .cloned()
            .unwrap_or(Value::Null),
    };
    let decrypts: Vec<&Value> = crate::cfn::policy_statements(&role)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| {
            as_list(s.get("Action"))
                .iter()
                .any(|a| a.as_str() == Some("kms:Decrypt"))
        })
        .collect();
    if decrypts.is_empty() {
        violations.push(format!(
            "{}: Firehose cannot complete multipart uploads (no kms:Decrypt)",
            sources.file
        ));
    }
    for s in decrypts {
        if s.pointer("/Condition/StringEquals/kms:ViaService")
            .is_none()
            || s.pointer("/Condition/StringEquals/kms:EncryptionContext:aws:s3:arn")
                .is_none()
        {
            violations.push(format!(
                "{}: Firehose may decrypt outside S3 or for other buckets",
                sources.file
            ));
        }
    }
    let key_grants = central
        .resource("LogKey")
        .map(props)
        .map(|p| as_list(p.pointer("/KeyPolicy/Statement")))
        .unwrap_or_default()
        .into_iter()
        .filter(|s| {
            as_list(s.get("Action"))
                .iter()
                .any(|a| a.as_str() == Some("kms:Decrypt"))
                && s.pointer("/Principal/AWS") == Some(&json!("*"))
        })
        .all(|s| {
            s.pointer("/Condition/ArnLike/aws:PrincipalArn")
                .and_then(text)
                .is_some_and(|p| p.contains(":role/${NamePrefix}-waf-firehose-"))
                && s.pointer("/Condition/StringEquals/kms:ViaService")
                    .is_some()
        });
    if !key_grants {
        violations.push(format!(
            "{}: the key lets organization principals other than the delivery roles decrypt",
            central.file
        ));
    }
    violations
}

#[test]
fn firehose_may_decrypt_only_to_finish_uploads_to_the_bucket() {
    let sources = Template::load("member-sources.yaml");
    let central = Template::load("central.yaml");
    assert_kept(firehose_decrypt_is_narrow(&sources, &central));
    assert_broken(
        firehose_decrypt_is_narrow(
            &sources.mutated(
                "/Resources/WafFirehoseRole/Properties/Policies/0/PolicyDocument/Statement/3/Condition",
                None,
            ),
            &central,
        ),
        "lets Firehose decrypt anything",
    );
    assert_broken(
        firehose_decrypt_is_narrow(
            &sources,
            &central.mutated(
                "/Resources/LogKey/Properties/KeyPolicy/Statement/2/Condition/ArnLike",
                None,
            ),
        ),
        "lets every principal of the organization decrypt logs",
    );
}

/// Every queue of every template refuses requests made without TLS.
fn queues_are_tls_only(t: &Template) -> Vec<String> {
    t.resources_of_type("AWS::SQS::Queue")
        .into_iter()
        .flat_map(|(queue, _)| queue_is_kept_well(t, queue))
        .filter(|v| v.contains("without TLS") || v.contains("not encrypted"))
        .collect()
}

#[test]
fn every_queue_is_encrypted_and_tls_only() {
    for file in TEMPLATES {
        assert_kept(queues_are_tls_only(&Template::load(file)));
    }
    assert_broken(
        queues_are_tls_only(&Template::load("central.yaml").mutated(
            "/Resources/LogDeadLetterQueuePolicy/Properties/PolicyDocument/Statement/0",
            None,
        )),
        "accepts plain HTTP on the objects' dead-letter queue",
    );
}
