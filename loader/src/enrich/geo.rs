//! GeoIP enrichment of the `geoip` key: `<target>.geo.*` and `<target>.as.*` for the address in
//! `<target>.ip`, from MaxMind GeoLite2 City and ASN databases found in `GEOIP_DATABASE_DIR`
//! (`GeoLite2-City.mmdb`, `GeoLite2-ASN.mmdb`). The lookup sits behind [`GeoLookup`] so the
//! mapping is tested without a database.

use crate::config::Config;
use crate::ecs::Doc;
use serde_json::{Map, Value};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
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

/// The lookup for a configuration: `None` when no type asks for `geoip`. When one does but no
/// database is configured or readable, says so once (a warning, not an error: documents load
/// without `geo`).
pub fn from_env(config: &Config) -> Option<Arc<dyn GeoLookup>> {
    let wanted: Vec<&str> = config
        .types
        .iter()
        .filter(|t| !t.geoip.is_empty())
        .map(|t| t.name.as_str())
        .collect();
    if wanted.is_empty() {
        return None;
    }
    let dir = std::env::var_os(DIR_ENV).map(PathBuf::from);
    match dir.as_deref().map(MaxMind::open_dir) {
        Some(Ok(db)) => Some(Arc::new(db)),
        Some(Err(e)) => {
            tracing::warn!(types = ?wanted, "{e}; documents load without GeoIP fields");
            None
        }
        None => {
            tracing::warn!(
                types = ?wanted,
                "geoip is configured but {DIR_ENV} is not set; documents load without GeoIP fields"
            );
            None
        }
    }
}
