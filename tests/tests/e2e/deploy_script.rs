//! `stacksets/deploy.sh` against the templates: a dry run prints the AWS CLI calls it would
//! make, and every parameter it passes must exist in the template it deploys, and every
//! parameter without a default must be passed.

use crate::cfn::{Template, stacksets_dir};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// The calls of a dry run (`+ aws ...` lines on stderr).
fn dry_run(extra: &[&str]) -> Vec<String> {
    let script = stacksets_dir().join("deploy.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--dry-run",
            "--skip-package",
            "--org-id",
            "o-a1b2c3d4e5",
            "--ous",
            "ou-ab12-11111111,ou-ab12-22222222",
            "--regions",
            "eu-west-1,us-east-1",
            "--central-profile",
            "logarchive",
            "--management-profile",
            "mgmt",
        ])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "deploy.sh --dry-run failed:\n{stderr}"
    );
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix("+ "))
        .map(str::to_owned)
        .collect()
}

fn call<'a>(calls: &'a [String], needle: &str) -> &'a str {
    calls
        .iter()
        .find(|c| c.contains(needle))
        .unwrap_or_else(|| panic!("no call with {needle:?} in:\n{}", calls.join("\n")))
}

/// The keys of `Key=Value` parameter overrides of a `cloudformation deploy` call.
fn override_keys(call: &str) -> BTreeSet<String> {
    call.split_once("--parameter-overrides ")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect()
}

/// The keys of `ParameterKey=K,...` parameters of a stack set call.
fn stack_set_keys(call: &str) -> BTreeSet<String> {
    call.split_whitespace()
        .filter_map(|t| t.strip_prefix("ParameterKey="))
        .filter_map(|t| t.split(',').next())
        .map(str::to_owned)
        .collect()
}

fn parameters(template: &Template) -> (BTreeSet<String>, BTreeSet<String>) {
    let params = template
        .doc
        .get("Parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let all = params.keys().cloned().collect();
    let required = params
        .iter()
        .filter(|(_, p)| p.get("Default").is_none())
        .map(|(k, _)| k.clone())
        .collect();
    (all, required)
}

fn assert_parameters_fit(template: &str, passed: &BTreeSet<String>) {
    let (all, required) = parameters(&Template::load(template));
    let unknown: Vec<_> = passed.difference(&all).collect();
    assert!(
        unknown.is_empty(),
        "deploy.sh passes {unknown:?}, unknown to {template}"
    );
    let missing: Vec<_> = required.difference(passed).collect();
    assert!(
        missing.is_empty(),
        "deploy.sh does not pass {missing:?}, required by {template}"
    );
}

#[test]
fn deploy_script_creates_a_service_managed_auto_deployed_stack_set() {
    let calls = dry_run(&[]);

    let create = call(&calls, "cloudformation create-stack-set");
    assert!(create.starts_with("aws --profile mgmt "), "{create}");
    for part in [
        "--permission-model SERVICE_MANAGED",
        "--auto-deployment Enabled=true",
        "--capabilities CAPABILITY_NAMED_IAM",
        "member.yaml",
    ] {
        assert!(
            create.contains(part),
            "create-stack-set lacks {part}: {create}"
        );
    }
    let member_keys = stack_set_keys(create);
    assert_parameters_fit("member.yaml", &member_keys);

    let instances = call(&calls, "cloudformation create-stack-instances");
    assert!(
        instances.contains(
            "--deployment-targets OrganizationalUnitIds=ou-ab12-11111111,ou-ab12-22222222"
        ) && instances.contains("--regions eu-west-1 us-east-1"),
        "{instances}"
    );

    let central = call(&calls, "central.yaml");
    assert!(
        central.starts_with("aws --profile logarchive cloudformation deploy"),
        "{central}"
    );
    let central_keys = override_keys(central);
    assert_parameters_fit("central.yaml", &central_keys);
    assert!(
        !central_keys.contains("CreateOpenSearchDomain"),
        "without --create-domain the script must not pass CreateOpenSearchDomain (an update would delete a domain made earlier): {central}"
    );
    // The member stacks learn the central stack's own log groups and its alert bus.
    for (key, output) in [
        ("PipelineLogGroups", "<PipelineLogGroups>"),
        ("CentralAlertBusArn", "<AlertBusArn>"),
    ] {
        assert!(
            create.contains(&format!("ParameterKey={key},ParameterValue={output}")),
            "{create}"
        );
    }

    let trail = call(&calls, "org-trail.yaml");
    let trail_keys = override_keys(trail);
    assert_parameters_fit("org-trail.yaml", &trail_keys);

    // An artifact bucket per region, readable by the organization only.
    for region in ["eu-west-1", "us-east-1"] {
        let policy = call(
            &calls,
            &format!(
                "put-bucket-policy --bucket org-security-logs-artifacts-<management-account>-{region}"
            ),
        );
        let document: Value = policy
            .split_once("--policy ")
            .and_then(|(_, json)| serde_json::from_str(json).ok())
            .unwrap_or_else(|| panic!("bucket policy is not one JSON document: {policy}"));
        assert_eq!(
            document.pointer("/Statement/0/Condition/StringEquals/aws:PrincipalOrgID"),
            Some(&Value::from("o-a1b2c3d4e5")),
            "{document}"
        );
    }
}

#[test]
fn deploy_script_removes_instances_before_the_stack_set() {
    let calls = dry_run(&["--remove"]);
    let position = |needle: &str| {
        calls
            .iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in:\n{}", calls.join("\n")))
    };
    assert!(position("delete-stack-instances") < position("delete-stack-set"));
    assert!(calls.iter().all(|c| !c.contains("create-")), "{calls:?}");
}

/// A stand-in for the AWS CLI: records every call and answers as an organization where the
/// central stack and the member stack set already exist.
const FAKE_AWS: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >> "$FAKE_AWS_LOG"
args=" $* "
case "$args" in
  *" sts get-caller-identity "*)
    if [[ $args == *" --profile logarchive "* ]]; then echo 222222222222; else echo 111111111111; fi ;;
  *" describe-stacks "*)
    for k in LogBucketName LogKeyArn PipelineLogGroups AlertBusArn; do
      [[ $args == *"'$k'"* ]] && echo "value-of-$k"
    done ;;
  *" describe-stack-set-operation "*) echo SUCCEEDED ;;
  *" describe-stack-set "*)
    if [[ $args == *" --query "* && $args == *"-sources "* ]]; then
      printf 'VpcIds\tvpc-0abc\nWebAclArn\t\n'
    elif [[ $args == *" --query "* ]]; then
      printf 'FilterName\told-name\nReconcileSchedule\trate(1 hour)\nLogRetentionDays\t90\nCollectorCodeKey\told/collector.zip\n'
    else
      echo '{}'
    fi ;;
  *" update-stack-set "*|*" create-stack-instances "*) echo op-1 ;;
esac
exit 0
"#;

/// Runs deploy.sh for real against [`FAKE_AWS`]; returns (success, stderr, the calls made).
fn run_against_fake_aws(extra: &[&str], files: &[(&str, &str)]) -> (bool, String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "deploy-sh-{}-{}",
        std::process::id(),
        tests::unique_name("run")
    ));
    let bin = dir.join("bin");
    let dist = dir.join("dist");
    std::fs::create_dir_all(&bin).expect("temp dir");
    std::fs::create_dir_all(&dist).expect("temp dir");
    let aws = bin.join("aws");
    std::fs::write(&aws, FAKE_AWS).expect("write the fake aws");
    let chmod = Command::new("chmod")
        .arg("+x")
        .arg(&aws)
        .status()
        .expect("chmod");
    assert!(chmod.success());
    for f in ["collector", "subscriber", "loader"] {
        std::fs::write(dist.join(format!("{f}.zip")), f).expect("write a zip");
    }
    let mut args: Vec<String> = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::write(&path, content).expect("write a parameter file");
        args.push(path.display().to_string());
    }
    let log = dir.join("calls.log");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = stacksets_dir().join("deploy.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args([
            "--skip-package",
            "--no-trail",
            "--dist",
            &dist.display().to_string(),
            "--org-id",
            "o-a1b2c3d4e5",
            "--ous",
            "ou-ab12-11111111",
            "--regions",
            "eu-west-1",
            "--central-profile",
            "logarchive",
        ])
        .args(extra.iter().map(|a| {
            // `@N` stands for the path of the N-th file.
            a.strip_prefix('@')
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| args.get(n).cloned())
                .unwrap_or_else(|| a.to_string())
        }))
        .env("PATH", path)
        .env("FAKE_AWS_LOG", &log)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let calls = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

#[test]
fn updating_the_stack_set_keeps_every_parameter_not_given() {
    let (ok, stderr, calls) = run_against_fake_aws(&[], &[]);
    assert!(ok, "deploy.sh failed:\n{stderr}");
    let update = call(&calls, "cloudformation update-stack-set");
    for kept in ["FilterName", "ReconcileSchedule", "LogRetentionDays"] {
        assert!(
            update.contains(&format!("ParameterKey={kept},UsePreviousValue=true")),
            "{kept} would be reset to its default: {update}"
        );
    }
    assert!(
        update.contains("ParameterKey=CollectorCodeKey,ParameterValue=org-security-logs/")
            && !update.contains("ParameterKey=CollectorCodeKey,UsePreviousValue"),
        "the new code key is passed once: {update}"
    );
    assert!(
        calls.iter().all(|c| !c.contains("create-stack-set")),
        "{calls:?}"
    );
    let central = call(&calls, "central.yaml");
    assert!(!central.contains("CreateOpenSearchDomain"), "{central}");
}

#[test]
fn a_changed_filter_name_needs_confirmation() {
    let file = [(
        "member.params",
        "# rename the filter\nParameterKey=FilterName,ParameterValue=new-name\n",
    )];
    let (ok, stderr, calls) = run_against_fake_aws(&["--member-parameters", "@0"], &file);
    assert!(!ok, "a rename went through without --rename-filter");
    assert!(
        stderr.contains("'old-name' to 'new-name'") && stderr.contains("--rename-filter"),
        "{stderr}"
    );
    assert!(
        calls.iter().all(|c| !c.contains("update-stack-set")),
        "{calls:?}"
    );

    let (ok, stderr, calls) =
        run_against_fake_aws(&["--member-parameters", "@0", "--rename-filter"], &file);
    assert!(ok, "{stderr}");
    let update = call(&calls, "cloudformation update-stack-set");
    assert!(
        update.contains("ParameterKey=FilterName,ParameterValue=new-name")
            && !update.contains("ParameterKey=FilterName,UsePreviousValue"),
        "{update}"
    );
}

#[test]
fn central_parameters_and_sources_are_deployed() {
    let files = [
        (
            "central.params",
            "LoaderMemorySize=2048\nObjectLockMode=GOVERNANCE\n",
        ),
        (
            "sources.params",
            "ParameterKey=FlowLogFormat,ParameterValue=\n",
        ),
    ];
    let calls = dry_run(&[]);
    assert!(calls.iter().all(|c| !c.contains("member-sources.yaml")));
    let (ok, stderr, calls) = run_against_fake_aws(
        &[
            "--central-parameters",
            "@0",
            "--opensearch-auth",
            "basic",
            "--opensearch-secret-arn",
            "arn:aws:secretsmanager:eu-west-1:222222222222:secret:os-AbCdEf",
            "--sources",
            "--sources-parameters",
            "@1",
        ],
        &files,
    );
    assert!(ok, "{stderr}");
    let central = call(&calls, "central.yaml");
    for part in [
        "LoaderMemorySize=2048",
        "ObjectLockMode=GOVERNANCE",
        "OpenSearchAuth=basic",
        "OpenSearchBasicAuthSecret=arn:aws:secretsmanager:eu-west-1:222222222222:secret:os-AbCdEf",
    ] {
        assert!(central.contains(part), "{part}: {central}");
    }
    let keys = override_keys(central);
    assert_parameters_fit("central.yaml", &keys);
    // The sources stack set exists in the fake organization: updated, its parameters kept.
    let sources = calls
        .iter()
        .find(|c| c.contains("update-stack-set") && c.contains("member-sources.yaml"))
        .unwrap_or_else(|| panic!("no update of the sources stack set: {calls:?}"));
    let keys = stack_set_keys(sources);
    let (all, _) = parameters(&Template::load("member-sources.yaml"));
    assert!(
        keys.is_subset(&all),
        "{keys:?} not all in member-sources.yaml"
    );
    assert!(
        sources.contains("ParameterKey=VpcIds,UsePreviousValue=true"),
        "{sources}"
    );
    assert!(sources.contains("CAPABILITY_NAMED_IAM"), "{sources}");
}
