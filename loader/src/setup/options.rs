//! The settings of a setup as the command line and the custom resource give them: parts to
//! leave out, retention overrides, the refresh interval. Checked here, for both.

use crate::config::Config;
use crate::content::{self, Artifact, ArtifactKind, Content, ContentError, Options};
use clap::ValueEnum;
use std::collections::BTreeMap;

/// A part of the content that can be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Part {
    /// Component and index templates.
    Templates,
    /// ISM retention policies.
    Retention,
    /// Dashboards saved objects.
    Dashboards,
    /// Alerting monitors of the threshold and sequence rules, and their notification channel.
    Monitors,
    /// The snapshot repository and its snapshot management policy.
    Snapshots,
    /// The security plugin's roles and role mappings of the loader and analysts.
    Security,
}

impl Part {
    pub fn of(kind: ArtifactKind) -> Self {
        match kind {
            ArtifactKind::ComponentTemplate | ArtifactKind::IndexTemplate => Self::Templates,
            ArtifactKind::IsmPolicy => Self::Retention,
            ArtifactKind::SavedObject => Self::Dashboards,
            ArtifactKind::Monitor | ArtifactKind::NotificationChannel => Self::Monitors,
            ArtifactKind::SnapshotRepository | ArtifactKind::SnapshotPolicy => Self::Snapshots,
            ArtifactKind::SecurityRole | ArtifactKind::SecurityRoleMapping => Self::Security,
        }
    }

    /// `templates`, `retention` or `dashboards`.
    pub fn parse(name: &str) -> Result<Self, String> {
        <Self as ValueEnum>::from_str(name.trim(), true).map_err(|_| {
            format!(
                "`{name}` is not a part to skip (templates, retention, dashboards, monitors, snapshots, security)"
            )
        })
    }
}

/// The detection rules whose correlations become monitors, and where the monitors send.
pub struct Detections<'a> {
    pub rules: &'a crate::rules::RuleSet,
    pub monitors: crate::rules::monitors::MonitorOptions,
}

/// The artifacts of a configuration without the parts skipped: the content, then the
/// notification channel and the monitors of `detections`. A correlation that cannot become a
/// monitor is logged with the reason.
pub fn artifacts(
    config: &Config,
    content: &Content,
    options: &Options,
    skip: &[Part],
    detections: Option<&Detections<'_>>,
) -> Result<Vec<Artifact>, ContentError> {
    let mut out = content::plan(config, content, options)?;
    if let Some(d) = detections {
        if let Some(channel) = crate::rules::monitors::channel_artifact(&d.monitors) {
            out.push(channel);
        }
        let (monitors, refused) =
            crate::rules::monitors::monitor_artifacts(d.rules, config, &d.monitors);
        for (rule, reason) in refused {
            tracing::warn!(%rule, %reason, "no monitor for this correlation rule");
        }
        out.extend(monitors);
    }
    Ok(out
        .into_iter()
        .filter(|a| !skip.contains(&Part::of(a.kind)))
        .collect())
}

/// Retention overrides: `DAYS` for every type, `TYPE=DAYS` for one (0 keeps for ever).
pub fn parse_retention(
    config: &Config,
    values: &[String],
) -> Result<BTreeMap<String, u32>, String> {
    let mut out = BTreeMap::new();
    for value in values {
        let (name, days) = match value.split_once('=') {
            Some((name, days)) => (name.trim(), days.trim()),
            None => ("*", value.trim()),
        };
        if name != "*" && name != crate::content::ALERTS && config.get(name).is_none() {
            let known: Vec<&str> = config.types.iter().map(|t| t.name.as_str()).collect();
            return Err(format!(
                "`{name}` is not a log type (known: {}, and {} for the detection alerts)",
                known.join(", "),
                crate::content::ALERTS
            ));
        }
        let days: u32 = days
            .parse()
            .map_err(|_| format!("`{value}` is not DAYS or TYPE=DAYS (0 keeps for ever)"))?;
        out.insert(name.to_owned(), days);
    }
    Ok(out)
}

/// An OpenSearch time (`1s`, `30s`, `500ms`, `1m`), or `-1` (refresh only when asked).
pub fn check_refresh_interval(value: &str) -> Result<(), String> {
    let number_end = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let unit_ok = matches!(
        &value[number_end..],
        "ms" | "s" | "m" | "h" | "d" | "micros" | "nanos"
    );
    if value == "-1" || (number_end > 0 && unit_ok) {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a time such as 1s, 30s or 1m, or -1"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_names_types_or_all() {
        let config = Config::builtin().expect("config");
        let out =
            parse_retention(&config, &["30".into(), "vpcflowlogs = 7".into()]).expect("valid");
        assert_eq!(
            out,
            BTreeMap::from([("*".to_owned(), 30), ("vpcflowlogs".to_owned(), 7)])
        );
        let err = parse_retention(&config, &["nope=3".into()]).expect_err("unknown type");
        assert!(err.contains("nope") && err.contains("cloudtrail"), "{err}");
        let err = parse_retention(&config, &["waf=a year".into()]).expect_err("not days");
        assert!(err.contains("waf=a year"), "{err}");
    }

    #[test]
    fn refresh_intervals_use_opensearch_units() {
        for ok in ["1s", "30s", "500ms", "1m", "-1"] {
            assert!(check_refresh_interval(ok).is_ok(), "{ok}");
        }
        for bad in ["", "s", "30", "30 s", "fast"] {
            assert!(check_refresh_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parts_parse_by_name() {
        assert_eq!(Part::parse(" Retention "), Ok(Part::Retention));
        assert!(Part::parse("mappings").is_err());
    }
}
