//! Deploys the templates into emulated accounts (moto): the central stack in the log archive
//! account, then `member.yaml` as a stack set with instances in three member accounts and two
//! regions, and checks that every account ends with the collector, the subscriber and the rules
//! in each region, wired as the templates promise. An account added later gets the same, and
//! finally the instances are removed again.
//!
//! moto does not implement SERVICE_MANAGED auto-deployment, so the stack set is SELF_MANAGED
//! with the administration and execution roles AWS requires for that model; the template is the
//! same one the SERVICE_MANAGED stack set deploys.

use crate::cfn::{Template, template_text};
use aws_sdk_cloudformation::types::{
    Capability, Parameter, PermissionModels, StackSetOperationStatus, StackStatus,
};
use std::collections::{BTreeSet, HashMap};
use tests::{DEFAULT_ACCOUNT, moto_config_for_account};

/// The management account: administers the stack set and owns the artifact buckets.
const MANAGEMENT: &str = DEFAULT_ACCOUNT;
const LOG_ARCHIVE: &str = "210000000001";
const MEMBERS: [&str; 3] = ["210000000011", "210000000012", "210000000013"];
/// An account that joins after the first rollout (auto-deployment does this on AWS).
const LATE_MEMBER: &str = "210000000014";
const REGIONS: [&str; 2] = ["us-east-1", "eu-west-1"];
const CENTRAL_REGION: &str = "us-east-1";
const ORGANIZATION_ID: &str = "o-a1b2c3d4e5";

/// Resources of central.yaml that moto 5.2.5 cannot create: its CloudFormation has no model for
/// the type, so the stack completes without them. The template tests check their content.
const CENTRAL_NOT_IN_MOTO: &[(&str, &str, &str)] = &[
    ("LogBucketPolicy", "AWS::S3::BucketPolicy", "no moto model"),
    ("LogQueuePolicy", "AWS::SQS::QueuePolicy", "no moto model"),
    ("AlertTopicPolicy", "AWS::SNS::TopicPolicy", "no moto model"),
    ("DeadLetterAlarm", "AWS::CloudWatch::Alarm", "no moto model"),
    ("BacklogAlarm", "AWS::CloudWatch::Alarm", "no moto model"),
    (
        "LoaderErrorsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "RefusedObjectsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "AccessLogBucketPolicy",
        "AWS::S3::BucketPolicy",
        "no moto model",
    ),
    (
        "LogDeadLetterQueuePolicy",
        "AWS::SQS::QueuePolicy",
        "no moto model",
    ),
    (
        "AlertBusPolicy",
        "AWS::Events::EventBusPolicy",
        "no moto model",
    ),
    (
        "AlertsDeadLetterQueuePolicy",
        "AWS::SQS::QueuePolicy",
        "no moto model",
    ),
    (
        "AlertsDeadLetterAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "OpenSearchReady",
        "AWS::CloudFormation::WaitConditionHandle",
        "no moto model",
    ),
    (
        "LoaderThrottlesAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "DeadLetterAgeAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "QuarantinedDocumentsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "WriteRejectedAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "LoaderTasksInvokeConfig",
        "AWS::Lambda::EventInvokeConfig",
        "no moto model",
    ),
    (
        "LoaderTasksDeadLetterQueuePolicy",
        "AWS::SQS::QueuePolicy",
        "no moto model",
    ),
    (
        "LoaderTasksDeadLetterAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
];

/// Resources the test leaves out through the template's own condition parameters.
const CENTRAL_LEFT_OUT: &[(&str, &str, &str)] = &[
    (
        "OpenSearchDomain",
        "AWS::OpenSearchService::Domain",
        "CreateOpenSearchDomain=false: moto has no model for it; the loader gets an endpoint",
    ),
    (
        "AlertEmailSubscription",
        "AWS::SNS::Subscription",
        "AlertEmail empty: no mailbox to confirm in a test",
    ),
    (
        "OpenSearchSetup",
        "Custom::OpenSearchSetup",
        "PrepareOpenSearch=false: moto would invoke the loader's code for it, and moto cannot \
         run Lambda code (no Docker); the loader's own tests cover the custom resource",
    ),
    (
        "GeoIpUpdateSchedule",
        "AWS::Events::Rule",
        "GeoIpLicenseSecret empty: the GeoIP update needs a MaxMind key; the template tests \
         check the schedule's retries and dead-letter queue",
    ),
    (
        "GeoIpUpdatePermission",
        "AWS::Lambda::Permission",
        "GeoIpLicenseSecret empty",
    ),
    (
        "SetupFunction",
        "AWS::Lambda::Function",
        "CreateOpenSearchDomain=false: the loader runs the setup itself without fine-grained access control",
    ),
    (
        "SetupLogGroup",
        "AWS::Logs::LogGroup",
        "CreateOpenSearchDomain=false",
    ),
    (
        "OpenSearchAdminRole",
        "AWS::IAM::Role",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "OpenSearchAnalystRole",
        "AWS::IAM::Role",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsUserPool",
        "AWS::Cognito::UserPool",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsUserPoolDomain",
        "AWS::Cognito::UserPoolDomain",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsAdminsGroup",
        "AWS::Cognito::UserPoolGroup",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsAnalystsGroup",
        "AWS::Cognito::UserPoolGroup",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsIdentityPool",
        "AWS::Cognito::IdentityPool",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "DashboardsIdentityPoolRoles",
        "AWS::Cognito::IdentityPoolRoleAttachment",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "OpenSearchCognitoRole",
        "AWS::IAM::Role",
        "CreateOpenSearchDomain=false: sign-in belongs to a domain the stack creates",
    ),
    (
        "LoaderSecurityGroup",
        "AWS::EC2::SecurityGroup",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "DomainSecurityGroup",
        "AWS::EC2::SecurityGroup",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "EndpointSecurityGroup",
        "AWS::EC2::SecurityGroup",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "S3Endpoint",
        "AWS::EC2::VPCEndpoint",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "StsEndpoint",
        "AWS::EC2::VPCEndpoint",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "SnsEndpoint",
        "AWS::EC2::VPCEndpoint",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "SecretsManagerEndpoint",
        "AWS::EC2::VPCEndpoint",
        "VpcId empty: the loader runs outside a VPC; the template tests check the VPC wiring",
    ),
    (
        "SnapshotBucket",
        "AWS::S3::Bucket",
        "PrepareOpenSearch=false and no OpenSearch Service domain: nothing registers a snapshot repository",
    ),
    (
        "SnapshotBucketPolicy",
        "AWS::S3::BucketPolicy",
        "PrepareOpenSearch=false and no OpenSearch Service domain: nothing registers a snapshot repository",
    ),
    (
        "SnapshotRole",
        "AWS::IAM::Role",
        "PrepareOpenSearch=false and no OpenSearch Service domain: nothing registers a snapshot repository",
    ),
    (
        "DomainRedAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
    (
        "DomainYellowAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
    (
        "DomainFreeStorageAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
    (
        "DomainWritesBlockedAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
    (
        "DomainJvmPressureAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
    (
        "DomainKeyInaccessibleAlarm",
        "AWS::CloudWatch::Alarm",
        "no OpenSearch Service domain named or created: its AWS/ES metrics would never come",
    ),
];

/// Resources of member.yaml that moto 5.2.5 cannot create (no model); the template tests check
/// their content.
const MEMBER_NOT_IN_MOTO: &[(&str, &str, &str)] = &[
    (
        "CollectorInvokeConfig",
        "AWS::Lambda::EventInvokeConfig",
        "no moto model",
    ),
    (
        "SubscriberInvokeConfig",
        "AWS::Lambda::EventInvokeConfig",
        "no moto model",
    ),
    (
        "CollectorDeadLetterQueuePolicy",
        "AWS::SQS::QueuePolicy",
        "no moto model",
    ),
    (
        "EventsDeadLetterQueuePolicy",
        "AWS::SQS::QueuePolicy",
        "no moto model",
    ),
    (
        "CollectorErrorsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "CollectorDeadLetterAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "CollectorDeadLetterDeliveryAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "SubscriberErrorsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "EventsDeadLetterAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "SubscriptionConflictsAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
    (
        "SubscriptionFailuresAlarm",
        "AWS::CloudWatch::Alarm",
        "no moto model",
    ),
];

const MEMBER_LEFT_OUT: &[(&str, &str, &str)] = &[(
    "SubscriptionBackfill",
    "Custom::SubscriptionBackfill",
    "ManageExistingLogGroups=false: moto would invoke the subscriber's code for it, and moto \
     cannot run Lambda code (no Docker); the subscriber's own tests cover the custom resource",
)];

/// The smallest valid zip archive (an empty end-of-central-directory record): moto only needs
/// the object to exist; it never runs the code.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Roles the SELF_MANAGED permission model needs (AWS's documented minimum): the administration
/// role in the administrator account and the execution role in every target account. Named
/// per run (CreateStackSet takes both names), so runs sharing one emulator never collide.
fn administration_role_template(prefix: &str) -> String {
    format!(
        r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  AdministrationRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: {prefix}-stackset-administration
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{ Service: cloudformation.amazonaws.com }}
            Action: sts:AssumeRole
      Policies:
        - PolicyName: AssumeExecutionRole
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: sts:AssumeRole
                Resource: arn:aws:iam::*:role/{prefix}-stackset-execution
"#
    )
}

fn execution_role_template(prefix: &str, administrator: &str) -> String {
    format!(
        r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  ExecutionRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: {prefix}-stackset-execution
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {{ AWS: "arn:aws:iam::{administrator}:root" }}
            Action: sts:AssumeRole
      ManagedPolicyArns: [arn:aws:iam::aws:policy/AdministratorAccess]
"#
    )
}

/// A name prefix unique to this run that the templates accept (`^[a-z][a-z0-9-]{2,27}$`).
fn run_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("osl-{:x}-{nanos:x}", std::process::id())
}

fn params(pairs: &[(&str, &str)]) -> Vec<Parameter> {
    pairs
        .iter()
        .map(|(k, v)| {
            Parameter::builder()
                .parameter_key(*k)
                .parameter_value(*v)
                .build()
        })
        .collect()
}

/// Creates a stack and returns its outputs; fails unless it reaches CREATE_COMPLETE.
async fn create_stack(
    cf: &aws_sdk_cloudformation::Client,
    name: &str,
    template: &str,
    parameters: Vec<Parameter>,
) -> HashMap<String, String> {
    cf.create_stack()
        .stack_name(name)
        .template_body(template)
        .set_parameters(Some(parameters))
        .capabilities(Capability::CapabilityIam)
        .capabilities(Capability::CapabilityNamedIam)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateStack {name}: {e:?}"));
    for _ in 0..100 {
        let stacks = cf
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeStacks {name}: {e:?}"));
        let stack = stacks.stacks().first().expect("the stack just created");
        match stack.stack_status() {
            Some(StackStatus::CreateInProgress) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Some(StackStatus::CreateComplete) => {
                return stack
                    .outputs()
                    .iter()
                    .filter_map(|o| {
                        Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))
                    })
                    .collect();
            }
            other => panic!(
                "stack {name} ended {other:?}: {:?}",
                stack.stack_status_reason()
            ),
        }
    }
    panic!("stack {name} still in progress after 10 s");
}

/// The logical ids of the resources a stack created.
async fn created_resources(cf: &aws_sdk_cloudformation::Client, stack: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut token = None;
    loop {
        let page = cf
            .list_stack_resources()
            .stack_name(stack)
            .set_next_token(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListStackResources {stack}: {e:?}"));
        for r in page.stack_resource_summaries() {
            // moto lists a resource it has no model for with an empty logical id.
            if let Some(id) = r.logical_resource_id().filter(|id| !id.is_empty()) {
                ids.insert(id.to_owned());
            }
        }
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            return ids;
        }
    }
}

/// The resources a stack of `template` must end with: all of them but the listed ones, each of
/// which must really be in the template with the type the list names (so the list stays true).
fn expected_resources(template: &Template, omitted: &[&[(&str, &str, &str)]]) -> BTreeSet<String> {
    let mut expected: BTreeSet<String> = template
        .resources()
        .into_iter()
        .map(|(id, _)| id.to_owned())
        .collect();
    for (id, resource_type, reason) in omitted.iter().flat_map(|list| list.iter()) {
        assert_eq!(
            template.resource_type(id),
            Some(*resource_type),
            "{}: {id} is listed as left out ({reason}) but is not a {resource_type} of the template",
            template.file
        );
        expected.remove(*id);
    }
    expected
}

async fn create_bucket(s3: &aws_sdk_s3::Client, bucket: &str, region: &str) {
    let mut req = s3.create_bucket().bucket(bucket);
    if region != "us-east-1" {
        req = req.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send()
        .await
        .unwrap_or_else(|e| panic!("CreateBucket {bucket}: {e:?}"));
}

#[tokio::test]
async fn stack_set_deploys_collector_subscriber_and_rules_to_every_account_and_region() {
    let prefix = run_prefix();
    let artifact_prefix = format!("{prefix}-artifacts");

    // Artifact bucket per region in the management account, laid out as scripts/package and
    // stacksets/deploy.sh upload them (the templates' default code keys).
    for region in REGIONS {
        let s3 = shared::aws::s3_client(&moto_config_for_account(MANAGEMENT, region).await);
        let bucket = format!("{artifact_prefix}-{region}");
        create_bucket(&s3, &bucket, region).await;
        for function in ["collector", "subscriber", "loader"] {
            s3.put_object()
                .bucket(&bucket)
                .key(format!("org-security-logs/x86_64/{function}.zip"))
                .body(EMPTY_ZIP.to_vec().into())
                .send()
                .await
                .unwrap_or_else(|e| panic!("upload {function}.zip to {bucket}: {e:?}"));
        }
    }

    // ------------------------------------------------------------ central stack
    let central_config = moto_config_for_account(LOG_ARCHIVE, CENTRAL_REGION).await;
    let central_cf = aws_sdk_cloudformation::Client::new(&central_config);
    let central_stack = format!("{prefix}-central");
    let outputs = create_stack(
        &central_cf,
        &central_stack,
        &template_text("central.yaml"),
        params(&[
            ("OrganizationId", ORGANIZATION_ID),
            ("ManagementAccountId", MANAGEMENT),
            ("NamePrefix", &prefix),
            (
                "ArtifactBucket",
                &format!("{artifact_prefix}-{CENTRAL_REGION}"),
            ),
            ("OpenSearchEndpoint", "https://search.example.internal"),
            ("OpenSearchAuth", "none"),
            ("CreateOpenSearchDomain", "false"),
            ("PrepareOpenSearch", "false"),
            ("LoaderBatchSize", "25"),
            ("LoaderMaximumConcurrency", "4"),
            ("LogRetentionDays", "60"),
        ]),
    )
    .await;
    let central_template = Template::load("central.yaml");
    assert_eq!(
        created_resources(&central_cf, &central_stack).await,
        expected_resources(&central_template, &[CENTRAL_NOT_IN_MOTO, CENTRAL_LEFT_OUT]),
        "central stack resources"
    );
    let bucket = outputs
        .get("LogBucketName")
        .expect("LogBucketName output")
        .clone();
    let key_arn = outputs.get("LogKeyArn").expect("LogKeyArn output").clone();
    let pipeline_log_groups = outputs
        .get("PipelineLogGroups")
        .expect("PipelineLogGroups output")
        .clone();
    assert_eq!(pipeline_log_groups, format!("/aws/lambda/{prefix}-*"));
    let alert_bus = outputs
        .get("AlertBusArn")
        .expect("AlertBusArn output")
        .clone();
    assert_eq!(
        alert_bus,
        format!("arn:aws:events:{CENTRAL_REGION}:{LOG_ARCHIVE}:event-bus/{prefix}-alerts")
    );
    assert_eq!(bucket, format!("{prefix}-{LOG_ARCHIVE}-{CENTRAL_REGION}"));
    assert!(key_arn.starts_with(&format!("arn:aws:kms:{CENTRAL_REGION}:{LOG_ARCHIVE}:key/")));

    let encryption = shared::aws::s3_client(&central_config)
        .get_bucket_encryption()
        .bucket(&bucket)
        .send()
        .await
        .expect("GetBucketEncryption of the log bucket");
    let by_default = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .expect("a default encryption rule");
    assert_eq!(by_default.sse_algorithm().as_str(), "aws:kms");
    assert_eq!(by_default.kms_master_key_id(), Some(key_arn.as_str()));

    let central_lambda = aws_sdk_lambda::Client::new(&central_config);
    let loader = central_lambda
        .get_function()
        .function_name(format!("{prefix}-loader"))
        .send()
        .await
        .expect("the loader function");
    let loader = loader.configuration().expect("loader configuration");
    assert_eq!(loader.handler(), Some("bootstrap"));
    assert_eq!(
        loader.runtime().map(|r| r.as_str()),
        Some("provided.al2023")
    );
    let env = loader
        .environment()
        .and_then(|e| e.variables())
        .expect("loader environment");
    assert_eq!(
        env.get("OPENSEARCH_ENDPOINT").map(String::as_str),
        Some("https://search.example.internal")
    );
    assert_eq!(env.get("OPENSEARCH_AUTH").map(String::as_str), Some("none"));
    assert_eq!(env.get("QUARANTINE_BUCKET"), Some(&bucket));
    assert_eq!(
        env.get("QUARANTINE_PREFIX").map(String::as_str),
        Some("quarantine/")
    );

    let mappings = central_lambda
        .list_event_source_mappings()
        .function_name(format!("{prefix}-loader"))
        .send()
        .await
        .expect("ListEventSourceMappings");
    let [mapping] = mappings.event_source_mappings() else {
        panic!("expected one event source mapping, got {mappings:?}");
    };
    assert_eq!(
        mapping.event_source_arn(),
        outputs.get("LogQueueArn").map(String::as_str)
    );
    assert_eq!(mapping.batch_size(), Some(25));
    assert_eq!(
        mapping
            .scaling_config()
            .and_then(|s| s.maximum_concurrency()),
        Some(4)
    );
    assert!(
        mapping
            .function_response_types()
            .iter()
            .any(|t| t.as_str() == "ReportBatchItemFailures"),
        "the loader must report partial batch failures: {mapping:?}"
    );
    assert_log_groups(&central_config, &prefix, &["loader"], 60).await;

    // Objects the loader fails on five times move to the dead-letter queue.
    let sqs = aws_sdk_sqs::Client::new(&central_config);
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(outputs.get("LogQueueUrl").expect("LogQueueUrl output"))
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .expect("GetQueueAttributes of the object queue");
    let redrive: serde_json::Value = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
        .map(|p| serde_json::from_str(p).expect("RedrivePolicy is JSON"))
        .expect("the object queue has a redrive policy");
    assert_eq!(
        redrive["deadLetterTargetArn"],
        format!("arn:aws:sqs:{CENTRAL_REGION}:{LOG_ARCHIVE}:{prefix}-objects-dlq")
    );
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "5"
    );

    // ------------------------------------------------------------ stack set roles
    let admin_cf = aws_sdk_cloudformation::Client::new(
        &moto_config_for_account(MANAGEMENT, CENTRAL_REGION).await,
    );
    create_stack(
        &admin_cf,
        &format!("{prefix}-stackset-administration"),
        &administration_role_template(&prefix),
        Vec::new(),
    )
    .await;
    for account in MEMBERS {
        let cf = aws_sdk_cloudformation::Client::new(
            &moto_config_for_account(account, CENTRAL_REGION).await,
        );
        create_stack(
            &cf,
            &format!("{prefix}-stackset-execution"),
            &execution_role_template(&prefix, MANAGEMENT),
            Vec::new(),
        )
        .await;
    }

    // ------------------------------------------------------------ member stack set
    let stack_set = format!("{prefix}-members");
    let schedule = "rate(2 hours)";
    admin_cf
        .create_stack_set()
        .stack_set_name(&stack_set)
        .template_body(template_text("member.yaml"))
        .permission_model(PermissionModels::SelfManaged)
        .administration_role_arn(format!(
            "arn:aws:iam::{MANAGEMENT}:role/{prefix}-stackset-administration"
        ))
        .execution_role_name(format!("{prefix}-stackset-execution"))
        .capabilities(Capability::CapabilityIam)
        .set_parameters(Some(params(&[
            ("NamePrefix", &prefix),
            ("CentralBucketName", &bucket),
            ("CentralBucketAccountId", LOG_ARCHIVE),
            ("KmsKeyArn", &key_arn),
            ("ArtifactBucketPrefix", &artifact_prefix),
            ("FilterName", "central-security-logs"),
            ("ReconcileSchedule", schedule),
            ("PipelineLogGroups", &pipeline_log_groups),
            ("CentralAlertBusArn", &alert_bus),
            ("ManageExistingLogGroups", "false"),
            ("ForwardSecurityHubFindings", "true"),
            ("ForwardGuardDutyFindings", "true"),
            ("LogRetentionDays", "14"),
        ])))
        .send()
        .await
        .expect("CreateStackSet");
    let operation = admin_cf
        .create_stack_instances()
        .stack_set_name(&stack_set)
        .set_accounts(Some(MEMBERS.iter().map(|a| a.to_string()).collect()))
        .set_regions(Some(REGIONS.iter().map(|r| r.to_string()).collect()))
        .send()
        .await
        .expect("CreateStackInstances")
        .operation_id()
        .expect("an operation id")
        .to_owned();
    wait_for_operation(&admin_cf, &stack_set, &operation).await;

    let instances = admin_cf
        .list_stack_instances()
        .stack_set_name(&stack_set)
        .send()
        .await
        .expect("ListStackInstances");
    let mut placed: Vec<(String, String)> = instances
        .summaries()
        .iter()
        .map(|i| {
            (
                i.account().unwrap_or_default().to_owned(),
                i.region().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    placed.sort();
    let mut wanted: Vec<(String, String)> = MEMBERS
        .iter()
        .flat_map(|a| REGIONS.iter().map(|r| (a.to_string(), r.to_string())))
        .collect();
    wanted.sort();
    assert_eq!(
        placed, wanted,
        "one stack instance per member account and region"
    );

    let member_template = Template::load("member.yaml");
    let member_expected =
        expected_resources(&member_template, &[MEMBER_NOT_IN_MOTO, MEMBER_LEFT_OUT]);
    for account in MEMBERS {
        for region in REGIONS {
            let config = moto_config_for_account(account, region).await;
            let ctx = MemberCheck {
                config: &config,
                account,
                region,
                prefix: &prefix,
                stack_set: &stack_set,
                bucket: &bucket,
                key_arn: &key_arn,
                schedule,
                alert_bus: &alert_bus,
                expected_resources: &member_expected,
            };
            ctx.run().await;
        }
    }

    // ------------------------------------------------------------ a late account
    // SERVICE_MANAGED auto-deployment adds an instance when an account joins a target OU; here
    // the same instance is added by hand and must come out like the others.
    let late_region = REGIONS[1];
    create_stack(
        &aws_sdk_cloudformation::Client::new(
            &moto_config_for_account(LATE_MEMBER, CENTRAL_REGION).await,
        ),
        &format!("{prefix}-stackset-execution"),
        &execution_role_template(&prefix, MANAGEMENT),
        Vec::new(),
    )
    .await;
    let operation = admin_cf
        .create_stack_instances()
        .stack_set_name(&stack_set)
        .accounts(LATE_MEMBER)
        .regions(late_region)
        .send()
        .await
        .expect("CreateStackInstances for the late account")
        .operation_id()
        .expect("an operation id")
        .to_owned();
    wait_for_operation(&admin_cf, &stack_set, &operation).await;
    let late_config = moto_config_for_account(LATE_MEMBER, late_region).await;
    MemberCheck {
        config: &late_config,
        account: LATE_MEMBER,
        region: late_region,
        prefix: &prefix,
        stack_set: &stack_set,
        bucket: &bucket,
        key_arn: &key_arn,
        schedule,
        alert_bus: &alert_bus,
        expected_resources: &member_expected,
    }
    .run()
    .await;
    let operation = admin_cf
        .delete_stack_instances()
        .stack_set_name(&stack_set)
        .accounts(LATE_MEMBER)
        .regions(late_region)
        .retain_stacks(false)
        .send()
        .await
        .expect("DeleteStackInstances for the late account")
        .operation_id()
        .expect("an operation id")
        .to_owned();
    wait_for_operation(&admin_cf, &stack_set, &operation).await;

    // ------------------------------------------------------------ removal
    let operation = admin_cf
        .delete_stack_instances()
        .stack_set_name(&stack_set)
        .set_accounts(Some(MEMBERS.iter().map(|a| a.to_string()).collect()))
        .set_regions(Some(REGIONS.iter().map(|r| r.to_string()).collect()))
        .retain_stacks(false)
        .send()
        .await
        .expect("DeleteStackInstances")
        .operation_id()
        .expect("an operation id")
        .to_owned();
    wait_for_operation(&admin_cf, &stack_set, &operation).await;
    for account in MEMBERS {
        for region in REGIONS {
            let lambda =
                aws_sdk_lambda::Client::new(&moto_config_for_account(account, region).await);
            let left = lambda
                .get_function()
                .function_name(format!("{prefix}-collector"))
                .send()
                .await;
            assert!(
                left.is_err(),
                "collector still in {account}/{region} after removal"
            );
        }
    }
    admin_cf
        .delete_stack_set()
        .stack_set_name(&stack_set)
        .send()
        .await
        .expect("DeleteStackSet once it has no instances");
}

async fn wait_for_operation(cf: &aws_sdk_cloudformation::Client, stack_set: &str, operation: &str) {
    for _ in 0..100 {
        let answer = cf
            .describe_stack_set_operation()
            .stack_set_name(stack_set)
            .operation_id(operation)
            .send()
            .await
            .expect("DescribeStackSetOperation");
        match answer.stack_set_operation().and_then(|o| o.status()) {
            Some(StackSetOperationStatus::Succeeded) => return,
            Some(StackSetOperationStatus::Running | StackSetOperationStatus::Queued) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            other => panic!("stack set operation {operation} ended {other:?}"),
        }
    }
    panic!("stack set operation {operation} still running after 10 s");
}

async fn assert_log_groups(
    config: &aws_config::SdkConfig,
    prefix: &str,
    functions: &[&str],
    retention: i32,
) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{prefix}-"))
        .send()
        .await
        .expect("DescribeLogGroups");
    let found: HashMap<&str, Option<i32>> = groups
        .log_groups()
        .iter()
        .filter_map(|g| Some((g.log_group_name()?, g.retention_in_days())))
        .collect();
    for function in functions {
        let name = format!("/aws/lambda/{prefix}-{function}");
        assert_eq!(
            found.get(name.as_str()),
            Some(&Some(retention)),
            "log group {name} with {retention} days retention; found {found:?}"
        );
    }
}

/// What one member account and region must hold after the stack set deployed there.
struct MemberCheck<'a> {
    config: &'a aws_config::SdkConfig,
    account: &'a str,
    region: &'a str,
    prefix: &'a str,
    stack_set: &'a str,
    bucket: &'a str,
    key_arn: &'a str,
    schedule: &'a str,
    alert_bus: &'a str,
    expected_resources: &'a BTreeSet<String>,
}

impl MemberCheck<'_> {
    async fn run(&self) {
        let (account, region, prefix) = (self.account, self.region, self.prefix);
        let place = format!("{account}/{region}");

        // The stack instance's stack, complete, with every resource the template has.
        let cf = aws_sdk_cloudformation::Client::new(self.config);
        let stacks = cf.list_stacks().send().await.expect("ListStacks");
        let stack = stacks
            .stack_summaries()
            .iter()
            .find(|s| s.stack_name().is_some_and(|n| n.contains(self.stack_set)))
            .unwrap_or_else(|| panic!("{place}: no stack of stack set {}", self.stack_set));
        assert_eq!(
            stack.stack_status(),
            Some(&StackStatus::CreateComplete),
            "{place}"
        );
        let stack_name = stack.stack_name().unwrap_or_default();
        assert_eq!(
            &created_resources(&cf, stack_name).await,
            self.expected_resources,
            "{place}: member stack resources"
        );

        // Collector and subscriber, wired to each other and to the central bucket.
        let lambda = aws_sdk_lambda::Client::new(self.config);
        let collector_arn =
            format!("arn:aws:lambda:{region}:{account}:function:{prefix}-collector");
        let subscriber_arn =
            format!("arn:aws:lambda:{region}:{account}:function:{prefix}-subscriber");
        let collector = function_env(&lambda, &format!("{prefix}-collector"), &collector_arn).await;
        assert_eq!(
            collector.get("BUCKET").map(String::as_str),
            Some(self.bucket),
            "{place}"
        );
        assert_eq!(
            collector.get("KMS_KEY_ARN").map(String::as_str),
            Some(self.key_arn),
            "{place}"
        );
        assert_eq!(
            collector.get("EXPECTED_BUCKET_OWNER").map(String::as_str),
            Some(LOG_ARCHIVE),
            "{place}"
        );
        assert!(
            !collector.contains_key("WRITER_ROLE_ARN"),
            "{place}: no writer role was given"
        );
        let subscriber =
            function_env(&lambda, &format!("{prefix}-subscriber"), &subscriber_arn).await;
        assert_eq!(
            subscriber.get("DESTINATION_ARN"),
            Some(&collector_arn),
            "{place}: the subscriber subscribes log groups to this account's collector"
        );
        assert_eq!(
            subscriber.get("COLLECTOR_FUNCTION_NAME"),
            Some(&format!("{prefix}-collector")),
            "{place}"
        );
        assert_eq!(
            subscriber.get("FILTER_NAME").map(String::as_str),
            Some("central-security-logs"),
            "{place}"
        );
        assert_eq!(
            subscriber.get("PROTECTED_LOG_GROUPS"),
            Some(&format!(
                "/aws/lambda/{prefix}-*,/aws/kinesisfirehose/{prefix}-*,/aws/lambda/{prefix}-*"
            )),
            "{place}: the pipeline's log groups, here and in the central stack, are never subscribed"
        );

        let policy = lambda
            .get_policy()
            .function_name(format!("{prefix}-collector"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{place}: GetPolicy of the collector: {e:?}"));
        let policy: serde_json::Value =
            serde_json::from_str(policy.policy().unwrap_or_default()).expect("policy is JSON");
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        assert!(
            statements.iter().any(|s| {
                s["Principal"]["Service"] == "logs.amazonaws.com"
                    && s["Condition"]["StringEquals"]["AWS:SourceAccount"] == account
            }),
            "{place}: CloudWatch Logs of this account may invoke the collector: {policy}"
        );

        // The rules, each targeting the right function.
        let events = aws_sdk_eventbridge::Client::new(self.config);
        let rules = events
            .list_rules()
            .name_prefix(format!("{prefix}-"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{place}: ListRules: {e:?}"));
        let collector_dlq = format!("arn:aws:sqs:{region}:{account}:{prefix}-collector-dlq");
        let events_dlq = format!("arn:aws:sqs:{region}:{account}:{prefix}-events-dlq");
        let mut targets = HashMap::new();
        for rule in rules.rules() {
            let name = rule.name().unwrap_or_default();
            let t = events
                .list_targets_by_rule()
                .rule(name)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{place}: ListTargetsByRule {name}: {e:?}"));
            let arns: Vec<String> = t.targets().iter().map(|t| t.arn().to_owned()).collect();
            let suffix = name.strip_prefix(&format!("{prefix}-")).unwrap_or(name);
            for target in t.targets() {
                let dlq = target.dead_letter_config().and_then(|d| d.arn());
                let wanted = if target.arn() == collector_arn {
                    &collector_dlq
                } else {
                    &events_dlq
                };
                assert_eq!(
                    dlq,
                    Some(wanted.as_str()),
                    "{place}: what rule {name} cannot deliver is dead-lettered"
                );
                assert!(
                    target
                        .retry_policy()
                        .and_then(|r| r.maximum_retry_attempts())
                        .is_some(),
                    "{place}: rule {name} retries"
                );
            }
            targets.insert(suffix.to_owned(), (arns, rule.clone()));
        }
        let expect = [
            ("create-log-group", &subscriber_arn),
            ("delete-subscription-filter", &subscriber_arn),
            ("reconcile", &subscriber_arn),
            ("securityhub-findings", &collector_arn),
            ("guardduty-findings", &collector_arn),
            ("forward-alarms", &self.alert_bus.to_owned()),
        ];
        let mut names: Vec<&String> = targets.keys().collect();
        names.sort();
        assert_eq!(names.len(), expect.len(), "{place}: rules {names:?}");
        for (rule, target) in expect {
            let (arns, _) = targets
                .get(rule)
                .unwrap_or_else(|| panic!("{place}: no rule {prefix}-{rule}; found {names:?}"));
            assert_eq!(arns, &vec![target.clone()], "{place}: targets of {rule}");
        }
        let pattern = |rule: &str| {
            targets
                .get(rule)
                .and_then(|(_, r)| r.event_pattern())
                .map(|p| serde_json::from_str::<serde_json::Value>(p).expect("pattern is JSON"))
                .unwrap_or_default()
        };
        assert_eq!(
            pattern("create-log-group")["detail"]["eventName"],
            serde_json::json!(["CreateLogGroup"]),
            "{place}"
        );
        assert_eq!(
            pattern("delete-subscription-filter")["detail"]["eventName"],
            serde_json::json!(["DeleteSubscriptionFilter"]),
            "{place}"
        );
        assert_eq!(
            targets
                .get("reconcile")
                .and_then(|(_, r)| r.schedule_expression()),
            Some(self.schedule),
            "{place}"
        );

        assert_log_groups(self.config, prefix, &["collector", "subscriber"], 14).await;
    }
}

/// The environment of a function, after checking it runs the packaged bootstrap at `arn`.
async fn function_env(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
    arn: &str,
) -> HashMap<String, String> {
    let answer = lambda
        .get_function()
        .function_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetFunction {name} ({arn}): {e:?}"));
    let config = answer.configuration().expect("function configuration");
    assert_eq!(config.function_arn(), Some(arn));
    assert_eq!(config.handler(), Some("bootstrap"), "{arn}");
    assert_eq!(
        config.runtime().map(|r| r.as_str()),
        Some("provided.al2023"),
        "{arn}"
    );
    config
        .environment()
        .and_then(|e| e.variables())
        .cloned()
        .unwrap_or_default()
}

/// Three VPCs for the member-sources test; moto creates them from a template as well.
const THREE_VPCS_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  A: { Type: AWS::EC2::VPC, Properties: { CidrBlock: 10.1.0.0/16 } }
  B: { Type: AWS::EC2::VPC, Properties: { CidrBlock: 10.2.0.0/16 } }
  C: { Type: AWS::EC2::VPC, Properties: { CidrBlock: 10.3.0.0/16 } }
Outputs:
  Ids: { Value: !Join [",", [!Ref A, !Ref B, !Ref C]] }
"#;

/// Resources of member-sources.yaml the test leaves out or moto cannot create.
const SOURCES_LEFT_OUT: &[(&str, &str, &str)] = &[
    (
        "FlowLog4",
        "AWS::EC2::FlowLog",
        "only three VPC ids given: slot 4 stays empty",
    ),
    (
        "FlowLog5",
        "AWS::EC2::FlowLog",
        "only three VPC ids given: slot 5 stays empty",
    ),
    (
        "WafFirehoseLogGroup",
        "AWS::Logs::LogGroup",
        "WebAclArn empty: WAF logging is off (moto has no WAFv2 or Firehose models)",
    ),
    (
        "WafFirehoseLogStream",
        "AWS::Logs::LogStream",
        "WebAclArn empty",
    ),
    ("WafFirehoseRole", "AWS::IAM::Role", "WebAclArn empty"),
    (
        "WafDeliveryStream",
        "AWS::KinesisFirehose::DeliveryStream",
        "WebAclArn empty",
    ),
    (
        "WafLogging",
        "AWS::WAFv2::LoggingConfiguration",
        "WebAclArn empty",
    ),
];

#[tokio::test]
async fn member_sources_log_exactly_the_chosen_vpcs_to_the_central_bucket() {
    let prefix = run_prefix();
    let account = "210000000021";
    let region = "eu-west-1";
    let config = moto_config_for_account(account, region).await;
    let cf = aws_sdk_cloudformation::Client::new(&config);

    let central_bucket = format!("{prefix}-central-logs");
    let central = moto_config_for_account(LOG_ARCHIVE, CENTRAL_REGION).await;
    create_bucket(
        &shared::aws::s3_client(&central),
        &central_bucket,
        CENTRAL_REGION,
    )
    .await;

    let vpcs = create_stack(
        &cf,
        &format!("{prefix}-vpcs"),
        THREE_VPCS_TEMPLATE,
        Vec::new(),
    )
    .await;
    let vpc_ids = vpcs.get("Ids").expect("VPC ids output").clone();
    assert_eq!(vpc_ids.split(',').count(), 3, "{vpc_ids}");

    let stack = format!("{prefix}-sources");
    create_stack(
        &cf,
        &stack,
        &template_text("member-sources.yaml"),
        params(&[
            ("CentralBucketName", &central_bucket),
            (
                "KmsKeyArn",
                &format!("arn:aws:kms:{CENTRAL_REGION}:{LOG_ARCHIVE}:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
            ),
            ("VpcIds", &vpc_ids),
        ]),
    )
    .await;
    let template = Template::load("member-sources.yaml");
    assert_eq!(
        created_resources(&cf, &stack).await,
        expected_resources(&template, &[SOURCES_LEFT_OUT]),
        "one flow log per given VPC, nothing else"
    );
}

/// The log archive account is often inside the OUs the member StackSet targets: there the
/// subscriber must leave the loader's log group (and the member stack's own groups) alone, or
/// every batch of loader logs becomes an object that triggers the loader again. The central
/// stack and the member stack are deployed into one emulated account, the subscriber is
/// configured from the environment the template gave its function, and a reconcile runs over
/// every log group of the account, with an include pattern that matches them all.
#[tokio::test]
async fn a_reconcile_in_the_log_archive_account_never_subscribes_the_pipeline() {
    let prefix = run_prefix();
    let artifact_prefix = format!("{prefix}-artifacts");
    let account = "210000000031";
    let region = CENTRAL_REGION;
    let config = moto_config_for_account(account, region).await;
    let s3 = shared::aws::s3_client(&moto_config_for_account(MANAGEMENT, region).await);
    let artifacts = format!("{artifact_prefix}-{region}");
    create_bucket(&s3, &artifacts, region).await;
    for function in ["collector", "subscriber", "loader"] {
        s3.put_object()
            .bucket(&artifacts)
            .key(format!("org-security-logs/x86_64/{function}.zip"))
            .body(EMPTY_ZIP.to_vec().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload {function}.zip: {e:?}"));
    }
    let cf = aws_sdk_cloudformation::Client::new(&config);
    let central = create_stack(
        &cf,
        &format!("{prefix}-central"),
        &template_text("central.yaml"),
        params(&[
            ("OrganizationId", ORGANIZATION_ID),
            ("ManagementAccountId", MANAGEMENT),
            ("NamePrefix", &prefix),
            ("ArtifactBucket", &artifacts),
            ("OpenSearchEndpoint", "https://search.example.internal"),
            ("OpenSearchAuth", "none"),
            ("PrepareOpenSearch", "false"),
        ]),
    )
    .await;
    let output = |key: &str| {
        central
            .get(key)
            .unwrap_or_else(|| panic!("central output {key}: {central:?}"))
            .clone()
    };
    create_stack(
        &cf,
        &format!("{prefix}-member"),
        &template_text("member.yaml"),
        params(&[
            ("NamePrefix", &prefix),
            ("CentralBucketName", &output("LogBucketName")),
            ("CentralBucketAccountId", account),
            ("KmsKeyArn", &output("LogKeyArn")),
            ("ArtifactBucketPrefix", &artifact_prefix),
            ("PipelineLogGroups", &output("PipelineLogGroups")),
            ("CentralAlertBusArn", &output("AlertBusArn")),
            ("IncludePatterns", ".*"),
            ("ManageExistingLogGroups", "false"),
        ]),
    )
    .await;

    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let application = format!("/app/{prefix}/orders");
    logs.create_log_group()
        .log_group_name(&application)
        .send()
        .await
        .expect("CreateLogGroup");

    let lambda = aws_sdk_lambda::Client::new(&config);
    let subscriber = format!("{prefix}-subscriber");
    let env = function_env(
        &lambda,
        &subscriber,
        &format!("arn:aws:lambda:{region}:{account}:function:{subscriber}"),
    )
    .await;
    let var = |name: &str| env.get(name).cloned().filter(|v| !v.is_empty());
    let settings = subscriber::settings::Settings::new(subscriber::settings::RawSettings {
        filter_name: var("FILTER_NAME").unwrap_or_default(),
        filter_pattern: var("FILTER_PATTERN").unwrap_or_default(),
        destination_arn: var("DESTINATION_ARN").unwrap_or_default(),
        role_arn: None,
        // Lambda sets AWS_LAMBDA_FUNCTION_NAME; the template cannot.
        function_name: Some(subscriber.clone()),
        collector_function_name: var("COLLECTOR_FUNCTION_NAME"),
        protected_groups: var("PROTECTED_LOG_GROUPS")
            .map(|list| list.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
        include: var("INCLUDE_PATTERNS"),
        exclude: var("EXCLUDE_PATTERNS"),
        mode: var("SUBSCRIPTION_MODE").unwrap_or_default(),
    })
    .expect("the subscriber accepts the environment its template gives it");
    assert_eq!(
        settings.mode,
        subscriber::settings::Mode::LogGroup,
        "the template's default mode"
    );
    let api = subscriber::aws::CloudWatchLogs::new(
        &config,
        subscriber::aws::Limits {
            put_rate: 0.0,
            describe_rate: 0.0,
            ..subscriber::aws::Limits::default()
        },
    );
    let summary = subscriber::reconcile::reconcile(
        &api,
        &settings,
        subscriber::reconcile::Options::default(),
    )
    .await
    .expect("reconcile");
    assert_eq!(summary.failures, 0, "{summary:?}");

    let filters = |group: String| {
        let logs = logs.clone();
        async move {
            logs.describe_subscription_filters()
                .log_group_name(&group)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeSubscriptionFilters {group}: {e:?}"))
                .subscription_filters()
                .len()
        }
    };
    assert_eq!(
        filters(application.clone()).await,
        1,
        "the application log group is subscribed: {summary:?}"
    );
    for own in ["loader", "collector", "subscriber"] {
        let group = format!("/aws/lambda/{prefix}-{own}");
        assert_eq!(
            filters(group.clone()).await,
            0,
            "{group} was subscribed: its logs would loop back into the pipeline"
        );
    }
    assert!(summary.protected >= 3, "{summary:?}");
}
