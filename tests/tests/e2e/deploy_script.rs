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
        "--capabilities CAPABILITY_IAM",
        "member.yaml",
    ] {
        assert!(
            create.contains(part),
            "create-stack-set lacks {part}: {create}"
        );
    }
    let member_keys: BTreeSet<String> = create
        .split_whitespace()
        .filter_map(|t| t.strip_prefix("ParameterKey="))
        .filter_map(|t| t.split(',').next())
        .map(str::to_owned)
        .collect();
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
    let central_keys: BTreeSet<String> = central
        .split_once("--parameter-overrides ")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
    assert_parameters_fit("central.yaml", &central_keys);

    let trail = call(&calls, "org-trail.yaml");
    let trail_keys: BTreeSet<String> = trail
        .split_once("--parameter-overrides ")
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
        .collect();
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
