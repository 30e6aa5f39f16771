//! What "subscribed" means for this deployment: our filter's name, pattern and destination, the
//! log groups that must never be subscribed (they would loop), and the include/exclude lists.

use regex::RegexSet;
use serde::Serialize;

/// Filter name used when `FILTER_NAME` is not set.
pub const DEFAULT_FILTER_NAME: &str = "org-security-logs";

/// Errors in the configuration, reported before any API call.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "the destination ARN is empty: set DESTINATION_ARN (or --destination-arn) to the collector's ARN"
    )]
    MissingDestination,
    #[error("the subscription filter name is empty: set FILTER_NAME (or --filter-name)")]
    MissingFilterName,
    #[error("{list} is not a valid pattern list: {reason}")]
    BadList { list: &'static str, reason: String },
    #[error("{list} holds an invalid regular expression: {reason}")]
    BadRegex { list: &'static str, reason: String },
    #[error(
        "the destination ARN {0:?} is not a subscription destination: expected the ARN of a Lambda function (arn:aws:lambda:<region>:<account>:function:<name>), a Firehose delivery stream, a Kinesis stream or a CloudWatch Logs destination"
    )]
    BadDestination(String),
    #[error(
        "protected log group {0:?} holds a `*` before its end: only a trailing `*` (a name prefix) is supported"
    )]
    BadProtectedGroup(String),
    #[error("SUBSCRIPTION_MODE {0:?} is neither log-group nor account")]
    BadMode(String),
    #[error(
        "INCLUDE_PATTERNS cannot apply in the account mode: an account-level subscription policy can only exclude log groups; use EXCLUDE_PATTERNS or the log-group mode"
    )]
    IncludeInAccountMode,
}

/// Where our subscription lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// A subscription filter on every log group (the default).
    #[default]
    LogGroup,
    /// One account-level subscription filter policy (see [`crate::account`]).
    Account,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Self, SettingsError> {
        match text.trim() {
            "" | "log-group" => Ok(Mode::LogGroup),
            "account" => Ok(Mode::Account),
            other => Err(SettingsError::BadMode(other.to_owned())),
        }
    }
}

/// Raw values as they come from the environment or the command line.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub filter_name: String,
    pub filter_pattern: String,
    /// May hold `{account}` and `{region}` placeholders (used by the coverage report, where each
    /// member account has its own collector).
    pub destination_arn: String,
    pub role_arn: Option<String>,
    /// This function's name: its log group `/aws/lambda/<name>` is never subscribed.
    pub function_name: Option<String>,
    /// The collector's function name when the destination is not a Lambda ARN (or to override it).
    pub collector_function_name: Option<String>,
    /// More log groups that must never be subscribed: exact names, or prefixes ending in `*`
    /// (the central stack's output `PipelineLogGroups` lists the loader's this way).
    pub protected_groups: Vec<String>,
    /// Include regexes: a JSON array of strings, or a comma-separated list.
    pub include: Option<String>,
    /// Exclude regexes, same syntax as `include`.
    pub exclude: Option<String>,
    /// `log-group` (default) or `account`.
    pub mode: String,
}

/// Validated settings. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Settings {
    pub filter_name: String,
    pub filter_pattern: String,
    pub destination_arn: String,
    pub role_arn: Option<String>,
    pub function_name: Option<String>,
    pub mode: Mode,
    protected: Vec<String>,
    include: Option<RegexSet>,
    exclude: Option<RegexSet>,
    collector_function_name: Option<String>,
}

/// Why a log group is not a candidate for our filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// A log group of the pipeline itself (collector, subscriber, loader, delivery streams):
    /// subscribing it would feed the pipeline's own output back into it.
    Protected,
    /// Matches an exclude pattern.
    Excluded,
    /// An include list is set and the group matches none of it.
    NotIncluded,
}

impl Settings {
    pub fn new(raw: RawSettings) -> Result<Self, SettingsError> {
        if raw.destination_arn.trim().is_empty() {
            return Err(SettingsError::MissingDestination);
        }
        if !is_destination_arn(&raw.destination_arn) {
            return Err(SettingsError::BadDestination(raw.destination_arn));
        }
        if raw.filter_name.trim().is_empty() {
            return Err(SettingsError::MissingFilterName);
        }
        if let Some(bad) = raw
            .protected_groups
            .iter()
            .find(|g| g.trim_end_matches('*').contains('*'))
        {
            return Err(SettingsError::BadProtectedGroup(bad.clone()));
        }
        let mode = Mode::parse(&raw.mode)?;
        let include = compile("INCLUDE_PATTERNS", raw.include.as_deref())?;
        if mode == Mode::Account && include.is_some() {
            return Err(SettingsError::IncludeInAccountMode);
        }
        let exclude = compile("EXCLUDE_PATTERNS", raw.exclude.as_deref())?;
        let collector_function_name = raw
            .collector_function_name
            .filter(|n| !n.is_empty())
            .or_else(|| lambda_function_name(&raw.destination_arn).map(str::to_owned));
        let function_name = raw.function_name.filter(|n| !n.is_empty());
        let mut settings = Settings {
            filter_name: raw.filter_name,
            filter_pattern: raw.filter_pattern,
            destination_arn: raw.destination_arn,
            role_arn: raw.role_arn.filter(|r| !r.is_empty()),
            function_name,
            mode,
            protected: Vec::new(),
            include,
            exclude,
            collector_function_name,
        };
        settings.protected = raw
            .protected_groups
            .into_iter()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty() && g != "*")
            .collect();
        settings.refresh_protected();
        Ok(settings)
    }

    fn refresh_protected(&mut self) {
        for name in [&self.collector_function_name, &self.function_name]
            .into_iter()
            .flatten()
        {
            let group = format!("/aws/lambda/{name}");
            if !self.protected.contains(&group) {
                self.protected.push(group);
            }
        }
    }

    /// The settings for one member account and region: `{account}` and `{region}` in the
    /// destination and role ARNs are replaced.
    pub fn for_target(&self, account: &str, region: &str) -> Settings {
        let fill = |s: &str| s.replace("{account}", account).replace("{region}", region);
        let mut out = self.clone();
        out.destination_arn = fill(&self.destination_arn);
        out.role_arn = self.role_arn.as_deref().map(fill);
        if self.collector_function_name.is_none() {
            out.collector_function_name =
                lambda_function_name(&out.destination_arn).map(str::to_owned);
            out.refresh_protected();
        }
        out
    }

    /// Log groups that are never subscribed: names, and prefixes ending in `*`.
    pub fn protected_groups(&self) -> &[String] {
        &self.protected
    }

    /// True for a log group of the pipeline itself, whatever the include and exclude lists say.
    pub fn is_protected(&self, group: &str) -> bool {
        self.protected.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => group.starts_with(prefix),
            None => p == group,
        })
    }

    /// `None` when the group is a candidate, otherwise why it is skipped.
    pub fn skip_reason(&self, group: &str) -> Option<Skip> {
        if self.is_protected(group) {
            return Some(Skip::Protected);
        }
        if self.exclude.as_ref().is_some_and(|set| set.is_match(group)) {
            return Some(Skip::Excluded);
        }
        if self
            .include
            .as_ref()
            .is_some_and(|set| !set.is_match(group))
        {
            return Some(Skip::NotIncluded);
        }
        None
    }
}

/// The function name in a Lambda ARN (`arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
pub fn lambda_function_name(arn: &str) -> Option<&str> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_), Some("lambda"), Some(_), Some(_), Some("function"), Some(name)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (!name.is_empty()).then_some(name)
}

/// True for the ARN of a destination PutSubscriptionFilter accepts. `{account}` and `{region}`
/// placeholders (the coverage report's per-account destinations) count as valid parts.
pub fn is_destination_arn(arn: &str) -> bool {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"^arn:aws[a-z-]*:(?:",
            r"lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9$_-]{1,128})?",
            r"|firehose:[a-z0-9-]+:[0-9]{12}:deliverystream/[A-Za-z0-9_.-]{1,64}",
            r"|kinesis:[a-z0-9-]+:[0-9]{12}:stream/[A-Za-z0-9_.-]{1,128}",
            r"|logs:[a-z0-9-]+:[0-9]{12}:destination:[^:*\s]{1,512}",
            r")$"
        ))
        .ok()
    });
    let filled = arn
        .trim()
        .replace("{account}", "111122223333")
        .replace("{region}", "us-east-1");
    re.as_ref().is_some_and(|re| re.is_match(&filled))
}

/// A list of regexes: a JSON array of strings (needed when a pattern holds a comma), or a
/// comma-separated list. Blank entries are dropped.
pub fn parse_pattern_list(list: &'static str, text: &str) -> Result<Vec<String>, SettingsError> {
    let trimmed = text.trim();
    if trimmed.starts_with('[') {
        let items: Vec<String> =
            serde_json::from_str(trimmed).map_err(|e| SettingsError::BadList {
                list,
                reason: format!("expected a JSON array of strings ({e})"),
            })?;
        Ok(items.into_iter().filter(|s| !s.trim().is_empty()).collect())
    } else {
        Ok(trimmed
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect())
    }
}

fn compile(list: &'static str, text: Option<&str>) -> Result<Option<RegexSet>, SettingsError> {
    let Some(text) = text else { return Ok(None) };
    let patterns = parse_pattern_list(list, text)?;
    if patterns.is_empty() {
        return Ok(None);
    }
    RegexSet::new(&patterns)
        .map(Some)
        .map_err(|e| SettingsError::BadRegex {
            list,
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            filter_name: DEFAULT_FILTER_NAME.into(),
            destination_arn: "arn:aws:lambda:us-east-1:111122223333:function:collector".into(),
            function_name: Some("subscriber".into()),
            ..RawSettings::default()
        }
    }

    #[test]
    fn collector_and_own_groups_are_protected() {
        let s = Settings::new(raw()).unwrap();
        assert_eq!(
            s.skip_reason("/aws/lambda/collector"),
            Some(Skip::Protected)
        );
        assert_eq!(
            s.skip_reason("/aws/lambda/subscriber"),
            Some(Skip::Protected)
        );
        assert_eq!(s.skip_reason("/aws/lambda/collector-other"), None);
    }

    #[test]
    fn qualified_lambda_arn_names_the_function() {
        assert_eq!(
            lambda_function_name("arn:aws:lambda:eu-west-1:1:function:col:live"),
            Some("col")
        );
        assert_eq!(
            lambda_function_name("arn:aws:firehose:eu-west-1:1:deliverystream/x"),
            None
        );
    }

    #[test]
    fn include_and_exclude_lists() {
        let mut r = raw();
        r.include = Some(r#"["^/app/", "^/var/log/secure$"]"#.into());
        r.exclude = Some("^/app/debug, noisy".into());
        let s = Settings::new(r).unwrap();
        assert_eq!(s.skip_reason("/app/web"), None);
        assert_eq!(s.skip_reason("/var/log/secure"), None);
        assert_eq!(s.skip_reason("/app/debug/x"), Some(Skip::Excluded));
        assert_eq!(s.skip_reason("/app/noisy"), Some(Skip::Excluded));
        assert_eq!(s.skip_reason("/other"), Some(Skip::NotIncluded));
    }

    #[test]
    fn pattern_with_comma_needs_json() {
        let list = parse_pattern_list("X", r#"["a{1,3}"]"#).unwrap();
        assert_eq!(list, vec!["a{1,3}".to_owned()]);
        assert!(matches!(
            parse_pattern_list("X", "[not json"),
            Err(SettingsError::BadList { .. })
        ));
    }

    #[test]
    fn bad_regex_is_named() {
        let mut r = raw();
        r.exclude = Some("(".into());
        let err = Settings::new(r).unwrap_err().to_string();
        assert!(err.contains("EXCLUDE_PATTERNS"), "{err}");
    }

    #[test]
    fn pipeline_groups_are_protected_by_name_or_prefix_whatever_the_lists_say() {
        let mut r = raw();
        r.protected_groups = vec![
            "/aws/lambda/org-security-logs-*".into(),
            "/aws/kinesisfirehose/org-security-logs-waf".into(),
            " ".into(),
        ];
        r.include = Some("^/aws/".into());
        let s = Settings::new(r).unwrap();
        for group in [
            "/aws/lambda/org-security-logs-loader",
            "/aws/lambda/org-security-logs-collector",
            "/aws/kinesisfirehose/org-security-logs-waf",
        ] {
            assert_eq!(s.skip_reason(group), Some(Skip::Protected), "{group}");
        }
        assert_eq!(s.skip_reason("/aws/lambda/app"), None);
        assert_eq!(
            s.skip_reason("/aws/kinesisfirehose/org-security-logs-waf-2"),
            None,
            "a name without `*` is exact"
        );
    }

    #[test]
    fn a_star_inside_a_protected_name_is_refused() {
        let mut r = raw();
        r.protected_groups = vec!["/aws/*/loader".into()];
        assert!(matches!(
            Settings::new(r),
            Err(SettingsError::BadProtectedGroup(_))
        ));
    }

    #[test]
    fn destination_must_be_a_subscription_destination_arn() {
        for good in [
            "arn:aws:lambda:eu-west-1:111122223333:function:collector",
            "arn:aws:lambda:eu-west-1:111122223333:function:collector:live",
            "arn:aws-us-gov:lambda:us-gov-west-1:111122223333:function:c",
            "arn:aws:firehose:eu-west-1:111122223333:deliverystream/logs",
            "arn:aws:kinesis:eu-west-1:111122223333:stream/logs",
            "arn:aws:logs:eu-west-1:111122223333:destination:central",
            "arn:aws:lambda:{region}:{account}:function:collector",
        ] {
            assert!(is_destination_arn(good), "{good}");
        }
        for bad in [
            "collector",
            "arn:aws:lambda:eu-west-1:111122223333:collector",
            "arn:aws:s3:::bucket",
            "arn:aws:lambda:eu-west-1:1111:function:collector",
            "arn:aws:lambda:eu-west-1:111122223333:function:",
        ] {
            assert!(!is_destination_arn(bad), "{bad}");
            let mut r = raw();
            r.destination_arn = bad.into();
            let error = Settings::new(r).unwrap_err().to_string();
            assert!(
                error.contains(bad) && error.contains("Lambda function"),
                "{error}"
            );
        }
    }

    #[test]
    fn missing_destination_is_an_error() {
        let mut r = raw();
        r.destination_arn = String::new();
        assert!(matches!(
            Settings::new(r),
            Err(SettingsError::MissingDestination)
        ));
    }

    #[test]
    fn target_placeholders_are_filled() {
        let mut r = raw();
        r.destination_arn = "arn:aws:lambda:{region}:{account}:function:collector".into();
        let s = Settings::new(r)
            .unwrap()
            .for_target("444455556666", "eu-west-1");
        assert_eq!(
            s.destination_arn,
            "arn:aws:lambda:eu-west-1:444455556666:function:collector"
        );
        assert_eq!(
            s.skip_reason("/aws/lambda/collector"),
            Some(Skip::Protected)
        );
    }
}
