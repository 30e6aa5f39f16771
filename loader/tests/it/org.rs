//! Organization context from moto's AWS Organizations: names, unit paths and chosen tags, read
//! directly and through an assumed role, and a document of an unknown account left as it is.

use aws_sdk_organizations as orgs;
use loader::enrich::additions::Additions;
use loader::enrich::files::Files;
use loader::enrich::org::{self, OrgContext, OrgSource};
use serde_json::json;
use std::time::Duration;

/// A management account of its own, so each run makes a new organization.
fn fresh_account() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:012}", 200_000_000_000 + nanos % 700_000_000_000)
}

#[tokio::test]
async fn accounts_units_and_chosen_tags_come_from_organizations() {
    let management = fresh_account();
    let config = tests::moto_config_for_account(&management, "us-east-1").await;
    let client = orgs::Client::new(&config);
    client
        .create_organization()
        .feature_set(orgs::types::OrganizationFeatureSet::All)
        .send()
        .await
        .expect("moto CreateOrganization");
    let root = client.list_roots().send().await.expect("roots").roots()[0]
        .id()
        .expect("root id")
        .to_owned();
    let workloads = tests::organizational_unit(&client, &root, "Workloads").await;
    let prod = tests::organizational_unit(&client, &workloads, "Prod").await;
    let created = client
        .create_account()
        .email("payments@example.com")
        .account_name("prod-payments")
        .send()
        .await
        .expect("moto CreateAccount");
    let account = created
        .create_account_status()
        .and_then(|s| s.account_id())
        .expect("account id")
        .to_owned();
    client
        .move_account()
        .account_id(&account)
        .source_parent_id(&root)
        .destination_parent_id(&prod)
        .send()
        .await
        .expect("moto MoveAccount");
    let tag = |k: &str, v: &str| {
        orgs::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .expect("tag")
    };
    client
        .tag_resource()
        .resource_id(&account)
        .tags(tag("env", "prod"))
        .tags(tag("owner", "payments-team"))
        .tags(tag("cost-center", "1234"))
        .send()
        .await
        .expect("moto TagResource");

    let directory = org::fetch(&client, &["env".to_owned(), "owner".to_owned()])
        .await
        .expect("directory");
    let info = directory.get(&account).expect("the new account");
    assert_eq!(info.name.as_deref(), Some("prod-payments"));
    assert_eq!(info.unit_path.as_deref(), Some("Workloads/Prod"));
    assert_eq!(info.unit_id.as_deref(), Some(prod.as_str()));
    assert_eq!(
        info.tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        [("env", "prod"), ("owner", "payments-team")],
        "only the chosen tags"
    );
    let at_root = directory.get(&management).expect("the management account");
    assert_eq!(at_root.unit_path.as_deref(), Some(""));

    // Through a role assumed in the management account, as a central account would.
    let central = tests::moto_config_for_account(&fresh_account(), "us-east-1").await;
    let context = OrgContext::new(
        OrgSource::Organizations {
            role: Some(format!("arn:aws:iam::{management}:role/OrgRead")),
        },
        vec!["env".to_owned()],
        Duration::from_secs(3600),
    );
    let accounts = context
        .refresh(Some(&central), &Files { s3: None })
        .await
        .expect("read through the role");
    assert!(accounts >= 2, "{accounts}");
    let mut doc: loader::ecs::Doc =
        serde_json::from_value(json!({"cloud": {"account": {"id": account}}})).expect("doc");
    enrich(&context, &mut doc);
    assert_eq!(doc["cloud"]["account"]["name"], "prod-payments");
    assert_eq!(doc["aws"]["organization"]["unit"]["path"], "Workloads/Prod");
    assert_eq!(doc["aws"]["account"]["tags"], json!({"env": "prod"}));

    let unknown = json!({"cloud": {"account": {"id": "999999999999"}}, "event": {"action": "x"}});
    let mut doc: loader::ecs::Doc = serde_json::from_value(unknown.clone()).expect("doc");
    enrich(&context, &mut doc);
    assert_eq!(
        serde_json::Value::Object(doc),
        unknown,
        "an unknown account loads as it is"
    );
}

/// The context of the document's account, as its fields.
fn enrich(context: &OrgContext, doc: &mut loader::ecs::Doc) {
    let mut additions = Additions::default();
    context.current().enrich(doc, &mut additions);
    additions.copy_into(doc);
}
