//! Which log type an object is, from its key alone (DESIGN 3.1: the key layout is a contract).

use crate::config::{Config, LogType};
use percent_encoding::percent_decode_str;
use regex::Regex;
use std::sync::OnceLock;

/// Keys in S3 event notifications are form-URL-encoded: `+` is a space, `%XX` a byte.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Why an object is not loaded. Skipping is not an error; it is counted and logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// CloudTrail integrity digests hold hashes, not events.
    CloudTrailDigest,
    /// The type matched, but its `s3_key_ignored` did too.
    Ignored { log_type: String },
    /// No type's `s3_key` matches.
    Unclaimed,
    /// A folder marker (key ending in `/`) or an empty key.
    Folder,
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::CloudTrailDigest => {
                f.write_str("CloudTrail digest file (integrity hashes, no events)")
            }
            Self::Ignored { log_type } => {
                write!(f, "matches s3_key_ignored of log type {log_type}")
            }
            Self::Unclaimed => f.write_str("no log type's s3_key matches the key"),
            Self::Folder => f.write_str("folder marker or empty key"),
        }
    }
}

/// The first type, in configuration order, whose `s3_key` is found in the key; `Err` says why
/// none is used. Types without a Rust parser are loaded from their configuration.
pub fn detect<'c>(config: &'c Config, key: &str) -> Result<&'c LogType, SkipReason> {
    if key.is_empty() || key.ends_with('/') {
        return Err(SkipReason::Folder);
    }
    if key.contains("/CloudTrail-Digest/") || key.starts_with("CloudTrail-Digest/") {
        return Err(SkipReason::CloudTrailDigest);
    }
    let log_type = config
        .types
        .iter()
        .find(|t| t.s3_key.is_match(key))
        .ok_or(SkipReason::Unclaimed)?;
    if log_type
        .s3_key_ignored
        .as_ref()
        .is_some_and(|re| re.is_match(key))
    {
        return Err(SkipReason::Ignored {
            log_type: log_type.name.clone(),
        });
    }
    Ok(log_type)
}

/// Account and region named by the `AWSLogs/[<org-id>/]<account>/<source>/<region>/` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyParts<'k> {
    pub account: Option<&'k str>,
    pub region: Option<&'k str>,
}

/// The time an object's key names: the named groups `year`, `month`, `day`, `hour`, `minute`,
/// `second` of the type's `file_timestamp_format` (the es-loader's key; a group it lacks counts
/// as the start: month 1, hour 0), or else the date folders AWS writes (`.../YYYY/MM/DD/` and
/// an optional `HH/`), as the end of that day or hour. `None` when the key names no time.
pub fn key_time(
    key: &str,
    file_timestamp_format: Option<&Regex>,
) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, TimeZone, Utc};
    if let Some(re) = file_timestamp_format {
        let c = re.captures(key)?;
        let num = |name: &str, default: u32| -> Option<u32> {
            match c.name(name) {
                Some(m) => m.as_str().parse().ok(),
                None => Some(default),
            }
        };
        let year: i32 = c.name("year")?.as_str().parse().ok()?;
        let at = NaiveDate::from_ymd_opt(year, num("month", 1)?, num("day", 1)?)?.and_hms_opt(
            num("hour", 0)?,
            num("minute", 0)?,
            num("second", 0)?,
        )?;
        return Some(Utc.from_utc_datetime(&at));
    }
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"(?:^|/)(20\d{2}|19\d{2})/(\d{2})/(\d{2})/(?:(\d{2})/)?").ok())
        .as_ref()?;
    let c = re.captures(key)?;
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
    let date = NaiveDate::from_ymd_opt(c.get(1)?.as_str().parse().ok()?, num(2)?, num(3)?)?;
    let end = match num(4) {
        Some(hour) => date.and_hms_opt(hour, 59, 59)?,
        None => date.and_hms_opt(23, 59, 59)?,
    };
    Some(Utc.from_utc_datetime(&end))
}

pub fn key_parts(key: &str) -> KeyParts<'_> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r"(?:^|/)AWSLogs/(?:o-[a-z0-9]{10,32}/)?(\d{12})/(?:[^/]+)/(?:([a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d{1,2})/)?",
        )
        .ok()
    });
    let Some(caps) = re.as_ref().and_then(|re| re.captures(key)) else {
        return KeyParts::default();
    };
    KeyParts {
        account: caps.get(1).map(|m| m.as_str()),
        region: caps.get(2).map(|m| m.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_time() {
        let t = |key: &str, re: Option<&Regex>| key_time(key, re).map(|t| t.to_rfc3339());
        assert_eq!(
            t("AWSLogs/111122223333/linux/2027/01/01/secure.gz", None).as_deref(),
            Some("2027-01-01T23:59:59+00:00")
        );
        assert_eq!(
            t(
                "AWSLogs/1/CloudWatchLogs/eu-west-1/var/log/secure/2026/12/31/23/s-1.json.gz",
                None
            )
            .as_deref(),
            Some("2026-12-31T23:59:59+00:00")
        );
        assert_eq!(t("logs/secure.log", None), None);
        assert_eq!(t("x/2026/13/01/y", None), None);
        let snapshot =
            Regex::new(r"_(?P<year>\d{4})(?P<month>\d{2})(?P<day>\d{2})T(?P<hour>\d{2})(?P<minute>\d{2})(?P<second>\d{2})Z_")
                .expect("regex");
        assert_eq!(
            t(
                "AWSLogs/1/Config/eu-west-1/2026/12/1/ConfigSnapshot/1_Config_eu-west-1_ConfigSnapshot_20261201T101500Z_a.json.gz",
                Some(&snapshot)
            )
            .as_deref(),
            Some("2026-12-01T10:15:00+00:00")
        );
        // The type's own format wins; a key it does not match names no time.
        assert_eq!(t("x/2026/12/01/other", Some(&snapshot)), None);
    }

    fn config() -> Config {
        Config::builtin().expect("config")
    }

    fn detected(key: &str) -> Result<String, SkipReason> {
        let config = config();
        detect(&config, key).map(|t| t.name.clone())
    }

    #[test]
    fn keys_of_every_layout() {
        let cases = [
            (
                "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_abc.json.gz",
                "cloudtrail",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/eu-west-1/2024/05/01/x.json.gz",
                "cloudtrail",
            ),
            (
                "prefix/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2024/05/01/x.json.gz",
                "cloudtrail",
            ),
            (
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/111122223333_vpcflowlogs_us-east-1_fl-1_20240501T0000Z_h.log.gz",
                "vpcflowlogs",
            ),
            (
                "AWSLogs/111122223333/WAFLogs/us-east-1/acl/2024/05/01/00/00/x.log.gz",
                "waf",
            ),
            (
                "aws-waf-logs-acl/2024/05/01/00/aws-waf-logs-acl-1-2024.gz",
                "waf",
            ),
            (
                "AWSLogs/111122223333/SecurityHub/us-east-1/2024/05/01/00/id.json.gz",
                "securityhub",
            ),
            (
                "AWSLogs/111122223333/GuardDuty/us-east-1/2024/05/01/00/id.json.gz",
                "guardduty",
            ),
            (
                "AWSLogs/111122223333/CloudWatchLogs/us-east-1/aws/vpcflowlogs/2024/05/01/00/s-1.json.gz",
                "cloudwatchlogs",
            ),
            (
                "AWSLogs/111122223333/CloudWatchLogs/us-east-1/CloudTrail/DefaultLogGroup/2024/05/01/00/s-1.json.gz",
                "cloudwatchlogs",
            ),
            (
                "UserLogs/linux/secure/host1/secure-20240501.gz",
                "linux_secure",
            ),
            (
                "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/03/04/111122223333_elasticloadbalancing_us-east-1_app.web-prod.50dc6c495c0c9188_20260304T0915Z_10.0.1.7_3kq8wz1e.log.gz",
                "alb",
            ),
            (
                "elb/AWSLogs/111122223333/elasticloadbalancing/ap-northeast-1/2026/03/04/111122223333_elasticloadbalancing_ap-northeast-1_app.a.b_20260304T0915Z_10.0.1.7_x.log.gz",
                "alb",
            ),
            (
                "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/03/04/111122223333_elasticloadbalancing_us-east-1_net.my-nlb.c6e77e28c25b2234_20260304T0915Z_2c3f.log.gz",
                "nlb",
            ),
            (
                "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/03/04/111122223333_elasticloadbalancing_us-east-1_my-clb_20260304T0915Z_10.0.1.7_x.log",
                "clb",
            ),
            (
                "logs/assets/2026-03-04-12-05-31-1A2B3C4D5E6F7A8B",
                "s3accesslog",
            ),
            (
                "logs/111122223333/us-east-1/assets/2026/03/04/2026-03-04-12-05-31-1A2B3C4D5E6F7A8B",
                "s3accesslog",
            ),
            ("2026-03-04-12-05-31-1A2B3C4D5E6F7A8B", "s3accesslog"),
            (
                "cf-logs/www/E2QWRUHAPOMQZL.2026-03-04-12.a1b2c3d4.gz",
                "cloudfront-standard",
            ),
            (
                "AWSLogs/111122223333/CloudFront/global/E2QWRUHAPOMQZL/realtime/2026/03/04/12/cf-rt-1-2026-03-04-12-06-46-c712a37c",
                "cloudfront-realtime",
            ),
            (
                "AWSLogs/111122223333/vpcdnsquerylogs/vpc-0a1b2c3d4e5f67890/2026/03/04/vpc-0a1b2c3d4e5f67890_vpcdnsquerylogs_111122223333_20260304T1205Z_7f3e9a21.log.gz",
                "route53resolver",
            ),
            (
                "AWSLogs/111122223333/Config/us-east-1/2026/3/4/ConfigHistory/111122223333_Config_us-east-1_ConfigHistory_AWS::EC2::SecurityGroup_20260304T1200Z_20260304T1300Z_1.json.gz",
                "config-history",
            ),
            (
                "AWSLogs/111122223333/Config/us-east-1/2026/3/4/ConfigSnapshot/111122223333_Config_us-east-1_ConfigSnapshot_20260304T120000Z_f5e975aa.json.gz",
                "config-snapshot",
            ),
            (
                "AWSLogs/111122223333/aws.config/Config_Rules_Compliance_Change/us-east-1/2026/03/04/x.gz",
                "config-rules",
            ),
            (
                "AWSLogs/111122223333/ClientVPN/us-east-1/2026/03/04/12/clientvpn-to-s3-1-2026-03-04-12-51-01-bcb6e452",
                "clientvpn",
            ),
            (
                "AWSLogs/111122223333/network-firewall/alert/us-east-1/fw-prod/2026/03/04/12/111122223333_network-firewall_alert_us-east-1_fw-prod_20260304T1205Z_7c1d9e2a.log.gz",
                "networkfirewall",
            ),
            (
                "AWSLogs/111122223333/network-firewall/flow/us-east-1/fw-prod/2026/03/04/12/111122223333_network-firewall_flow_us-east-1_fw-prod_20260304T1205Z_7c1d9e2a.log.gz",
                "networkfirewall",
            ),
            (
                "AWSLogs/111122223333/EC2/Linux/System/us-east-1/2026/03/04/12/linux-system-1-2026-03-04-12-06-41-4c9e",
                "linux-os-syslog",
            ),
            (
                "AWSLogs/111122223333/EC2/Linux/Secure/us-east-1/2026/03/04/12/linux-secure-1-2026-03-04-12-06-41-4c9e",
                "linux_secure",
            ),
            (
                "AWSLogs/aws-account-id=111122223333/service=apache-access/web-site-name=shop.example.com/aws-region=us-east-1/year=2026/month=03/day=04/x",
                "apache-access",
            ),
            (
                "weblogs/apache/error/web-1/error_log-20260304",
                "apache-error",
            ),
            (
                "weblogs/nginx/access/lb-1/access.log-20260304",
                "nginx-access",
            ),
            (
                "AWSLogs/aws-account-id=111122223333/service=nginx-error/web-site-name=api.example.com/aws-region=us-east-1/year=2026/month=03/day=04/x",
                "nginx-error",
            ),
            (
                "AWSLogs/111122223333/RDS/PostgreSQL/postgresql/us-east-1/2026/03/04/12/rds-pg-1-2026-03-04-12-07-06-235e",
                "rds-postgresql",
            ),
            (
                "AWSLogs/111122223333/RDS/MySQL/audit/us-east-1/2026/03/04/12/x",
                "rds-mysql-audit",
            ),
            (
                "AWSLogs/111122223333/RDS/MySQL/general/us-east-1/2026/03/04/12/x",
                "rds-mysql-general",
            ),
            (
                "AWSLogs/111122223333/RDS/MySQL/error/us-east-1/2026/03/04/12/x",
                "rds-mysql-error",
            ),
            (
                "AWSLogs/111122223333/RDS/MySQL/slowquery/us-east-1/2026/03/04/12/x",
                "rds-mysql-slowquery",
            ),
            (
                "AWSLogs/111122223333/ElastiCache/redis-slowlog/us-east-1/2026/03/04/12/x.gz",
                "elasticache-redis-slowlog",
            ),
            (
                "AWSLogs/111122223333/KafkaBrokerLogs/us-east-1/orders-msk-1/2026-03-04-12/Broker-1_120531_4455.log.gz",
                "msk",
            ),
            (
                "AWSLogs/111122223333/OpenSearch/audit/us-east-1/2026/03/04/12/x",
                "opensearch-audit",
            ),
            ("firehose/eks-audit/prod/2026/03/04/12/x", "eks-audit"),
            (
                "exports/aws/lambda/orders-handler/2026/03/04/12/x",
                "lambda",
            ),
            (
                "firehose/api-gateway-access/orders-api/2026/03/04/12/x",
                "apigateway-access",
            ),
            (
                "firehose/route53-public/example.com/2026/03/04/12/x",
                "route53-public-dns",
            ),
            (
                "AWSLogs/111122223333/aws.inspector2/Inspector2_Finding/us-east-1/2026/03/04/x.gz",
                "inspector",
            ),
            (
                "AWSLogs/111122223333/WorkSpaces/Event/2026/03/04/12/x.gz",
                "workspaces-event",
            ),
            (
                "AWSLogs/111122223333/WorkSpaces/Inventory/us-east-1/2026/03/04/x.json.gz",
                "workspaces-inventory",
            ),
            (
                "AWSLogs/111122223333/TrustedAdvisor/us-east-1/2026/03/04/x.json.gz",
                "trustedadvisor",
            ),
            (
                "AWSLogs/111122223333/DirectoryService/MicrosoftAD/2026/03/04/12/x",
                "directory-service",
            ),
            (
                "AWSLogs/111122223333/FSx/us-east-1/2026/03/04/12/aws-fsx-audit-fs-0123-1-x.gz",
                "fsx-win",
            ),
            (
                "AWSLogs/111122223333/EC2/Windows/Event/us-east-1/2026/03/04/12/x",
                "windows-event",
            ),
            (
                "aws/CLOUD_TRAIL_MGMT/2.0/region=us-east-1/accountId=111122223333/eventDay=20260304/82ff45f7f11596e8fc0b862d5558e146.gz.parquet",
                "securitylake",
            ),
            (
                "ext/idp-auth/1.0/region=us-east-1/accountId=111122223333/eventDay=20260304/part-0.parquet",
                "securitylake",
            ),
            (
                "AWSLogs/111122223333/ocsf-json/us-east-1/2026/03/04/12/x.gz",
                "ocsf-json",
            ),
            // The collector's objects stay CloudWatch Logs payloads, read by log group.
            (
                "AWSLogs/111122223333/CloudWatchLogs/us-east-1/aws/rds/instance/orders-db/postgresql/2026/03/04/12/x.json.gz",
                "cloudwatchlogs",
            ),
            (
                "AWSLogs/111122223333/CloudWatchLogs/us-east-1/aws/eks/prod/cluster/2026/03/04/12/x.json.gz",
                "cloudwatchlogs",
            ),
        ];
        for (key, expected) in cases {
            assert_eq!(detected(key).as_deref(), Ok(expected), "{key}");
        }
        // Network and Classic Load Balancers' logs are other formats: never read as ALB's.
        for key in [
            "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/03/04/111122223333_elasticloadbalancing_us-east-1_net.my-nlb.c6e77e28c25b2234_20260304T0915Z_2c3f.log.gz",
            "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2026/03/04/111122223333_elasticloadbalancing_us-east-1_my-clb_20260304T0915Z_10.0.1.7_x.log",
        ] {
            assert_ne!(detected(key).as_deref(), Ok("alb"), "{key}");
        }
        // Near misses: a copy of an access log renamed, a CloudFront object not yet compressed.
        for key in [
            "logs/assets/2026-03-04-12-05-31-1A2B3C4D5E6F7A8B.txt",
            "cf-logs/www/E2QWRUHAPOMQZL.2026-03-04-12.a1b2c3d4",
            // Config's own check that it may write to the bucket.
            "AWSLogs/111122223333/Config/ConfigWritabilityCheckFile",
        ] {
            assert_eq!(detected(key), Err(SkipReason::Unclaimed), "{key}");
        }
    }

    #[test]
    fn skipped_objects_say_why() {
        assert_eq!(
            detected(
                "AWSLogs/o-abc123defg/111122223333/CloudTrail-Digest/us-east-1/2024/05/01/d.json.gz"
            ),
            Err(SkipReason::CloudTrailDigest)
        );
        assert_eq!(detected("random/object.txt"), Err(SkipReason::Unclaimed));
        assert_eq!(detected("AWSLogs/"), Err(SkipReason::Folder));
        let config =
            Config::with_user_file("user.ini", "[vpcflowlogs]\ns3_key_ignored = _fl-skip_\n")
                .expect("config");
        assert_eq!(
            detect(
                &config,
                "AWSLogs/111122223333/vpcflowlogs/us-east-1/2024/05/01/a_fl-skip_b.log.gz"
            )
            .map(|t| t.name.clone()),
            Err(SkipReason::Ignored {
                log_type: "vpcflowlogs".into()
            })
        );
    }

    #[test]
    fn event_keys_are_form_url_decoded() {
        assert_eq!(
            decode_event_key(
                "AWSLogs%2F111122223333%2FCloudWatchLogs%2Fus-east-1%2Fmy+group%2Fx%3D1.json.gz"
            ),
            "AWSLogs/111122223333/CloudWatchLogs/us-east-1/my group/x=1.json.gz"
        );
        assert_eq!(decode_event_key("a%2Bb+c"), "a+b c");
    }

    #[test]
    fn account_and_region_from_the_key() {
        let parts = key_parts("AWSLogs/o-abc123defg/111122223333/CloudTrail/ap-northeast-1/2024/x");
        assert_eq!(parts.account, Some("111122223333"));
        assert_eq!(parts.region, Some("ap-northeast-1"));
        let parts = key_parts("x/AWSLogs/444455556666/WAFLogs/cloudfront/acl/x");
        assert_eq!(parts.account, Some("444455556666"));
        assert_eq!(parts.region, None);
        assert_eq!(key_parts("aws-waf-logs-x/2024/a.gz"), KeyParts::default());
        assert_eq!(
            key_parts("AWSLogs/111122223333/vpcflowlogs/us-gov-west-1/x").region,
            Some("us-gov-west-1")
        );
    }
}
