//! Which log types a rule's `logsource` names. AWS services go by their Sigma names (`product:
//! aws`, `service: cloudtrail`, the name SigmaHQ's rules use); Linux authentication logs are
//! `product: linux` with `service: auth` or `sshd`; any type of the configuration can also be
//! named by its own section name as the service (`service: apache`).

use crate::config::Config;
use rsigma_parser::LogSource;

/// (product, service) -> the bundled log type.
const KNOWN: &[(&str, &str, &str)] = &[
    ("aws", "cloudtrail", "cloudtrail"),
    ("aws", "vpcflowlogs", "vpcflowlogs"),
    ("aws", "vpcflow", "vpcflowlogs"),
    ("aws", "waf", "waf"),
    ("aws", "securityhub", "securityhub"),
    ("aws", "guardduty", "guardduty"),
    ("aws", "cloudwatch", "cloudwatchlogs"),
    ("aws", "cloudwatchlogs", "cloudwatchlogs"),
    ("linux", "auth", "linux_secure"),
    ("linux", "sshd", "linux_secure"),
];

/// The log types of `config` a rule with this logsource is evaluated on.
pub fn log_types(logsource: &LogSource, config: &Config) -> Vec<String> {
    let product = logsource.product.as_deref().map(str::to_ascii_lowercase);
    let service = logsource.service.as_deref().map(str::to_ascii_lowercase);
    let Some(service) = service else {
        return Vec::new();
    };
    let mut out: Vec<String> = KNOWN
        .iter()
        .filter(|(p, s, _)| product.as_deref() == Some(*p) && *s == service)
        .map(|(_, _, t)| (*t).to_owned())
        .collect();
    if out.is_empty() && config.get(&service).is_some() {
        out.push(service);
    }
    out.retain(|t| config.get(t).is_some());
    out
}

/// `product/service/category` for messages.
pub fn describe(logsource: &LogSource) -> String {
    [
        ("product", &logsource.product),
        ("service", &logsource.service),
        ("category", &logsource.category),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}: {v}")))
    .collect::<Vec<_>>()
    .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(product: Option<&str>, service: Option<&str>) -> LogSource {
        LogSource {
            product: product.map(str::to_owned),
            service: service.map(str::to_owned),
            ..LogSource::default()
        }
    }

    #[test]
    fn sigma_names_and_section_names_pick_the_types() {
        let config = Config::with_user_file(
            "user.ini",
            "[apache]\ns3_key = apache/\nindex_name = log-web-apache\n",
        )
        .expect("config");
        assert_eq!(
            log_types(&source(Some("aws"), Some("cloudtrail")), &config),
            ["cloudtrail"]
        );
        assert_eq!(
            log_types(&source(Some("linux"), Some("auth")), &config),
            ["linux_secure"]
        );
        assert_eq!(
            log_types(&source(Some("web"), Some("apache")), &config),
            ["apache"]
        );
        assert!(log_types(&source(Some("windows"), None), &config).is_empty());
        assert!(log_types(&source(Some("aws"), Some("s3")), &config).is_empty());
        assert_eq!(
            describe(&source(Some("aws"), Some("s3"))),
            "product: aws, service: s3"
        );
    }
}
