//! Where a CloudTrail object may come from. The organization trail writes its objects at
//! `AWSLogs/<org id>/<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<time>_<random>.json.gz`
//! (`CloudTrail-Insight` for Insight events), a prefix only the trail can write. Member
//! accounts can write under `AWSLogs/<their account>/`, which the `[cloudtrail]` key pattern
//! also accepts (account trails), so once the organization id is known, a CloudTrail object
//! anywhere else may be forged: it is refused before it is read.

use crate::config::{LogType, ParserKind};
use regex::Regex;
use std::sync::OnceLock;

/// An AWS Organizations id, `o-` and 10 to 32 lowercase letters or digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OrganizationId(String);

/// A value that is not an organization id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{value:?} is not an AWS Organizations id (o- followed by 10 to 32 lowercase letters or digits)"
)]
pub struct BadOrganizationId {
    pub value: String,
}

impl OrganizationId {
    pub fn parse(value: &str) -> Result<Self, BadOrganizationId> {
        let value = value.trim();
        let valid = value.strip_prefix("o-").is_some_and(|id| {
            (10..=32).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(BadOrganizationId {
                value: value.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for OrganizationId {
    type Err = BadOrganizationId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl std::fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What is wrong with a CloudTrail key, as far as the organization trail is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// `AWSLogs/<12 digits>/...`: an account trail's layout, or anything a member account put
    /// under its own prefix (a nested `AWSLogs/o-.../` included).
    MemberPrefix,
    /// `AWSLogs/<another o- id>/...`.
    OtherOrganization(String),
    /// Not under `AWSLogs/` at the start of the key.
    NotAtStart,
    /// Under the organization's prefix, but not in the trail's layout.
    Layout(&'static str),
    AccountMismatch {
        path: String,
        file: String,
    },
    SourceMismatch {
        path: String,
        file: String,
    },
    RegionMismatch {
        path: String,
        file: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MemberPrefix => f.write_str("this key is writable by a member account"),
            Self::OtherOrganization(other) => {
                write!(f, "this key is under another organization ({other})")
            }
            Self::NotAtStart => f.write_str("this key does not start with AWSLogs/"),
            Self::Layout(what) => write!(f, "this key does not follow the trail's layout: {what}"),
            Self::AccountMismatch { path, file } => write!(
                f,
                "this key names account {path} in its path but {file} in its file name"
            ),
            Self::SourceMismatch { path, file } => {
                write!(f, "this key is under {path}/ but its file name says {file}")
            }
            Self::RegionMismatch { path, file } => write!(
                f,
                "this key names region {path} in its path but {file} in its file name"
            ),
        }
    }
}

/// Why an object is refused: it can never be loaded as it is, so it is not retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub organization: OrganizationId,
    pub problem: Problem,
}

impl Refusal {
    /// The reason without the leading `refused: `; the same for every key with the same problem,
    /// so a summary can count objects by it.
    pub fn reason(&self) -> String {
        format!(
            "CloudTrail objects must come from the organization trail of {org} (AWSLogs/{org}/<account>/CloudTrail/<region>/...); {problem}",
            org = self.organization,
            problem = self.problem
        )
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused: {}", self.reason())
    }
}

/// Whether an object of `log_type` at `key` may be loaded: with an organization id, a
/// CloudTrail object only from the organization trail's layout; anything else always.
pub fn check(
    organization: Option<&OrganizationId>,
    log_type: &LogType,
    key: &str,
) -> Result<(), Refusal> {
    match (organization, log_type.parser) {
        (Some(org), Some(ParserKind::CloudTrail)) => check_cloudtrail_key(org, key),
        _ => Ok(()),
    }
}

/// Checks that `key` is where the organization trail of `organization` writes: anchored at the
/// start, `AWSLogs/<org>/<account>/CloudTrail(-Insight)/<region>/YYYY/MM/DD/` and a file name
/// `<account>_CloudTrail(-Insight)_<region>_...` naming the same account, source and region.
pub fn check_cloudtrail_key(organization: &OrganizationId, key: &str) -> Result<(), Refusal> {
    trail_problem(organization.as_str(), key).map_or(Ok(()), |problem| {
        Err(Refusal {
            organization: organization.clone(),
            problem,
        })
    })
}

fn trail_problem(org: &str, key: &str) -> Option<Problem> {
    let Some(rest) = key.strip_prefix("AWSLogs/") else {
        return Some(Problem::NotAtStart);
    };
    let (owner, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if owner != org {
        return Some(if is_account(owner) {
            Problem::MemberPrefix
        } else if owner.starts_with("o-") {
            Problem::OtherOrganization(owner.to_owned())
        } else {
            Problem::Layout("no organization id after AWSLogs/")
        });
    }
    let mut parts = rest.split('/');
    let mut next = || parts.next().unwrap_or("");
    let account = next();
    if !is_account(account) {
        return Some(Problem::Layout(
            "no 12-digit account after the organization id",
        ));
    }
    let source = next();
    if source != "CloudTrail" && source != "CloudTrail-Insight" {
        return Some(Problem::Layout(
            "no CloudTrail/ or CloudTrail-Insight/ after the account",
        ));
    }
    let region = next();
    if !is_region(region) {
        return Some(Problem::Layout("no region after the CloudTrail folder"));
    }
    let (year, month, day) = (next(), next(), next());
    if !is_number(year, 4, 1, 9999) || !is_number(month, 2, 1, 12) || !is_number(day, 2, 1, 31) {
        return Some(Problem::Layout("no YYYY/MM/DD date after the region"));
    }
    let file = next();
    if file.is_empty() || parts.next().is_some() {
        return Some(Problem::Layout("no file name right after the date"));
    }
    let mut fields = file.splitn(4, '_');
    let (file_account, file_source, file_region, tail) = (
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
    );
    if tail.is_empty() {
        return Some(Problem::Layout(
            "the file name is not <account>_<source>_<region>_...",
        ));
    }
    if file_account != account {
        return Some(Problem::AccountMismatch {
            path: account.to_owned(),
            file: file_account.to_owned(),
        });
    }
    if file_source != source {
        return Some(Problem::SourceMismatch {
            path: source.to_owned(),
            file: file_source.to_owned(),
        });
    }
    if file_region != region {
        return Some(Problem::RegionMismatch {
            path: region.to_owned(),
            file: file_region.to_owned(),
        });
    }
    None
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `us-gov-west-1`, `us-isob-east-1`, ...
fn is_region(s: &str) -> bool {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(s))
}

/// Exactly `digits` ASCII digits, between `min` and `max`.
fn is_number(s: &str, digits: usize, min: u32, max: u32) -> bool {
    s.len() == digits
        && s.bytes().all(|b| b.is_ascii_digit())
        && s.parse::<u32>().is_ok_and(|n| (min..=max).contains(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORG: &str = "o-abc123defg";

    fn org() -> OrganizationId {
        OrganizationId::parse(ORG).expect("organization id")
    }

    fn check(key: &str) -> Result<(), Problem> {
        check_cloudtrail_key(&org(), key).map_err(|r| r.problem)
    }

    const TRUSTED: &str = "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0005Z_AbCdEf123.json.gz";

    #[test]
    fn the_organization_trail_layout_is_trusted() {
        assert_eq!(check(TRUSTED), Ok(()));
        assert_eq!(
            check(
                "AWSLogs/o-abc123defg/444455556666/CloudTrail/us-gov-west-1/2025/12/31/444455556666_CloudTrail_us-gov-west-1_20251231T2355Z_x.json.gz"
            ),
            Ok(())
        );
    }

    #[test]
    fn insight_objects_are_trusted_in_their_own_layout() {
        assert_eq!(
            check(
                "AWSLogs/o-abc123defg/111122223333/CloudTrail-Insight/eu-west-1/2024/05/01/111122223333_CloudTrail-Insight_eu-west-1_20240501T0000Z_x.json.gz"
            ),
            Ok(())
        );
        assert_eq!(
            check(
                "AWSLogs/o-abc123defg/111122223333/CloudTrail-Insight/eu-west-1/2024/05/01/111122223333_CloudTrail_eu-west-1_20240501T0000Z_x.json.gz"
            ),
            Err(Problem::SourceMismatch {
                path: "CloudTrail-Insight".into(),
                file: "CloudTrail".into()
            })
        );
    }

    #[test]
    fn the_account_trail_layout_is_refused_as_member_writable() {
        let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/05/01/111122223333_CloudTrail_us-east-1_20240501T0000Z_x.json.gz";
        let refusal = check_cloudtrail_key(&org(), key).expect_err("account trail");
        assert_eq!(refusal.problem, Problem::MemberPrefix);
        assert_eq!(
            format!("s3://b/{key}: {refusal}"),
            format!(
                "s3://b/{key}: refused: CloudTrail objects must come from the organization trail of o-abc123defg (AWSLogs/o-abc123defg/<account>/CloudTrail/<region>/...); this key is writable by a member account"
            )
        );
    }

    #[test]
    fn a_forged_organization_prefix_nested_below_a_member_prefix_is_refused() {
        assert_eq!(
            check(&format!("AWSLogs/111122223333/anything/{TRUSTED}")),
            Err(Problem::MemberPrefix)
        );
        assert_eq!(check(&format!("x/{TRUSTED}")), Err(Problem::NotAtStart));
    }

    #[test]
    fn another_organization_is_refused() {
        let key = TRUSTED.replace(ORG, "o-zzz999yyyy");
        assert_eq!(
            check(&key),
            Err(Problem::OtherOrganization("o-zzz999yyyy".into()))
        );
        let refusal = check_cloudtrail_key(&org(), &key).expect_err("other org");
        assert!(refusal.to_string().contains("o-zzz999yyyy"), "{refusal}");
    }

    #[test]
    fn an_account_in_the_file_name_that_differs_from_the_path_is_refused() {
        let key = TRUSTED.replacen("/111122223333_CloudTrail", "/444455556666_CloudTrail", 1);
        assert_eq!(
            check(&key),
            Err(Problem::AccountMismatch {
                path: "111122223333".into(),
                file: "444455556666".into()
            })
        );
    }

    #[test]
    fn a_region_in_the_file_name_that_differs_from_the_path_is_refused() {
        let key = TRUSTED.replacen("_us-east-1_", "_eu-west-1_", 1);
        assert_eq!(
            check(&key),
            Err(Problem::RegionMismatch {
                path: "us-east-1".into(),
                file: "eu-west-1".into()
            })
        );
    }

    #[test]
    fn other_departures_from_the_layout_are_named() {
        let cases = [
            (
                "AWSLogs/o-abc123defg/1111/CloudTrail/us-east-1/2024/05/01/1111_CloudTrail_us-east-1_t_x.json.gz",
                "12-digit account",
            ),
            (
                "AWSLogs/o-abc123defg/111122223333/vpcflowlogs/us-east-1/2024/05/01/f.log.gz",
                "CloudTrail/",
            ),
            (
                "AWSLogs/o-abc123defg/111122223333/CloudTrail/global/2024/05/01/111122223333_CloudTrail_global_t_x.json.gz",
                "region",
            ),
            (
                "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/13/01/111122223333_CloudTrail_us-east-1_t_x.json.gz",
                "YYYY/MM/DD",
            ),
            (
                "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/extra/111122223333_CloudTrail_us-east-1_t_x.json.gz",
                "file name right after the date",
            ),
            (
                "AWSLogs/o-abc123defg/111122223333/CloudTrail/us-east-1/2024/05/01/events.json.gz",
                "<account>_<source>_<region>_",
            ),
            ("AWSLogs/", "organization id"),
        ];
        for (key, needle) in cases {
            let refusal = check_cloudtrail_key(&org(), key).expect_err(key);
            assert!(
                matches!(refusal.problem, Problem::Layout(_)),
                "{key}: {refusal:?}"
            );
            assert!(refusal.to_string().contains(needle), "{key}: {refusal}");
        }
    }

    #[test]
    fn organization_ids_are_validated() {
        assert_eq!(org().as_str(), ORG);
        assert_eq!(
            " o-abc123defg "
                .parse::<OrganizationId>()
                .map(|o| o.to_string()),
            Ok(ORG.to_owned())
        );
        for bad in [
            "",
            "o-",
            "o-short",
            "abc123defg12",
            "o-ABC123DEFG",
            "o-abc123defg/x",
        ] {
            let err = OrganizationId::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("Organizations id"), "{err}");
        }
    }
}
