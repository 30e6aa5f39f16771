//! Detection rules on the command line: which rules a load evaluates (`--rules DIR`,
//! `--disable-rule ID`, `--no-rules`), and `loader rules list|test`.

use super::{CliError, load_config};
use crate::config::Config;
use crate::pipeline::Pipeline;
use crate::rules::testing::{self, RuleTests};
use crate::rules::{RuleSet, bundled_tests};
use chrono::Utc;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// The rules of a command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RuleArgs {
    /// A folder of Sigma rules, local or `s3://bucket/prefix/` (`*.yml`, searched
    /// recursively; a checkout of SigmaHQ's `rules/cloud/aws/` works as it is), evaluated
    /// next to the bundled pack. Repeatable.
    #[arg(long = "rules", value_name = "DIR|s3://...")]
    pub rules: Vec<String>,
    /// Leave out the rule of this id. Repeatable.
    #[arg(long = "disable-rule", value_name = "ID")]
    pub disable_rule: Vec<String>,
    /// Evaluate no rule (no alert documents).
    #[arg(long, conflicts_with_all = ["rules", "disable_rule"])]
    pub no_rules: bool,
}

/// Every `*.yml`/`*.yaml` under `folder` (and `*.tests.json` with `tests`), by path: the same
/// walk as the folders a load reads; an `s3://bucket/prefix/` folder is read from S3 the way
/// the Lambda reads it.
fn files_under(folder: &str, tests: bool) -> Result<Vec<(String, String)>, CliError> {
    if let Some((bucket, prefix)) = crate::lambda::settings::s3_folder(folder) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        return runtime.block_on(async {
            let s3 = shared::aws::s3_client(&shared::aws::sdk_config().await);
            crate::lambda::settings::read_rule_folder_s3(&s3, &bucket, &prefix, tests)
                .await
                .map_err(|e| CliError::Rules(e.to_string()))
        });
    }
    let dir = Path::new(folder);
    let mut out = Vec::new();
    for (path, _) in super::objects(dir)? {
        let name = path.to_string_lossy().into_owned();
        let wanted = if tests {
            name.ends_with(".tests.json")
        } else {
            name.ends_with(".yml") || name.ends_with(".yaml")
        };
        if wanted {
            let text = std::fs::read_to_string(&path).map_err(|source| CliError::Read {
                path: name.clone(),
                source,
            })?;
            out.push((name, text));
        }
    }
    Ok(out)
}

/// Where alerts are published besides the alert index.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AlertArgs {
    /// Publish the alerts a load creates, at or above `--alert-min-level`, to this SNS topic.
    #[arg(long, env = "ALERT_TOPIC_ARN", value_name = "ARN")]
    pub alert_topic: Option<String>,
    /// The lowest Sigma level published: informational, low, medium, high (default) or
    /// critical.
    #[arg(
        long,
        env = "ALERT_MIN_LEVEL",
        value_name = "LEVEL",
        requires = "alert_topic"
    )]
    pub alert_min_level: Option<String>,
}

impl AlertArgs {
    /// The notification settings, when a topic is given.
    pub fn settings(&self) -> Result<Option<crate::notify::NotifySettings>, CliError> {
        let Some(topic) = self.alert_topic.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Ok(None);
        };
        crate::notify::NotifySettings::new(topic, self.alert_min_level.as_deref())
            .map(Some)
            .map_err(|e| CliError::Rules(e.to_string()))
    }
}

/// The bundled pack and the user's folders; problems are logged, one per rule, and the rest
/// loads.
pub fn load_rules(config: &Config, args: &RuleArgs) -> Result<Option<Arc<RuleSet>>, CliError> {
    if args.no_rules {
        return Ok(None);
    }
    let mut user = Vec::new();
    for dir in &args.rules {
        user.extend(files_under(dir, false)?);
    }
    Ok(Some(Arc::new(RuleSet::with_bundled(
        config,
        &user,
        &args.disable_rule,
    ))))
}

/// `loader rules list`: one line per rule, then the problems.
pub fn list(config: Option<&Path>, args: &RuleArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let config = load_config(config)?;
    let Some(set) = load_rules(&config, args)? else {
        return Ok(());
    };
    for r in set.rules() {
        writeln!(
            out,
            "{:<36}  {:<13}  {:<16}  {:<28}  {}  ({})",
            r.id,
            r.level,
            r.kind.label(),
            r.log_types.join(","),
            r.title,
            r.file
        )
        .map_err(CliError::Write)?;
    }
    for p in set.problems() {
        writeln!(out, "LEFT OUT  {p}").map_err(CliError::Write)?;
    }
    writeln!(
        out,
        "{} rule(s), {} left out",
        set.rules().len(),
        set.problems().len()
    )
    .map_err(CliError::Write)
}

/// `loader rules test`: every rule's own test events, bundled and the user's.
pub fn test(config: Option<&Path>, args: &RuleArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let config = load_config(config)?;
    let Some(set) = load_rules(&config, args)? else {
        return Ok(());
    };
    let pipeline = Pipeline::new(config);
    let mut tests: Vec<(String, String)> = bundled_tests()
        .into_iter()
        .map(|(f, t)| (f, t.to_owned()))
        .collect();
    for dir in &args.rules {
        tests.extend(files_under(dir, true)?);
    }
    let mut failed = 0;
    let mut passed = 0;
    for (file, text) in &tests {
        if testing::rule_file_of(file).is_none() {
            continue;
        }
        let ids = testing::rule_ids_for(&set, file);
        let failures = match RuleTests::parse(file, text) {
            Err(e) => vec![e],
            Ok(_) if ids.is_empty() => vec!["no loaded rule in its rule file".to_owned()],
            Ok(t) => testing::run(&pipeline, &set, &ids, &t, Utc::now()),
        };
        if failures.is_empty() {
            passed += 1;
        } else {
            failed += 1;
            for f in failures {
                writeln!(out, "FAILED {file}: {f}").map_err(CliError::Write)?;
            }
        }
    }
    let untested: Vec<&str> = set
        .rules()
        .iter()
        .filter(|r| !testing::has_tests(tests.iter().map(|(t, _)| t.as_str()), &r.file))
        .map(|r| r.file.as_str())
        .collect();
    writeln!(
        out,
        "{passed} passed, {failed} failed ({} rule file(s) without tests)",
        untested.len()
    )
    .map_err(CliError::Write)?;
    if failed > 0 {
        return Err(CliError::TestFailed(format!(
            "{failed} rule test file(s) failed"
        )));
    }
    Ok(())
}
