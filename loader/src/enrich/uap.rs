//! uap-core's patterns, compiled one at a time as agents need them.
//!
//! Compiling all of uap-core's thousand-odd patterns takes a tenth of a second of CPU: a fifth
//! of a 25,000-record CloudTrail or WAF load, paid by every process that meets one agent. The
//! agents of an account's logs match only a handful. So each list (agents, systems, devices)
//! keeps the prefilter ua-parser itself uses (the literals a pattern cannot match without,
//! found by Aho-Corasick), which is built from the patterns' syntax without compiling them, and
//! compiles a pattern only when the prefilter names it for an agent, in list order, until one
//! matches. Each compiled pattern is a one-parser ua-parser extractor, so what an agent yields
//! is what ua-parser makes of it with the whole list: the first pattern that matches, resolved
//! by ua-parser's own rules.

use aho_corasick::AhoCorasick;
use regex_filtered::{mapper, model::Model};
use std::sync::{Mutex, OnceLock};

/// One of uap-core's three lists, as ua-parser reads it.
pub trait Kind {
    type Parser: Send;
    type Extractor: Send + Sync;
    type Value;
    /// The shortest literal the prefilter looks for (ua-parser's: 3, and 2 for devices).
    const MIN_ATOM_LEN: usize;
    fn regex(parser: &Self::Parser) -> &str;
    fn case_insensitive(parser: &Self::Parser) -> bool;
    /// A one-parser extractor.
    fn compile(parser: Self::Parser) -> Result<Self::Extractor, String>;
    fn extract(extractor: &Self::Extractor, agent: &str) -> Option<Self::Value>;
}

/// A list whose prefilter is built at its first agent, and whose patterns compile at first
/// need: an AWS tool's agent never reads the browsers' list.
pub struct LazyList<K: Kind> {
    parsers: Mutex<Option<Vec<K::Parser>>>,
    /// `None` when the patterns cannot be read (said once; the list then matches nothing).
    index: OnceLock<Option<Index<K>>>,
}

struct Index<K: Kind> {
    prefilter: AhoCorasick,
    mapper: mapper::Mapper,
    slots: Vec<Slot<K>>,
}

struct Slot<K: Kind> {
    /// Taken when the pattern compiles.
    parser: Mutex<Option<K::Parser>>,
    /// `None` when the pattern cannot compile (said once; it then matches nothing).
    compiled: OnceLock<Option<K::Extractor>>,
}

impl<K: Kind> LazyList<K> {
    pub fn new(parsers: Vec<K::Parser>) -> Self {
        Self {
            parsers: Mutex::new(Some(parsers)),
            index: OnceLock::new(),
        }
    }

    /// What the first matching pattern makes of the agent.
    pub fn extract(&self, agent: &str) -> Option<K::Value> {
        let index = self.index()?;
        let found = index
            .prefilter
            .find_overlapping_iter(agent)
            .map(|m| m.pattern().as_usize());
        // In list order (the mapper sorts them): the first pattern that matches wins.
        index
            .mapper
            .atom_to_re(found)
            .into_iter()
            .find_map(|i| K::extract(index.slots.get(i)?.compiled()?, agent))
    }

    fn index(&self) -> Option<&Index<K>> {
        self.index
            .get_or_init(|| {
                let parsers = take(&self.parsers)?;
                Index::new(parsers)
                    .map_err(|e| {
                        tracing::warn!(
                            "the user-agent patterns cannot be read ({e}); documents load without the names they give"
                        );
                    })
                    .ok()
            })
            .as_ref()
    }

    /// Reads the whole list now; the error says which pattern does not parse.
    #[cfg(test)]
    pub fn check(self) -> Result<(), String> {
        let parsers = self
            .parsers
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .unwrap_or_default();
        let index = Index::<K>::new(parsers)?;
        for slot in &index.slots {
            if slot.compiled().is_none() {
                return Err("a pattern does not compile".to_owned());
            }
        }
        Ok(())
    }

    /// How many patterns have been compiled so far.
    #[cfg(test)]
    pub fn compiled_count(&self) -> usize {
        self.index
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |index| {
                index
                    .slots
                    .iter()
                    .filter(|s| s.compiled.get().is_some())
                    .count()
            })
    }
}

impl<K: Kind> Index<K> {
    /// Reads every pattern's syntax and builds the prefilter; nothing is compiled.
    fn new(parsers: Vec<K::Parser>) -> Result<Self, String> {
        let mut atoms = mapper::Builder::new(K::MIN_ATOM_LEN);
        for parser in &parsers {
            let regex = K::regex(parser);
            let hir = regex_syntax::ParserBuilder::new()
                .case_insensitive(K::case_insensitive(parser))
                .build()
                .parse(regex)
                .map_err(|e| format!("pattern `{regex}`: {e}"))?;
            let model = Model::new(&hir).map_err(|e| format!("pattern `{regex}`: {e}"))?;
            atoms.push(model);
        }
        let (mapper, atoms) = atoms.build();
        let prefilter = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .prefilter(true)
            .build(atoms)
            .map_err(|e| format!("the patterns' prefilter: {e}"))?;
        let slots = parsers
            .into_iter()
            .map(|parser| Slot {
                parser: Mutex::new(Some(parser)),
                compiled: OnceLock::new(),
            })
            .collect();
        Ok(Self {
            prefilter,
            mapper,
            slots,
        })
    }
}

impl<K: Kind> Slot<K> {
    fn compiled(&self) -> Option<&K::Extractor> {
        self.compiled
            .get_or_init(|| {
                let parser = take(&self.parser)?;
                let regex = K::regex(&parser).to_owned();
                K::compile(parser)
                    .map_err(|e| {
                        tracing::warn!(
                            "user-agent pattern `{regex}` does not compile ({e}); it is skipped"
                        );
                    })
                    .ok()
            })
            .as_ref()
    }
}

/// What a cell holds until it is first needed; a panic of another thread holding the lock does
/// not lose it.
fn take<T>(cell: &Mutex<Option<T>>) -> Option<T> {
    cell.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// A list of ua-parser's module `$module`: its parsers, one-parser extractors and values.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, $module:ident, $min_atom_len:expr, $case_insensitive:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl Kind for $name {
            type Parser = ua_parser::$module::Parser<'static>;
            type Extractor = ua_parser::$module::Extractor<'static>;
            type Value = ua_parser::$module::Value;
            const MIN_ATOM_LEN: usize = $min_atom_len;
            fn regex(parser: &Self::Parser) -> &str {
                &parser.regex
            }
            fn case_insensitive(parser: &Self::Parser) -> bool {
                let case_insensitive: fn(&Self::Parser) -> bool = $case_insensitive;
                case_insensitive(parser)
            }
            fn compile(parser: Self::Parser) -> Result<Self::Extractor, String> {
                ua_parser::$module::Builder::new()
                    .push(parser)
                    .map_err(|e| e.to_string())?
                    .build()
                    .map_err(|e| e.to_string())
            }
            fn extract(extractor: &Self::Extractor, agent: &str) -> Option<Self::Value> {
                extractor.extract(agent).map(|v| v.into_owned())
            }
        }
    };
}

kind!(
    /// Browsers and other programs.
    Agents, user_agent, 3, |_| false
);
kind!(
    /// Operating systems.
    Systems, os, 3, |_| false
);
kind!(
    /// Devices: the only list whose patterns may ask for case-insensitive matching.
    Devices,
    device,
    2,
    |parser| parser.regex_flag == Some(ua_parser::device::Flag::IgnoreCase)
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Agents of many kinds: browsers on every platform, phones and tablets, bots, libraries,
    /// AWS tools, and strings that are no agent at all.
    const AGENTS: &[&str] = &[
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 5.1; Trident/4.0)",
        "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0",
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36 OPR/107.0.0.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.101 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; U; Android 4.0.3; ko-kr; LG-L160L Build/IML74K) AppleWebkit/534.30 (KHTML, like Gecko) Version/4.0 Mobile Safari/534.30",
        "Mozilla/5.0 (Linux; Android 11; Redmi Note 8 Pro) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/118.2.3 like Chrome/118.0.5993.117 Safari/537.36",
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/538.1 (KHTML, like Gecko) Version/6.0 TV Safari/538.1",
        "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.14977",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 zgrab/0.x",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "sqlmap/1.8#stable (https://sqlmap.org)",
        "Nmap Scripting Engine; https://nmap.org/book/nse.html",
        "curl/8.5.0",
        "Wget/1.21.4",
        "python-requests/2.31.0",
        "Python-urllib/3.11",
        "Go-http-client/1.1",
        "okhttp/4.12.0",
        "Java/17.0.10",
        "Apache-HttpClient/4.5.14 (Java/17.0.10)",
        "PostmanRuntime/7.36.1",
        "ELB-HealthChecker/2.0",
        "Amazon CloudFront",
        "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "grpc-go/1.60.1",
        "kubectl/v1.30.1 (linux/amd64) kubernetes/abc",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/ec2.start-instances",
        "aws-cli/1.32.0 Python/3.9.16 Windows/10 botocore/1.34.0",
        "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.5.0 lang/python#3.12.2",
        "aws-sdk-java/2.25.11 Linux/5.10 OpenJDK_64-Bit_Server_VM/17.0.10",
        "aws-sdk-go-v2/1.24.0 os/macos lang/go#1.21.5 md/GOOS#darwin md/GOARCH#arm64",
        "aws-sdk-js/3.500.0 os/darwin#23.2.0 lang/js md/nodejs#20.11.0",
        "[S3Console/0.4, aws-internal/3 aws-sdk-java/1.12.488]",
        "APN/1.0 HashiCorp/1.0 Terraform/1.6.6 (+https://www.terraform.io) terraform-provider-aws/5.31.0",
        "AWS Internal",
        "ec2.amazonaws.com",
        "() { :; }; echo vulnerable",
        "Mozilla/5.0",
        "-",
        "x",
        "MOZILLA/5.0 (WINDOWS NT 10.0) CHROME/120.0",
        "Opera/9.80 (Windows NT 6.1; U; en) Presto/2.10.289 Version/12.00",
        "BlackBerry9700/5.0.0.351 Profile/MIDP-2.1 Configuration/CLDC-1.1 VendorID/123",
        "Dalvik/2.1.0 (Linux; U; Android 12; moto g(60) Build/S2RI32.32-20-9)",
        "Roku/DVP-9.10 (519.10E04111A)",
    ];

    /// uap-core's lists as the project bundles them.
    fn bundled() -> ua_parser::Regexes<'static> {
        serde_json::from_str(include_str!("uap-core/regexes.json")).expect("patterns")
    }

    /// The first match in list order, with ua-parser's own resolution, is what ua-parser
    /// gives with the whole list compiled: for every agent and every list.
    #[test]
    fn lazy_lists_give_what_the_whole_compiled_list_gives() {
        let whole = ua_parser::Extractor::try_from(bundled()).expect("whole lists compile");
        let regexes = bundled();
        let agents = LazyList::<Agents>::new(regexes.user_agent_parsers);
        let systems = LazyList::<Systems>::new(regexes.os_parsers);
        let devices = LazyList::<Devices>::new(regexes.device_parsers);
        for agent in AGENTS {
            let (a, o, d) = whole.extract(agent);
            assert_eq!(
                agents.extract(agent),
                a.map(|v| v.into_owned()),
                "agent of {agent}"
            );
            assert_eq!(
                systems.extract(agent),
                o.map(|v| v.into_owned()),
                "system of {agent}"
            );
            assert_eq!(
                devices.extract(agent),
                d.map(|v| v.into_owned()),
                "device of {agent}"
            );
        }
    }

    #[test]
    fn an_agent_compiles_only_the_patterns_its_literals_name() {
        let regexes = bundled();
        let total = regexes.device_parsers.len();
        let devices = LazyList::<Devices>::new(regexes.device_parsers);
        assert_eq!(
            devices.compiled_count(),
            0,
            "nothing before the first agent"
        );
        devices.extract("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64 command/run");
        let compiled = devices.compiled_count();
        assert!(
            compiled * 10 < total,
            "{compiled} of {total} device patterns compiled for one agent"
        );
    }
}
