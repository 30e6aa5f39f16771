//! Refreshing the threat feeds from their publishers: each feed of a list is downloaded, read
//! as [`super::threat`] reads it (a feed with no indicator is refused, so a login page or an
//! error text never replaces a good feed), and put where `THREAT_INTEL_FEEDS` points.
//!
//! The list is TOML:
//!
//! ```toml
//! [[feed]]
//! name = "feodo"
//! url = "https://feodotracker.abuse.ch/downloads/ipblocklist.csv"
//!
//! [[feed]]
//! name = "tor-exits"
//! url = "https://check.torproject.org/exit-addresses"
//! format = "txt"        # txt, csv or json; else the URL's extension, else txt
//! ```

use super::files::{self, Location};
use super::threat::ThreatIntel;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedList {
    #[serde(rename = "feed", default)]
    pub feeds: Vec<FeedSource>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSource {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeedListError {
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

impl FeedList {
    pub fn parse(file: &str, text: &str) -> Result<Self, FeedListError> {
        let invalid = |reason: String| FeedListError::Invalid {
            file: file.to_owned(),
            reason,
        };
        let list: FeedList = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if list.feeds.is_empty() {
            return Err(invalid("no [[feed]]".to_owned()));
        }
        for feed in &list.feeds {
            let name_ok = !feed.name.is_empty()
                && feed
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !name_ok {
                return Err(invalid(format!(
                    "feed name {:?}: letters, digits, `.`, `_` and `-` only (it names the file)",
                    feed.name
                )));
            }
            if !(feed.url.starts_with("https://") || feed.url.starts_with("http://")) {
                return Err(invalid(format!(
                    "feed {}: the url must be http(s)",
                    feed.name
                )));
            }
            if let Some(format) = &feed.format
                && !["txt", "csv", "json"].contains(&format.as_str())
            {
                return Err(invalid(format!(
                    "feed {}: format {format:?} is not txt, csv or json",
                    feed.name
                )));
            }
        }
        Ok(list)
    }
}

impl FeedSource {
    /// The file the feed becomes: its name and its format's extension.
    pub fn file_name(&self) -> String {
        let from_url = self
            .url
            .split(['?', '#'])
            .next()
            .and_then(|path| path.rsplit('/').next())
            .and_then(|last| last.rsplit_once('.'))
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .filter(|ext| ["txt", "csv", "json"].contains(&ext.as_str()));
        let ext = self
            .format
            .clone()
            .or(from_url)
            .unwrap_or_else(|| "txt".to_owned());
        format!("{}.{ext}", self.name)
    }
}

/// What became of one feed.
#[derive(Debug)]
pub enum FeedOutcome {
    Installed {
        name: String,
        indicators: usize,
        target: String,
    },
    Failed {
        name: String,
        reason: String,
    },
}

/// Downloads every feed of `list` and puts the good ones at `location`; one failing feed does
/// not stop the others (the file it would have replaced stays).
pub async fn update(
    list: &FeedList,
    location: &Location,
    s3: Option<&aws_sdk_s3::Client>,
) -> Vec<FeedOutcome> {
    let client = match reqwest::Client::builder()
        .user_agent(concat!(
            "org-security-logs-loader/",
            env!("CARGO_PKG_VERSION")
        ))
        .timeout(std::time::Duration::from_secs(120))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            return list
                .feeds
                .iter()
                .map(|f| FeedOutcome::Failed {
                    name: f.name.clone(),
                    reason: e.to_string(),
                })
                .collect();
        }
    };
    let mut outcomes = Vec::new();
    for feed in &list.feeds {
        let failed = |reason: String| FeedOutcome::Failed {
            name: feed.name.clone(),
            reason,
        };
        let bytes = match download(&client, &feed.url).await {
            Ok(bytes) => bytes,
            Err(reason) => {
                outcomes.push(failed(reason));
                continue;
            }
        };
        let file = feed.file_name();
        let indicators = match ThreatIntel::default().add_feed(&file, &bytes) {
            Ok(summary) => summary.indicators,
            Err(e) => {
                outcomes.push(failed(e.to_string()));
                continue;
            }
        };
        match files::write(location, s3, &file, bytes).await {
            Ok(target) => outcomes.push(FeedOutcome::Installed {
                name: feed.name.clone(),
                indicators,
                target,
            }),
            Err(e) => outcomes.push(failed(e.to_string())),
        }
    }
    outcomes
}

async fn download(client: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: the download failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: the publisher answered {status}"));
    }
    response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .map_err(|e| format!("{url}: the download broke off: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_list_names_files_and_refuses_what_it_cannot_use() {
        let list = FeedList::parse(
            "feeds.toml",
            "[[feed]]\nname = \"feodo\"\nurl = \"https://x.example/ipblocklist.csv?v=1\"\n\n[[feed]]\nname = \"tor-exits\"\nurl = \"https://x.example/exit-addresses\"\n\n[[feed]]\nname = \"otx\"\nurl = \"https://x.example/pulse\"\nformat = \"json\"\n",
        )
        .expect("list");
        let names: Vec<String> = list.feeds.iter().map(FeedSource::file_name).collect();
        assert_eq!(names, ["feodo.csv", "tor-exits.txt", "otx.json"]);
        for (text, why) in [
            ("", "no [[feed]]"),
            (
                "[[feed]]\nname = \"../x\"\nurl = \"https://a\"\n",
                "letters",
            ),
            (
                "[[feed]]\nname = \"x\"\nurl = \"file:///etc/passwd\"\n",
                "http(s)",
            ),
            (
                "[[feed]]\nname = \"x\"\nurl = \"https://a\"\nformat = \"xml\"\n",
                "not txt",
            ),
            (
                "[[feed]]\nname = \"x\"\nurl = \"https://a\"\nextra = 1\n",
                "unknown field",
            ),
        ] {
            let err = FeedList::parse("feeds.toml", text)
                .expect_err(why)
                .to_string();
            assert!(
                err.contains("feeds.toml") && err.contains(why),
                "{why}: {err}"
            );
        }
    }
}
