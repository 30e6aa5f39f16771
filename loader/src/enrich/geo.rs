//! GeoIP and ASN: `<target>.geo.*` and `<target>.as.*` for the address in `<target>.ip`, from
//! MaxMind GeoLite2 City and ASN databases (`GeoLite2-City.mmdb`, `GeoLite2-ASN.mmdb`) in the
//! folder or `s3://` prefix named by `GEOIP_DATABASE_DIR`.
//!
//! Every built-in type gets it for `source`, `destination`, `client` and `server` ([`GeoEnricher`]);
//! a user type for the targets of its `geoip` key. Only public addresses are looked up (private,
//! shared, loopback, link-local, documentation and other special-purpose ranges never are), each
//! once per database through a cache. The lookup sits behind [`GeoLookup`] so the mapping is
//! tested without a database; [`GeoDatabases`] reads the files and reloads them when they change.

use super::additions::{Additions, Shared};
use super::cache::Recent;
use super::files::{FileSource, Files, FilesError, Location, Recheck};
use crate::ecs::Doc;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The environment variable naming the folder of the databases.
pub const DIR_ENV: &str = "GEOIP_DATABASE_DIR";
pub const CITY_FILE: &str = "GeoLite2-City.mmdb";
pub const ASN_FILE: &str = "GeoLite2-ASN.mmdb";

/// What is known about one address: ECS `geo` and `as` objects (either may be empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GeoInfo {
    pub geo: Doc,
    pub asn: Doc,
}

pub trait GeoLookup: Send + Sync + std::fmt::Debug {
    fn lookup(&self, ip: IpAddr) -> Option<GeoInfo>;

    /// The same answer, shared: a cache hands out its entry instead of a copy.
    fn lookup_shared(&self, ip: IpAddr) -> Option<Arc<GeoEntry>> {
        self.lookup(ip).map(|info| Arc::new(GeoEntry::from(info)))
    }
}

/// An answer as documents take it: the `geo` and `as` objects (each missing when the
/// databases know nothing), shared by every document of the address, and their JSON for
/// writers that write documents straight as text (flow logs).
#[derive(Debug, PartialEq)]
pub struct GeoEntry {
    pub geo: Option<Arc<Shared>>,
    pub asn: Option<Arc<Shared>>,
    /// `"geo":{...},"as":{...}` (either may be missing).
    pub json: Vec<u8>,
}

impl GeoEntry {
    pub fn info(&self) -> GeoInfo {
        let fields = |s: &Option<Arc<Shared>>| s.as_ref().map(|s| s.fields.clone());
        GeoInfo {
            geo: fields(&self.geo).unwrap_or_default(),
            asn: fields(&self.asn).unwrap_or_default(),
        }
    }
}

impl From<GeoInfo> for GeoEntry {
    fn from(info: GeoInfo) -> Self {
        let shared = |object: Doc| (!object.is_empty()).then(|| Shared::new(object));
        let (geo, asn) = (shared(info.geo), shared(info.asn));
        let mut json = Vec::new();
        for (key, object) in [(&br#""geo":"#[..], &geo), (br#""as":"#, &asn)] {
            let Some(object) = object else {
                continue;
            };
            if !json.is_empty() {
                json.push(b',');
            }
            json.extend_from_slice(key);
            json.extend_from_slice(&object.json);
        }
        Self { geo, asn, json }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error(transparent)]
    Files(#[from] FilesError),
    #[error("GeoIP database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("no GeoIP database ({CITY_FILE} or {ASN_FILE}) in {0}")]
    Empty(String),
}

/// The MaxMind databases, read into memory once.
pub struct MaxMind {
    city: Option<maxminddb::Reader<Vec<u8>>>,
    asn: Option<maxminddb::Reader<Vec<u8>>>,
}

impl std::fmt::Debug for MaxMind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaxMind")
            .field("city", &self.city.is_some())
            .field("asn", &self.asn.is_some())
            .finish()
    }
}

fn open(path: &Path) -> Result<Option<maxminddb::Reader<Vec<u8>>>, GeoError> {
    if !path.is_file() {
        return Ok(None);
    }
    maxminddb::Reader::open_readfile(path)
        .map(Some)
        .map_err(|e| GeoError::Open {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

impl MaxMind {
    /// Opens the City and ASN databases of `dir`; one of them is enough.
    pub fn open_dir(dir: &Path) -> Result<Self, GeoError> {
        let city = open(&dir.join(CITY_FILE))?;
        let asn = open(&dir.join(ASN_FILE))?;
        if city.is_none() && asn.is_none() {
            return Err(GeoError::Empty(dir.display().to_string()));
        }
        Ok(Self { city, asn })
    }

    /// From raw database bytes (tests, or bytes fetched by the caller).
    pub fn from_bytes(city: Option<Vec<u8>>, asn: Option<Vec<u8>>) -> Result<Self, GeoError> {
        let read = |bytes: Option<Vec<u8>>, name: &str| {
            bytes
                .map(|b| {
                    maxminddb::Reader::from_source(b).map_err(|e| GeoError::Open {
                        path: name.to_owned(),
                        reason: e.to_string(),
                    })
                })
                .transpose()
        };
        Ok(Self {
            city: read(city, CITY_FILE)?,
            asn: read(asn, ASN_FILE)?,
        })
    }
}

fn english<'a>(names: Option<&std::collections::BTreeMap<&'a str, &'a str>>) -> Option<&'a str> {
    names.and_then(|n| n.get("en").copied())
}

impl GeoLookup for MaxMind {
    fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        let mut info = GeoInfo::default();
        if let Some(reader) = &self.city
            && let Ok(Some(city)) = reader.lookup::<maxminddb::geoip2::City>(ip)
        {
            let geo = &mut info.geo;
            let mut put = |k: &str, v: Option<&str>| {
                if let Some(v) = v {
                    geo.insert(k.to_owned(), Value::String(v.to_owned()));
                }
            };
            put(
                "city_name",
                english(city.city.as_ref().and_then(|c| c.names.as_ref())),
            );
            put(
                "continent_code",
                city.continent.as_ref().and_then(|c| c.code),
            );
            put(
                "continent_name",
                english(city.continent.as_ref().and_then(|c| c.names.as_ref())),
            );
            put(
                "country_iso_code",
                city.country.as_ref().and_then(|c| c.iso_code),
            );
            put(
                "country_name",
                english(city.country.as_ref().and_then(|c| c.names.as_ref())),
            );
            let subdivision = city.subdivisions.as_ref().and_then(|s| s.first());
            put("region_iso_code", subdivision.and_then(|s| s.iso_code));
            put(
                "region_name",
                english(subdivision.and_then(|s| s.names.as_ref())),
            );
            put("timezone", city.location.as_ref().and_then(|l| l.time_zone));
            if let Some(loc) = &city.location
                && let (Some(lat), Some(lon)) = (loc.latitude, loc.longitude)
            {
                let mut point = Map::new();
                point.insert("lat".to_owned(), Value::from(lat));
                point.insert("lon".to_owned(), Value::from(lon));
                info.geo.insert("location".to_owned(), Value::Object(point));
            }
        }
        if let Some(reader) = &self.asn
            && let Ok(Some(asn)) = reader.lookup::<maxminddb::geoip2::Asn>(ip)
        {
            if let Some(n) = asn.autonomous_system_number {
                info.asn.insert("number".to_owned(), Value::from(n));
            }
            if let Some(org) = asn.autonomous_system_organization {
                let mut o = Map::new();
                o.insert("name".to_owned(), Value::String(org.to_owned()));
                info.asn.insert("organization".to_owned(), Value::Object(o));
            }
        }
        (!info.geo.is_empty() || !info.asn.is_empty()).then_some(info)
    }
}

/// The ECS objects whose `.ip` every built-in type's documents get `.geo` and `.as` for.
pub const TARGETS: &[&str] = &["source", "destination", "client", "server"];

/// Sets `<target>.geo` and `<target>.as` from the address in `<target>.ip`. What the record
/// says itself wins: a location it carries (WAF's country) is only completed, and only when
/// the database places the address in the same country; an `as` it has is kept.
pub fn enrich_target(doc: &mut Doc, target: &str, geo: &dyn GeoLookup) {
    let Some(Value::Object(object)) = doc.get_mut(target) else {
        return;
    };
    for (key, shared) in enrich_object(object, geo).into_iter().flatten() {
        object.insert(key.to_owned(), Value::Object(shared.fields.clone()));
    }
}

/// [`enrich_target`], with the objects of the answer added to `additions` rather than copied.
pub fn add_target(
    doc: &mut Doc,
    target: &'static str,
    geo: &dyn GeoLookup,
    additions: &mut Additions,
) {
    let Some(Value::Object(object)) = doc.get_mut(target) else {
        return;
    };
    for (key, shared) in enrich_object(object, geo).into_iter().flatten() {
        additions.add(Some(target), key, shared);
    }
}

/// Completes the object's own `geo` in place, and answers the `as` and `geo` objects it is
/// to get.
fn enrich_object(
    object: &mut Map<String, Value>,
    geo: &dyn GeoLookup,
) -> [Option<(&'static str, Arc<Shared>)>; 2] {
    let none = [None, None];
    let own_geo = object.get("geo").and_then(Value::as_object);
    let complete =
        own_geo.is_some_and(|g| g.contains_key("city_name") || g.contains_key("location"));
    if complete && object.contains_key("as") {
        return none;
    }
    let Some(ip) = object
        .get("ip")
        .and_then(Value::as_str)
        .and_then(crate::ecs::parse_ip)
        .filter(|&ip| is_public(ip))
    else {
        return none;
    };
    let Some(entry) = geo.lookup_shared(ip) else {
        return none;
    };
    let asn = entry
        .asn
        .clone()
        .filter(|_| !object.contains_key("as"))
        .map(|a| ("as", a));
    let Some(found) = entry.geo.as_ref().filter(|_| !complete) else {
        return [asn, None];
    };
    let geo = match object.get_mut("geo") {
        Some(Value::Object(own)) => {
            let own_country = own.get("country_iso_code");
            if own_country.is_some() && own_country != found.fields.get("country_iso_code") {
                None
            } else if own.iter().all(|(k, v)| found.fields.get(k) == Some(v)) {
                // All it says, the database says too: the merge is the database's object.
                object.remove("geo");
                Some(("geo", found.clone()))
            } else {
                for (key, value) in &found.fields {
                    own.entry(key.clone()).or_insert_with(|| value.clone());
                }
                None
            }
        }
        // Not an object: replaced, as a copy would replace it.
        Some(_) => {
            object.remove("geo");
            Some(("geo", found.clone()))
        }
        None => Some(("geo", found.clone())),
    };
    [asn, geo]
}

/// Whether `ip` can be somewhere on the internet: not one of the special-purpose ranges of
/// the IANA registries (RFC 6890 and successors), whose location means nothing.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (b & 0xc0) == 64)
        // IETF protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && c == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (b & 0xfe) == 18)
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let second = ip.segments()[1];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && second == 0x0db8)
        // IPv4/IPv6 translation, 64:ff9b::/96 and 64:ff9b:1::/48.
        || (first == 0x0064 && second == 0xff9b))
}

/// The networks [`is_public`] leaves out, for telling whether a network can hold such an
/// address (IPv4-mapped IPv6 addresses are judged as IPv4, so their whole range is listed).
const SPECIAL: &[(IpAddr, u8)] = &[
    (IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(100, 64, 0, 0)), 10),
    (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    (IpAddr::V4(Ipv4Addr::new(169, 254, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 12),
    (IpAddr::V4(Ipv4Addr::new(192, 0, 0, 0)), 24),
    (IpAddr::V4(Ipv4Addr::new(192, 0, 2, 0)), 24),
    (IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16),
    (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 0)), 15),
    (IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0)), 24),
    (IpAddr::V4(Ipv4Addr::new(203, 0, 113, 0)), 24),
    (IpAddr::V4(Ipv4Addr::new(224, 0, 0, 0)), 4),
    (IpAddr::V4(Ipv4Addr::new(240, 0, 0, 0)), 4),
    (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 128),
    (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
    (IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)), 96),
    // Both translation prefixes (64:ff9b::/96, 64:ff9b:1::/48), as `is_public_v6` judges them.
    (
        IpAddr::V6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0)),
        32,
    ),
    (
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0)),
        32,
    ),
    (IpAddr::V6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0)), 7),
    (IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)), 10),
    (IpAddr::V6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0)), 8),
];

/// Whether `net` holds an address that is not public (one [`is_public`] says no to).
pub fn holds_non_public(net: &ipnet::IpNet) -> bool {
    SPECIAL.iter().any(|&(addr, len)| {
        ipnet::IpNet::new(addr, len).is_ok_and(|special| {
            net.contains(&special.network()) || special.contains(&net.network())
        })
    })
}

/// How often a long-running process (the Lambda function) looks for new databases.
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What one process keeps of the lookups of one database set.
const CACHE_ENTRIES: usize = 65_536;

/// A lookup that asks `inner` once per public address and remembers the answer.
pub struct Cached<L> {
    inner: L,
    cache: Recent<IpAddr, Option<Arc<GeoEntry>>>,
}

impl<L: GeoLookup> Cached<L> {
    pub fn new(inner: L) -> Self {
        Self {
            inner,
            cache: Recent::new(CACHE_ENTRIES),
        }
    }
}

impl<L: GeoLookup> std::fmt::Debug for Cached<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("inner", &self.inner)
            .finish()
    }
}

impl<L: GeoLookup> GeoLookup for Cached<L> {
    fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        self.lookup_shared(ip).map(|entry| entry.info())
    }

    fn lookup_shared(&self, ip: IpAddr) -> Option<Arc<GeoEntry>> {
        if !is_public(ip) {
            return None;
        }
        if let Some(known) = self.cache.get(&ip) {
            return known;
        }
        let found = self.inner.lookup_shared(ip);
        self.cache.put(ip, found.clone());
        found
    }
}

/// The GeoIP databases of a location, reloaded by [`GeoDatabases::refresh`] when the files
/// change. Until a database is read, and when none can be, lookups find nothing.
pub struct GeoDatabases {
    location: Location,
    loaded: RwLock<(String, Option<Arc<Cached<MaxMind>>>)>,
    /// When [`GeoDatabases::refresh_if_due`] last looked.
    checked: Recheck,
}

impl std::fmt::Debug for GeoDatabases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDatabases")
            .field("location", &self.location)
            .finish()
    }
}

impl GeoDatabases {
    pub fn new(location: Location) -> Self {
        Self {
            location,
            loaded: RwLock::new((String::new(), None)),
            checked: Recheck::default(),
        }
    }

    /// [`GeoDatabases::refresh`] when `every` has passed since the last look; a failure is
    /// a warning (the databases read before stay in use).
    pub async fn refresh_if_due(&self, store: &dyn FileSource, every: std::time::Duration) {
        if !self.checked.due(every) {
            return;
        }
        match self.refresh(store).await {
            Ok(true) => tracing::info!(location = %self.location, "GeoIP databases reloaded"),
            Ok(false) => {}
            Err(e) => tracing::warn!("{e}; the GeoIP databases read before stay in use"),
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Whether a database is loaded.
    pub fn is_loaded(&self) -> bool {
        self.loaded.read().is_ok_and(|l| l.1.is_some())
    }

    /// Reads the databases when they changed since the last read; whether they were read.
    /// On an error the databases read before stay in use.
    pub async fn refresh(&self, store: &dyn FileSource) -> Result<bool, GeoError> {
        let listed = store.list(&self.location).await?;
        let stamp = |file: &str| {
            listed
                .iter()
                .find(|f| f.name == file)
                .map(|f| f.stamp.clone())
        };
        let (city, asn) = (stamp(CITY_FILE), stamp(ASN_FILE));
        if city.is_none() && asn.is_none() {
            return Err(GeoError::Empty(self.location.to_string()));
        }
        let version = format!(
            "{} {}",
            city.clone().unwrap_or_default(),
            asn.clone().unwrap_or_default()
        );
        let current = self.loaded.read().map(|l| l.0.clone()).unwrap_or_default();
        if version == current {
            return Ok(false);
        }
        let city = match city {
            Some(_) => store.read(&self.location, CITY_FILE).await?,
            None => None,
        };
        let asn = match asn {
            Some(_) => store.read(&self.location, ASN_FILE).await?,
            None => None,
        };
        let db = MaxMind::from_bytes(city, asn).map_err(|e| match e {
            GeoError::Open { path, reason } => GeoError::Open {
                path: self.location.file(&path),
                reason,
            },
            other => other,
        })?;
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = (version, Some(Arc::new(Cached::new(db))));
        }
        Ok(true)
    }
}

impl GeoLookup for GeoDatabases {
    fn lookup(&self, ip: IpAddr) -> Option<GeoInfo> {
        self.lookup_shared(ip).map(|entry| entry.info())
    }

    fn lookup_shared(&self, ip: IpAddr) -> Option<Arc<GeoEntry>> {
        let db = self.loaded.read().ok()?.1.clone()?;
        db.lookup_shared(ip)
    }
}

/// The databases named by `GEOIP_DATABASE_DIR`, read once; `None` (with one warning) when
/// it is not set or nothing can be read there: documents then load without GeoIP fields.
pub async fn from_env(s3: Option<aws_sdk_s3::Client>) -> Option<Arc<GeoDatabases>> {
    let Some(text) = std::env::var(DIR_ENV).ok().filter(|t| !t.trim().is_empty()) else {
        tracing::warn!(
            "{DIR_ENV} is not set: documents load without GeoIP fields (see `loader geoip update`)"
        );
        return None;
    };
    let databases = GeoDatabases::new(Location::parse(text.trim()));
    let store = Files { s3 };
    match databases.refresh(&store).await {
        Ok(_) => {
            // The cold start's read counts as the first look.
            databases.checked.mark();
            Some(Arc::new(databases))
        }
        Err(e) => {
            tracing::warn!("{e}; documents load without GeoIP fields");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::files::Stamped;
    use serde_json::json;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn special_purpose_addresses_are_not_public() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.7",
            "198.18.0.1",
            "192.0.0.8",
            "0.1.2.3",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "81.2.69.1",
            "1.128.0.1",
            "8.8.8.8",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().expect("ip")), "{ip}");
        }
    }

    /// Japan for every address; counts its lookups.
    #[derive(Debug, Default)]
    struct Japan(AtomicUsize);

    impl GeoLookup for Japan {
        fn lookup(&self, _ip: IpAddr) -> Option<GeoInfo> {
            self.0.fetch_add(1, Ordering::Relaxed);
            let mut info = GeoInfo::default();
            info.geo.insert("country_iso_code".into(), json!("JP"));
            info.geo.insert("city_name".into(), json!("Tokyo"));
            info.asn.insert("number".into(), json!(64500));
            Some(info)
        }
    }

    fn doc(value: Value) -> Doc {
        serde_json::from_value(value).expect("object")
    }

    #[test]
    fn the_record_s_own_location_wins_and_is_only_completed_when_it_agrees() {
        let japan = Japan::default();
        let mut bare = doc(json!({"source": {"ip": "81.2.69.1"}}));
        enrich_target(&mut bare, "source", &japan);
        assert_eq!(bare["source"]["geo"]["city_name"], "Tokyo");
        assert_eq!(bare["source"]["as"]["number"], 64500);

        let mut same =
            doc(json!({"source": {"ip": "81.2.69.1", "geo": {"country_iso_code": "JP"}}}));
        enrich_target(&mut same, "source", &japan);
        assert_eq!(same["source"]["geo"]["city_name"], "Tokyo");

        let mut other = doc(
            json!({"source": {"ip": "81.2.69.1", "geo": {"country_iso_code": "NL"}, "as": {"number": 1}}}),
        );
        enrich_target(&mut other, "source", &japan);
        assert_eq!(other["source"]["geo"], json!({"country_iso_code": "NL"}));
        assert_eq!(other["source"]["as"]["number"], 1);

        let mut no_ip = doc(json!({"source": {"address": "ec2.amazonaws.com"}}));
        enrich_target(&mut no_ip, "source", &japan);
        assert_eq!(no_ip["source"], json!({"address": "ec2.amazonaws.com"}));
    }

    #[test]
    fn the_special_networks_are_what_is_public_leaves_out() {
        for &(addr, len) in SPECIAL {
            let net = ipnet::IpNet::new(addr, len).expect("valid network");
            for edge in [net.network(), net.broadcast()] {
                assert!(!is_public(edge), "{edge} of {net} should not be public");
            }
            // Just outside the network, an address is public (except where two special
            // networks meet).
            let outside = match net.broadcast() {
                IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(1))),
                IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(1))),
            };
            let next_is_special = SPECIAL
                .iter()
                .any(|&(a, l)| ipnet::IpNet::new(a, l).is_ok_and(|s| s.contains(&outside)));
            assert!(
                next_is_special || is_public(outside),
                "{outside} after {net}"
            );
        }
        let net = |s: &str| s.parse::<ipnet::IpNet>().expect("network");
        assert!(holds_non_public(&net("10.1.2.3/32")));
        assert!(holds_non_public(&net("8.0.0.0/6")), "holds 10.0.0.0/8");
        assert!(holds_non_public(&net("::ffff:10.0.0.1/128")));
        assert!(!holds_non_public(&net("81.2.69.0/24")));
        assert!(!holds_non_public(&net("2a00:1450::/32")));
    }

    #[test]
    fn each_public_address_is_looked_up_once() {
        let cached = Cached::new(Japan::default());
        for _ in 0..3 {
            assert!(cached.lookup("81.2.69.1".parse().expect("ip")).is_some());
            assert!(cached.lookup("10.0.0.1".parse().expect("ip")).is_none());
        }
        assert_eq!(cached.inner.0.load(Ordering::Relaxed), 1);
    }

    /// A City database file whose stamp and bytes change when told to; counts its reads.
    struct Changing {
        stamp: Mutex<String>,
        reads: AtomicUsize,
    }

    impl FileSource for Changing {
        fn list(
            &self,
            _location: &Location,
        ) -> futures::future::BoxFuture<'_, Result<Vec<Stamped>, FilesError>> {
            let stamp = self.stamp.lock().expect("lock").clone();
            Box::pin(async move {
                Ok(if stamp.is_empty() {
                    Vec::new()
                } else {
                    vec![Stamped {
                        name: CITY_FILE.to_owned(),
                        stamp,
                    }]
                })
            })
        }

        fn read(
            &self,
            _location: &Location,
            _name: &str,
        ) -> futures::future::BoxFuture<'_, Result<Option<Vec<u8>>, FilesError>> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            Box::pin(async { Ok(Some(b"not a database".to_vec())) })
        }
    }

    #[tokio::test]
    async fn databases_are_read_only_when_their_stamps_change_and_a_bad_one_is_refused() {
        let files = Changing {
            stamp: Mutex::new(String::new()),
            reads: AtomicUsize::new(0),
        };
        let databases = GeoDatabases::new(Location::parse("s3://bucket/geoip/"));
        // Neither file: nothing to load, said as an error naming the place.
        let err = databases.refresh(&files).await.expect_err("empty");
        assert!(err.to_string().contains("s3://bucket/geoip"), "{err}");
        assert_eq!(files.reads.load(Ordering::Relaxed), 0);
        *files.stamp.lock().expect("lock") = "v1".to_owned();
        let err = databases.refresh(&files).await.expect_err("corrupt");
        assert!(
            err.to_string()
                .contains("s3://bucket/geoip/GeoLite2-City.mmdb"),
            "{err}"
        );
        assert!(!databases.is_loaded());
        // refresh_if_due looks once, then waits its turn.
        let hour = std::time::Duration::from_secs(3600);
        databases.refresh_if_due(&files, hour).await;
        databases.refresh_if_due(&files, hour).await;
        assert_eq!(files.reads.load(Ordering::Relaxed), 2);
        assert_eq!(databases.lookup("81.2.69.1".parse().expect("ip")), None);
    }
}
