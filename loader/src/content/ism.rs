//! Retention: one Index State Management policy per index, from `retention.json`.
//!
//! ISM measures an index's age from its creation, and a rotated index is created by its first
//! event but holds events until its period ends. So an index is deleted `retention + one
//! period` after its creation: no event is deleted before it is `retention` days old. The
//! policy's `ism_template` attaches it to every new index of the pattern.

use super::{Artifact, ArtifactKind, ContentError, IndexGroup, substitute::substitute};
use crate::config::Rotation;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The policy id of an index.
pub fn policy_id(group: &IndexGroup) -> String {
    format!("{}-retention", group.alias)
}

/// Days an index of this rotation receives events (the longest month, an ISO year of 53 weeks).
pub fn period_days(rotation: Rotation) -> u32 {
    match rotation {
        Rotation::Daily => 1,
        Rotation::Weekly => 7,
        Rotation::Monthly => 31,
        Rotation::Yearly => 366,
    }
}

/// The policy of an index, or `None` when it is kept for ever.
pub fn retention_policy(
    template: &Value,
    group: &IndexGroup,
) -> Result<Option<Artifact>, ContentError> {
    let Some(days) = group.retention_days else {
        return Ok(None);
    };
    let delete_after = days.saturating_add(period_days(group.rotation));
    let values = BTreeMap::from([
        ("alias", json!(group.alias)),
        ("index_pattern", json!(group.pattern())),
        ("priority", json!(group.priority())),
        ("retention_days", json!(days)),
        ("delete_after", json!(format!("{delete_after}d"))),
    ]);
    let body = substitute(template, &values)
        .map_err(|reason| ContentError::file("retention.json", reason))?;
    if body.get("policy").and_then(Value::as_object).is_none() {
        return Err(ContentError::file(
            "retention.json",
            "the policy must be under a top-level `policy` object",
        ));
    }
    Ok(Some(Artifact {
        kind: ArtifactKind::IsmPolicy,
        name: policy_id(group),
        body,
        existing: Some(group.existing()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::Content;

    fn group(days: Option<u32>, rotation: Rotation) -> IndexGroup {
        IndexGroup {
            alias: "log-aws-cloudtrail".into(),
            types: vec!["cloudtrail".into()],
            rotation,
            retention_days: days,
        }
    }

    #[test]
    fn the_policy_deletes_after_retention_plus_one_period_and_attaches_by_pattern() {
        let template = Content::bundled().expect("content").retention;
        let policy = retention_policy(&template, &group(Some(365), Rotation::Monthly))
            .expect("valid")
            .expect("a policy");
        assert_eq!(policy.name, "log-aws-cloudtrail-retention");
        let p = &policy.body["policy"];
        assert_eq!(
            p["states"][0]["transitions"][0]["conditions"]["min_index_age"],
            json!("396d")
        );
        assert_eq!(p["states"][1]["actions"][0], json!({"delete": {}}));
        assert_eq!(
            p["ism_template"],
            json!([{"index_patterns": ["log-aws-cloudtrail-*"], "priority": 118}])
        );
        assert!(
            p["description"]
                .as_str()
                .is_some_and(|d| d.contains("365 days") && d.contains("log-aws-cloudtrail")),
            "{}",
            p["description"]
        );
        let daily = retention_policy(&template, &group(Some(7), Rotation::Daily))
            .expect("valid")
            .expect("a policy");
        assert_eq!(
            daily.body["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"],
            json!("8d")
        );
    }

    #[test]
    fn kept_for_ever_means_no_policy() {
        let template = Content::bundled().expect("content").retention;
        assert_eq!(
            retention_policy(&template, &group(None, Rotation::Monthly)).expect("valid"),
            None
        );
    }
}
