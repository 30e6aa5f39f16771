//! Running the pipeline for years: the central team hears of every failure that loses or
//! delays logs. Each check returns its violations and is also run on a copy of the template
//! broken in memory, to prove it can fail.

use crate::cfn::{Template, get_att, ref_target};
use crate::templates::{assert_broken, assert_kept, props};
use loader::sink::stats::{QUARANTINED_LOG_COUNT, WRITE_REJECTED_COUNT};
use serde_json::{Value, json};
use shared::metrics::DEFAULT_NAMESPACE;

/// What an alarm must watch: a metric, and the dimension that picks the pipeline's own series.
struct Watched {
    why: &'static str,
    namespace: &'static str,
    metric: &'static str,
    /// (name, value) of a dimension the alarm must carry; a value naming a resource of the
    /// template matches a `Ref` or `GetAtt` of it.
    dimension: Option<(&'static str, &'static str)>,
}

const fn watched(
    why: &'static str,
    namespace: &'static str,
    metric: &'static str,
    dimension: Option<(&'static str, &'static str)>,
) -> Watched {
    Watched {
        why,
        namespace,
        metric,
        dimension,
    }
}

/// The dimension value as the alarm gives it: a literal, or the logical id it refers to.
fn dimension_value<'a>(alarm: &'a Value, name: &str) -> Option<&'a str> {
    let dims = props(alarm).get("Dimensions")?.as_array()?;
    let value = dims
        .iter()
        .find(|d| d.get("Name") == Some(&json!(name)))?
        .get("Value")?;
    value
        .as_str()
        .or_else(|| ref_target(value))
        .or_else(|| get_att(value).map(|(id, _)| id))
}

/// Every watched metric has an alarm; with `topic`, the alarm notifies it.
fn alarms_watch(t: &Template, wanted: &[Watched], topic: Option<&str>) -> Vec<String> {
    let alarms = t.resources_of_type("AWS::CloudWatch::Alarm");
    let mut violations = Vec::new();
    for w in wanted {
        let found = alarms.iter().find(|(_, a)| {
            props(a).get("Namespace") == Some(&json!(w.namespace))
                && props(a).get("MetricName") == Some(&json!(w.metric))
                && w.dimension
                    .is_none_or(|(name, value)| dimension_value(a, name) == Some(value))
        });
        let Some((id, alarm)) = found else {
            violations.push(format!(
                "{}: no alarm on {} {} ({})",
                t.file, w.namespace, w.metric, w.why
            ));
            continue;
        };
        if let Some(topic) = topic {
            let notifies = props(alarm)
                .get("AlarmActions")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|v| ref_target(v) == Some(topic)));
            if !notifies {
                violations.push(format!("{}: alarm {id} does not notify {topic}", t.file));
            }
        }
    }
    violations
}

/// The domain alarms name the domain the stack creates or was given, in this account, and
/// exist only when there is such a domain (no alarm stuck on a metric that never comes).
fn domain_alarms_name_the_domain(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let domain_alarms: Vec<_> = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| props(a).get("Namespace") == Some(&json!("AWS/ES")))
        .collect();
    let watch = t.doc.pointer("/Conditions/WatchDomain");
    let expected_watch =
        json!({"Fn::Or": [{"Condition": "CreateDomain"}, {"Condition": "HasDomainName"}]});
    if watch != Some(&expected_watch) {
        violations.push(format!(
            "{}: WatchDomain is not 'a domain is created or named': {watch:?}",
            t.file
        ));
    }
    let domain =
        json!({"Fn::If": ["CreateDomain", {"Ref": "NamePrefix"}, {"Ref": "OpenSearchDomainName"}]});
    for (id, alarm) in domain_alarms {
        if alarm.get("Condition") != Some(&json!("WatchDomain")) {
            violations.push(format!("{}: {id} is there without a domain", t.file));
        }
        let dims = props(alarm).get("Dimensions");
        let expected = json!([
            {"Name": "DomainName", "Value": domain},
            {"Name": "ClientId", "Value": {"Ref": "AWS::AccountId"}},
        ]);
        if dims != Some(&expected) {
            violations.push(format!(
                "{}: {id} does not name the domain and account: {dims:?}",
                t.file
            ));
        }
    }
    violations
}

fn central_watched() -> Vec<Watched> {
    vec![
        watched("a primary shard lost", "AWS/ES", "ClusterStatus.red", None),
        watched("a replica lost", "AWS/ES", "ClusterStatus.yellow", None),
        watched("storage running out", "AWS/ES", "FreeStorageSpace", None),
        watched("JVM memory pressure", "AWS/ES", "JVMMemoryPressure", None),
        watched(
            "writes blocked",
            "AWS/ES",
            "ClusterIndexWritesBlocked",
            None,
        ),
        watched(
            "write rejections (429)",
            DEFAULT_NAMESPACE,
            WRITE_REJECTED_COUNT,
            Some(("Function", "loader")),
        ),
        watched(
            "documents quarantined",
            DEFAULT_NAMESPACE,
            QUARANTINED_LOG_COUNT,
            Some(("Function", "loader")),
        ),
        watched(
            "loader errors",
            "AWS/Lambda",
            "Errors",
            Some(("FunctionName", "LoaderFunction")),
        ),
        watched(
            "loader throttles",
            "AWS/Lambda",
            "Throttles",
            Some(("FunctionName", "LoaderFunction")),
        ),
        watched(
            "dead-letter depth",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            Some(("QueueName", "LogDeadLetterQueue")),
        ),
        watched(
            "dead-letter age",
            "AWS/SQS",
            "ApproximateAgeOfOldestMessage",
            Some(("QueueName", "LogDeadLetterQueue")),
        ),
    ]
}

/// Names the subscriber's EMF metrics carry (subscriber/src/reconcile.rs `Summary::emit`,
/// dimension `Component=subscriber`).
fn member_watched() -> Vec<Watched> {
    vec![
        watched(
            "log groups left unsubscribed by two other filters",
            DEFAULT_NAMESPACE,
            "SubscriptionConflicts",
            Some(("Component", "subscriber")),
        ),
        watched(
            "log groups the subscriber failed on",
            DEFAULT_NAMESPACE,
            "SubscriptionFailures",
            Some(("Component", "subscriber")),
        ),
        watched(
            "subscriber errors",
            "AWS/Lambda",
            "Errors",
            Some(("FunctionName", "SubscriberFunction")),
        ),
    ]
}

#[test]
fn health_alarms_reach_the_alert_topic() {
    let central = Template::load("central.yaml");
    assert_kept(alarms_watch(
        &central,
        &central_watched(),
        Some("AlertTopic"),
    ));
    assert_kept(domain_alarms_name_the_domain(&central));
    // Member alarms have no actions: every alarm of the member stack is forwarded to the central
    // bus (hardening.rs checks the forwarding rule covers each alarm's name).
    let member = Template::load("member.yaml");
    assert_kept(alarms_watch(&member, &member_watched(), None));

    assert_broken(
        alarms_watch(
            &central.mutated("/Resources/DomainJvmPressureAlarm", None),
            &central_watched(),
            Some("AlertTopic"),
        ),
        "has no JVM memory pressure alarm",
    );
    assert_broken(
        alarms_watch(
            &central.mutated(
                "/Resources/WriteRejectedAlarm/Properties/Dimensions/0/Value",
                Some(json!("collector")),
            ),
            &central_watched(),
            Some("AlertTopic"),
        ),
        "watches write rejections of a series the loader does not write",
    );
    assert_broken(
        alarms_watch(
            &central.mutated(
                "/Resources/QuarantinedDocumentsAlarm/Properties/AlarmActions",
                Some(json!([])),
            ),
            &central_watched(),
            Some("AlertTopic"),
        ),
        "tells nobody of quarantined documents",
    );
    assert_broken(
        domain_alarms_name_the_domain(
            &central.mutated("/Resources/DomainRedAlarm/Condition", None),
        ),
        "alarms on a domain that may not exist",
    );
    assert_broken(
        alarms_watch(
            &member.mutated("/Resources/SubscriptionConflictsAlarm", None),
            &member_watched(),
            None,
        ),
        "does not alarm on subscription conflicts",
    );
}
