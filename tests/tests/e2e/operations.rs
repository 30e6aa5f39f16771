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

/// Snapshots: the setup custom resource registers the bucket with a role the domain can
/// assume, the loader may pass that role to OpenSearch Service only, and the role reaches only
/// the snapshot bucket and the key.
fn snapshots_are_registered_by_setup(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let setup = t
        .resource("OpenSearchSetup")
        .map(props)
        .unwrap_or(&Value::Null);
    let if_snapshots = |v: Option<&Value>, target: Value| {
        v == Some(&json!({"Fn::If": ["TakeSnapshots", target, ""]}))
    };
    if !if_snapshots(
        setup.get("SnapshotBucket"),
        json!({"Ref": "SnapshotBucket"}),
    ) || !if_snapshots(
        setup.get("SnapshotRoleArn"),
        json!({"Fn::GetAtt": ["SnapshotRole", "Arn"]}),
    ) {
        violations.push(format!(
            "{}: OpenSearchSetup does not name the snapshot bucket and role",
            t.file
        ));
    }
    if setup.get("SnapshotRetentionDays").and_then(ref_target) != Some("SnapshotRetentionDays") {
        violations.push(format!("{}: snapshot retention is not a parameter", t.file));
    }
    let trust = t
        .resource("SnapshotRole")
        .map(props)
        .and_then(|r| r.pointer("/AssumeRolePolicyDocument/Statement/0"));
    if trust.and_then(|s| s.pointer("/Principal/Service")) != Some(&json!("es.amazonaws.com"))
        || trust
            .and_then(|s| s.pointer("/Condition/StringEquals/aws:SourceAccount"))
            .is_none()
    {
        violations.push(format!(
            "{}: SnapshotRole is not trusted by OpenSearch Service of this account",
            t.file
        ));
    }
    let role_policy = t
        .resource("SnapshotRole")
        .map(props)
        .and_then(|r| r.pointer("/Policies/0/PolicyDocument/Statement"))
        .map(|s| s.to_string())
        .unwrap_or_default();
    if role_policy.contains("\"*\"") || !role_policy.contains("SnapshotBucket") {
        violations.push(format!(
            "{}: SnapshotRole reaches more than the snapshot bucket: {role_policy}",
            t.file
        ));
    }
    let passes = t
        .resource("LoaderRole")
        .map(|r| r.to_string())
        .unwrap_or_default();
    let pass_ok = passes.contains("\"iam:PassRole\"")
        && passes.contains("\"iam:PassedToService\":\"es.amazonaws.com\"");
    if !pass_ok {
        violations.push(format!(
            "{}: the loader may not pass the snapshot role to OpenSearch Service (alone)",
            t.file
        ));
    }
    violations
}

#[test]
fn snapshots_are_taken_into_a_bucket_of_their_own() {
    let central = Template::load("central.yaml");
    assert_kept(snapshots_are_registered_by_setup(&central));
    assert_broken(
        snapshots_are_registered_by_setup(
            &central.mutated("/Resources/OpenSearchSetup/Properties/SnapshotBucket", None),
        ),
        "never registers the snapshot repository",
    );
    assert_broken(
        snapshots_are_registered_by_setup(&central.mutated(
            "/Resources/SnapshotRole/Properties/Policies/0/PolicyDocument/Statement/1/Resource",
            Some(json!("*")),
        )),
        "lets the snapshot role write any bucket",
    );
    assert_broken(
        snapshots_are_registered_by_setup(&central.mutated(
            "/Resources/SnapshotRole/Properties/AssumeRolePolicyDocument/Statement/0/Condition",
            None,
        )),
        "lets any account's OpenSearch Service assume the snapshot role",
    );
}

/// In a VPC: the loader runs in the given subnets behind its own group, a created domain gets
/// the first two subnets and admits HTTPS from the loader's group alone, and the endpoints the
/// loader calls without a NAT gateway (S3 gateway, STS, SNS, Secrets Manager) answer on private
/// DNS to the loader's group. Without a VpcId none of it exists.
fn private_networking(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let function = t
        .resource("LoaderFunction")
        .map(props)
        .unwrap_or(&Value::Null);
    let expected_vpc = json!({"Fn::If": ["UseVpc",
        {"SubnetIds": {"Ref": "SubnetIds"}, "SecurityGroupIds": [{"Ref": "LoaderSecurityGroup"}]},
        {"Ref": "AWS::NoValue"}]});
    if function.get("VpcConfig") != Some(&expected_vpc) {
        violations.push(format!(
            "{}: the loader is not placed in SubnetIds behind LoaderSecurityGroup",
            t.file
        ));
    }
    let role = t.resource("LoaderRole").map(props).unwrap_or(&Value::Null);
    let statements = role
        .pointer("/Policies/0/PolicyDocument/Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let interfaces = statements.iter().any(|s| {
        s.pointer("/Fn::If/0") == Some(&json!("UseVpc"))
            && s.pointer("/Fn::If/1/Action")
                .is_some_and(|a| a.to_string().contains("ec2:CreateNetworkInterface"))
    });
    if !interfaces {
        violations.push(format!(
            "{}: the loader role cannot create network interfaces in the VPC (or can outside one)",
            t.file
        ));
    }
    let domain = t
        .resource("OpenSearchDomain")
        .map(props)
        .unwrap_or(&Value::Null);
    let vpc_options = domain.pointer("/VPCOptions/Fn::If/1");
    if domain.pointer("/VPCOptions/Fn::If/0") != Some(&json!("VpcDomain"))
        || vpc_options.and_then(|o| o.pointer("/SubnetIds/1/Fn::Select/0")) != Some(&json!(1))
    {
        violations.push(format!(
            "{}: a created domain is not placed in the VPC",
            t.file
        ));
    }
    for (group, from) in [
        ("DomainSecurityGroup", "LoaderSecurityGroup"),
        ("EndpointSecurityGroup", "LoaderSecurityGroup"),
    ] {
        let ingress = t
            .resource(group)
            .map(props)
            .and_then(|g| g.get("SecurityGroupIngress"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let only_loader_https = !ingress.is_empty()
            && ingress.iter().all(|rule| {
                rule.get("FromPort") == Some(&json!(443))
                    && rule.get("ToPort") == Some(&json!(443))
                    && rule.get("SourceSecurityGroupId").and_then(ref_target) == Some(from)
                    && rule.get("CidrIp").is_none()
            });
        if !only_loader_https {
            violations.push(format!(
                "{}: {group} admits more than HTTPS from {from}: {ingress:?}",
                t.file
            ));
        }
    }
    for (id, service, kind) in [
        ("S3Endpoint", "s3", "Gateway"),
        ("StsEndpoint", "sts", "Interface"),
        ("SnsEndpoint", "sns", "Interface"),
        ("SecretsManagerEndpoint", "secretsmanager", "Interface"),
    ] {
        let Some(endpoint) = t.resource(id) else {
            violations.push(format!("{}: no {service} endpoint", t.file));
            continue;
        };
        let p = props(endpoint);
        let name_ok = p
            .get("ServiceName")
            .and_then(crate::cfn::sub_text)
            .is_some_and(|n| n.ends_with(&format!(".{service}")));
        let private = kind == "Gateway" || p.get("PrivateDnsEnabled") == Some(&json!(true));
        if endpoint.get("Condition") != Some(&json!("MakeVpcEndpoints"))
            || p.get("VpcEndpointType") != Some(&json!(kind))
            || !name_ok
            || !private
        {
            violations.push(format!(
                "{}: {id} is not a {kind} endpoint of {service} made with the VPC",
                t.file
            ));
        }
    }
    violations
}

#[test]
fn the_loader_and_a_created_domain_can_live_in_a_vpc() {
    let central = Template::load("central.yaml");
    assert_kept(private_networking(&central));
    assert_broken(
        private_networking(&central.mutated(
            "/Resources/DomainSecurityGroup/Properties/SecurityGroupIngress/0",
            Some(
                json!({"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}),
            ),
        )),
        "opens the domain to the world",
    );
    assert_broken(
        private_networking(&central.mutated("/Resources/StsEndpoint", None)),
        "leaves the loader without STS in a VPC without NAT",
    );
    assert_broken(
        private_networking(
            &central.mutated("/Resources/LoaderFunction/Properties/VpcConfig", None),
        ),
        "keeps the loader outside the VPC",
    );
    assert_broken(
        private_networking(&central.mutated(
            "/Resources/SnsEndpoint/Properties/PrivateDnsEnabled",
            Some(json!(false)),
        )),
        "makes the loader's SNS calls leave the VPC",
    );
}

/// A created domain with fine-grained access control: the master user is the admin role, the
/// role of a setup function of its own (the loader may not assume it) and of Cognito admins;
/// the setup runs as it and maps the loader's role to the writer role; Cognito sign-in is admin-created users with MFA and no
/// unauthenticated identities; SAML names its admin group, and the one unsigned statement of
/// the access policy reaches Dashboards only, and only with SAML.
fn people_sign_in(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let mut fail = |what: &str| violations.push(format!("{}: {what}", t.file));
    let domain = t
        .resource("OpenSearchDomain")
        .map(props)
        .unwrap_or(&Value::Null);
    let fgac = domain.pointer("/AdvancedSecurityOptions/Fn::If");
    if fgac.and_then(|f| f.get(0)) != Some(&json!("FgacDomain"))
        || fgac.and_then(|f| f.pointer("/1/Enabled")) != Some(&json!(true))
        || fgac.and_then(|f| f.pointer("/1/InternalUserDatabaseEnabled")) != Some(&json!(false))
        || fgac
            .and_then(|f| f.pointer("/1/MasterUserOptions/MasterUserARN"))
            .and_then(get_att)
            != Some(("OpenSearchAdminRole", "Arn"))
    {
        fail("the domain has no fine-grained access control with the admin role as master user");
    }
    let saml = fgac.and_then(|f| f.pointer("/1/SAMLOptions/Fn::If"));
    if saml.and_then(|f| f.get(0)) != Some(&json!("UseSaml"))
        || saml
            .and_then(|f| f.pointer("/1/MasterBackendRole"))
            .and_then(ref_target)
            != Some("SamlAdminGroup")
    {
        fail("SAML sign-in does not name the admin group");
    }
    let setup = t
        .resource("OpenSearchSetup")
        .map(props)
        .unwrap_or(&Value::Null);
    let token = json!({"Fn::If": ["FgacDomain",
        {"Fn::GetAtt": ["SetupFunction", "Arn"]}, {"Fn::GetAtt": ["LoaderFunction", "Arn"]}]});
    let setup_role = t
        .resource("SetupFunction")
        .map(props)
        .and_then(|f| f.get("Role"))
        .and_then(get_att);
    if setup.get("ServiceToken") != Some(&token)
        || setup_role != Some(("OpenSearchAdminRole", "Arn"))
        || setup.get("WriterBackendRoles")
            != Some(&json!({"Fn::If": ["FgacDomain", {"Fn::GetAtt": ["LoaderRole", "Arn"]}, ""]}))
    {
        fail("the setup does not run as the master user and map the loader to the writer role");
    }
    // The loader itself can never become the master user.
    let loader_role = t
        .resource("LoaderRole")
        .map(|r| r.to_string())
        .unwrap_or_default();
    if loader_role.contains("opensearch-admin") {
        fail("the loader may assume the master user's role");
    }
    let trust = t
        .resource("OpenSearchAdminRole")
        .map(props)
        .and_then(|r| r.pointer("/AssumeRolePolicyDocument/Statement"))
        .cloned()
        .unwrap_or(Value::Null);
    let loader_trusted = trust.pointer("/0/Principal/Service")
        == Some(&json!("lambda.amazonaws.com"))
        && trust
            .pointer("/0/Condition/StringEquals/aws:SourceAccount")
            .is_some();
    let cognito_trust = trust.pointer("/1/Fn::If/1");
    let cognito_ok = trust.pointer("/1/Fn::If/0") == Some(&json!("UseCognito"))
        && cognito_trust
            .and_then(|c| c.pointer("/Condition/StringEquals/cognito-identity.amazonaws.com:aud"))
            .and_then(ref_target)
            == Some("DashboardsIdentityPool")
        && trust.as_array().map(Vec::len) == Some(2);
    if !loader_trusted || !cognito_ok {
        fail(
            "the admin role is trusted by more than its setup function and Cognito admins of this pool",
        );
    }
    let pool = t
        .resource("DashboardsUserPool")
        .map(props)
        .unwrap_or(&Value::Null);
    if pool.pointer("/AdminCreateUserConfig/AllowAdminCreateUserOnly") != Some(&json!(true))
        || pool.get("MfaConfiguration") != Some(&json!("ON"))
    {
        fail("anyone may sign up to the Dashboards user pool, or sign in without MFA");
    }
    if t.resource("DashboardsIdentityPool")
        .map(props)
        .and_then(|p| p.get("AllowUnauthenticatedIdentities"))
        != Some(&json!(false))
    {
        fail("the identity pool admits unauthenticated identities");
    }
    let statements = domain
        .pointer("/AccessPolicies/Statement")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for statement in &statements {
        let text = statement.to_string();
        if !text.contains("\"AWS\":\"*\"") {
            continue;
        }
        let only_saml_dashboards = statement.pointer("/Fn::If/0") == Some(&json!("UseSaml"))
            && statement
                .pointer("/Fn::If/1/Resource")
                .and_then(crate::cfn::sub_text)
                .is_some_and(|r| r.ends_with("/_dashboards*"));
        if !only_saml_dashboards {
            fail("the domain lets unsigned requests reach more than Dashboards with SAML");
        }
    }
    violations
}

#[test]
fn people_sign_in_as_admins_or_read_only_analysts() {
    let central = Template::load("central.yaml");
    assert_kept(people_sign_in(&central));
    assert_broken(
        people_sign_in(&central.mutated(
            "/Resources/DashboardsUserPool/Properties/AdminCreateUserConfig/AllowAdminCreateUserOnly",
            Some(json!(false)),
        )),
        "lets anyone sign up",
    );
    assert_broken(
        people_sign_in(&central.mutated(
            "/Resources/OpenSearchDomain/Properties/AccessPolicies/Statement/2/Fn::If/1/Resource",
            Some(json!({"Fn::Sub": "arn:${AWS::Partition}:es:${AWS::Region}:${AWS::AccountId}:domain/${NamePrefix}/*"})),
        )),
        "lets unsigned requests reach the whole domain",
    );
    assert_broken(
        people_sign_in(&central.mutated(
            "/Resources/OpenSearchSetup/Properties/ServiceToken",
            Some(json!({"Fn::GetAtt": ["LoaderFunction", "Arn"]})),
        )),
        "runs the setup as the loader itself",
    );
    assert_broken(
        people_sign_in(&central.mutated(
            "/Resources/OpenSearchAdminRole/Properties/AssumeRolePolicyDocument/Statement/1/Fn::If/1/Condition",
            None,
        )),
        "lets any Cognito identity become admin",
    );
}

/// The member stack offers the account-level mode: the subscriber gets the mode and may manage
/// the account policy, the backfill custom resource runs again when the mode changes (that is
/// the switch), and include patterns are refused with the account mode.
fn account_mode_is_offered(t: &Template) -> Vec<String> {
    let mut violations = Vec::new();
    let env = t
        .resource("SubscriberFunction")
        .map(props)
        .and_then(|f| f.pointer("/Environment/Variables/SUBSCRIPTION_MODE"))
        .and_then(ref_target);
    if env != Some("SubscriptionMode") {
        violations.push(format!("{}: the subscriber is not told the mode", t.file));
    }
    let backfill = t
        .resource("SubscriptionBackfill")
        .map(props)
        .and_then(|b| b.get("SubscriptionMode"))
        .and_then(ref_target);
    if backfill != Some("SubscriptionMode") {
        violations.push(format!(
            "{}: changing the mode does not run the switch (custom resource Update)",
            t.file
        ));
    }
    let role = t
        .resource("SubscriberRole")
        .map(|r| r.to_string())
        .unwrap_or_default();
    for action in [
        "logs:PutAccountPolicy",
        "logs:DescribeAccountPolicies",
        "logs:DeleteAccountPolicy",
    ] {
        if !role.contains(action) {
            violations.push(format!("{}: the subscriber may not call {action}", t.file));
        }
    }
    let rule = t.doc.pointer("/Rules/AccountModeOnlyExcludes");
    let refuses_include = rule
        .and_then(|r| r.pointer("/Assertions/0/Assert/Fn::Equals/0"))
        .and_then(ref_target)
        == Some("IncludePatterns");
    if !refuses_include {
        violations.push(format!(
            "{}: IncludePatterns is accepted with the account mode",
            t.file
        ));
    }
    violations
}

#[test]
fn the_member_stack_offers_the_account_level_subscription_policy() {
    let member = Template::load("member.yaml");
    assert_kept(account_mode_is_offered(&member));
    assert_broken(
        account_mode_is_offered(&member.mutated(
            "/Resources/SubscriptionBackfill/Properties/SubscriptionMode",
            None,
        )),
        "switches modes without running the switch",
    );
    assert_broken(
        account_mode_is_offered(&member.mutated("/Rules/AccountModeOnlyExcludes", None)),
        "accepts include patterns it cannot apply",
    );
}
