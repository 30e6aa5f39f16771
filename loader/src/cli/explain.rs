//! `loader explain KEY`: which type an object key is detected as, and for every type why it
//! matches or not, in detection order.

use super::CliError;
use crate::config::Config;
use crate::detect::{self, decode_event_key};
use crate::provenance::{self, OrganizationId};
use std::io::Write;

/// The explanation as text lines; with `organization`, a CloudTrail key outside its trail's
/// layout is said to be refused, as `loader load --organization-id` would.
pub fn explain(config: &Config, key: &str, organization: Option<&OrganizationId>) -> String {
    let mut s = String::new();
    let mut key = key.to_owned();
    if key.contains("%2F") || key.contains("%2f") {
        key = decode_event_key(&key);
        s.push_str(&format!(
            "the key is URL-encoded (as in S3 event notifications); decoded: {key}\n"
        ));
    }
    s.push_str(&format!("key: {key}\n"));
    let verdict = match detect::detect(config, &key) {
        Ok(t) => {
            let detected = format!(
                "detected as `{}` ({})",
                t.name,
                match t.parser {
                    Some(_) => "built-in normalizer",
                    None => "normalized from its configuration",
                }
            );
            match provenance::check(organization, t, &key) {
                Ok(()) => detected,
                Err(refusal) => format!("{detected}, but not loaded: {refusal}"),
            }
        }
        Err(reason) => format!("not loaded: {reason}"),
    };
    s.push_str(&format!("result: {verdict}\n"));
    if key.is_empty() || key.ends_with('/') {
        s.push_str("  a folder marker or an empty key is never loaded\n");
        return s;
    }
    if key.contains("/CloudTrail-Digest/") || key.starts_with("CloudTrail-Digest/") {
        s.push_str(
            "  CloudTrail-Digest objects hold integrity hashes, not events: always skipped\n",
        );
        return s;
    }
    s.push_str("types, in detection order (the first whose s3_key matches decides):\n");
    let mut decided = false;
    for t in &config.types {
        let matched = t.s3_key.find(&key);
        let line = match matched {
            None => format!("s3_key `{}` does not match", t.s3_key.as_str()),
            Some(m) => {
                let ignored = t.s3_key_ignored.as_ref().and_then(|re| re.find(&key));
                let what = format!(
                    "s3_key `{}` matches `{}` at {}",
                    t.s3_key.as_str(),
                    m.as_str(),
                    m.start()
                );
                match (ignored, decided) {
                    (_, true) => format!("{what}, but an earlier type already matched"),
                    (Some(i), false) => format!(
                        "{what}, but s3_key_ignored `{}` matches `{}`: skipped",
                        t.s3_key_ignored.as_ref().map_or("", |r| r.as_str()),
                        i.as_str()
                    ),
                    (None, false) => format!("{what}: this type"),
                }
            }
        };
        if matched.is_some() {
            decided = true;
        }
        s.push_str(&format!("  {}: {line}\n", t.name));
    }
    s
}

pub fn run(
    config: &Config,
    key: &str,
    organization: Option<&OrganizationId>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    out.write_all(explain(config, key, organization).as_bytes())
        .map_err(CliError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_which_type_and_why_not_the_others() {
        let config = Config::with_user_file(
            "user.ini",
            "[vpcflowlogs]\ns3_key_ignored = 999999999999\n[apache]\ns3_key = UserLogs/apache/access.*\\.log\nfile_format = text\nindex_name = log-web-apache\n",
        )
        .expect("config");
        let text = explain(&config, "UserLogs/apache/2024/05/01/access.log.gz", None);
        assert!(
            text.contains("result: not loaded: no log type's s3_key matches the key"),
            "{text}"
        );
        assert!(text.contains("  cloudtrail: s3_key `"), "{text}");
        assert!(
            text.contains("  apache: s3_key `UserLogs/apache/access.*\\.log` does not match"),
            "{text}"
        );
        let text = explain(&config, "UserLogs/apache/access-2024-05-01.log.gz", None);
        assert!(
            text.contains("result: detected as `apache` (normalized from its configuration)"),
            "{text}"
        );
        assert!(text.contains("  apache: s3_key `UserLogs/apache/access.*\\.log` matches `UserLogs/apache/access-2024-05-01.log` at 0: this type"), "{text}");
        let text = explain(
            &config,
            "AWSLogs%2F999999999999%2Fvpcflowlogs%2Fus-east-1%2Fx.log.gz",
            None,
        );
        assert!(
            text.contains("decoded: AWSLogs/999999999999/vpcflowlogs/us-east-1/x.log.gz"),
            "{text}"
        );
        assert!(
            text.contains("result: not loaded: matches s3_key_ignored of log type vpcflowlogs"),
            "{text}"
        );
        assert!(
            text.contains("but s3_key_ignored `999999999999` matches `999999999999`: skipped"),
            "{text}"
        );
        let text = explain(&config, "random/key.txt", None);
        assert!(
            text.contains("result: not loaded: no log type's s3_key matches the key"),
            "{text}"
        );
        let text = explain(
            &config,
            "AWSLogs/o-abc123defg/111122223333/CloudTrail-Digest/us-east-1/d.json.gz",
            None,
        );
        assert!(text.contains("CloudTrail-Digest objects"), "{text}");
    }

    #[test]
    fn with_an_organization_id_a_cloudtrail_key_outside_its_trail_is_refused() {
        let config = Config::builtin().expect("config");
        let org = OrganizationId::parse("o-abc123defg").expect("org");
        let account_trail = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_x.json.gz";
        let text = explain(&config, account_trail, None);
        assert!(
            text.contains("result: detected as `cloudtrail` (built-in normalizer)\n"),
            "{text}"
        );
        let text = explain(&config, account_trail, Some(&org));
        assert!(
            text.contains("but not loaded: refused: CloudTrail objects must come from the organization trail of o-abc123defg"),
            "{text}"
        );
        let trusted = "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_x.json.gz";
        let text = explain(&config, trusted, Some(&org));
        assert!(
            text.contains("result: detected as `cloudtrail` (built-in normalizer)\n"),
            "{text}"
        );
    }
}
