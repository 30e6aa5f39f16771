//! Linux authentication logs (`/var/log/secure`, `auth.log`): sshd logins and disconnects,
//! sudo commands, PAM sessions and authentication failures.
//!
//! [`enrich`] adds the ECS fields of one syslog line to a document (used by the CloudWatch Logs
//! parser for log groups holding secure logs); [`normalize`] builds a document from a text
//! object's line (`{"message": "<line>"}`). Field names outside ECS follow Filebeat's
//! `system.auth.*` so existing dashboards and queries apply.
//!
//! Lines carry either a classic syslog prefix (`Feb  2 16:45:20 host sshd[2738]: ...`, no year,
//! no zone: read as UTC, the year resolved against the ingest time) or an RFC 3339 one
//! (`2024-05-01T12:00:00.123456+00:00 host sshd[2738]: ...`).

use super::{Context, NormalizeError, Normalized};
use crate::ecs::{Doc, add_related, set};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use regex::Regex;
use serde_json::Value;
use std::net::IpAddr;
use std::sync::LazyLock;

/// Compiles one of the fixed patterns below (covered by the unit tests).
fn re(pattern: &str) -> Regex {
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("fixed pattern compiles")
}

const TAG: &str = r"([^\s\[:]+)(?:\[(\d+)\])?: ?(.*)$";

static SYSLOG: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^([A-Z][a-z]{{2}}) +(\d{{1,2}}) (\d{{2}}):(\d{{2}}):(\d{{2}}) (\S+) {TAG}"
    ))
});
static RFC3339: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"^(\d{{4}}-\d{{2}}-\d{{2}}[T ]\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?(?:Z|[+-]\d{{2}}:?\d{{2}})) (\S+) {TAG}"
    ))
});
static LOGIN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(Accepted|Failed) (\S+) for (invalid user )?(\S*) from (\S+) port (\d+)(?: (\S+))?(?:: (.+))?$",
    )
});
static INVALID_USER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^Invalid user (\S*) from (\S+)(?: port (\d+))?"));
static MAX_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^error: maximum authentication attempts exceeded for (invalid user )?(\S*) from (\S+) port (\d+)",
    )
});
static CLOSED_AUTH: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Connection (?:closed|reset) by (authenticating user|invalid user) (\S*) (\S+) port (\d+)")
});
static CLOSED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^Connection (?:closed|reset) by (\S+) port (\d+)"));
static DISCONNECTED: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Disconnected from (?:(authenticating user|invalid user|user) (\S*) )?(\S+) port (\d+)")
});
static RECEIVED_DISCONNECT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^Received disconnect from (\S+?)(?: port (\d+))?: ?(\d+): ?(.*?)(?: \[preauth\])?$")
});
static NO_IDENTIFICATION: LazyLock<Regex> =
    LazyLock::new(|| re(r"^Did not receive identification string from (\S+)(?: port (\d+))?"));
static SESSION: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^pam_unix\(([^:)]+):session\): session (opened|closed) for user ([^\s(]+)(?:\(uid=\d+\))?(?: by ([^\s(]*)(?:\(uid=\d+\))?)?\s*$",
    )
});
static AUTH_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:pam_unix\(([^:)]+)(?::[^)]*)?\): authentication failure|PAM \d+ more authentication failures?); (.*)$",
    )
});
static SUDO: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*(\S+) : (.*COMMAND=.*)$"));
static NOT_ALLOWED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^User (\S+) from (\S+) not allowed because (.+)$"));
static PAM_ERROR: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^error: PAM: [Aa]uthentication failure for (?:illegal user |invalid user )?(\S+) from (\S+)",
    )
});
static NEW_USER: LazyLock<Regex> =
    LazyLock::new(|| re(r"^new user: name=([^,\s]+), UID=(\d+), GID=(\d+)"));
static NEW_GROUP: LazyLock<Regex> = LazyLock::new(|| re(r"^new group: name=([^,\s]+), GID=(\d+)"));
static DELETE_USER: LazyLock<Regex> = LazyLock::new(|| re(r"^delete user '([^']+)'"));
static PASSWORD_CHANGED: LazyLock<Regex> =
    LazyLock::new(|| re(r"^pam_unix\([^:)]+:chauthtok\): password changed for (\S+)"));

/// The parts of a syslog line's prefix.
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Prefix<'a> {
    time: Option<LineTime>,
    host: Option<&'a str>,
    process: &'a str,
    pid: Option<u32>,
    body: &'a str,
}

/// Time as written in the prefix.
#[cfg_attr(test, derive(Debug, PartialEq))]
enum LineTime {
    Full(DateTime<Utc>),
    /// Month (1-12), day, hour, minute, second: syslog writes no year.
    NoYear(u32, u32, u32, u32, u32),
}

fn prefix(line: &str) -> Option<Prefix<'_>> {
    if let Some(parsed) = plain_syslog_prefix(line) {
        return Some(parsed);
    }
    prefix_by_patterns(line)
}

/// The classic prefix read byte by byte, for the common line: ASCII up to the body, a known
/// month, a body without a line break. `None` for anything else, which the patterns read (so
/// this gives what [`prefix_by_patterns`] gives, only without running a regex with captures
/// over every line, a tenth of a secure log's load).
fn plain_syslog_prefix(line: &str) -> Option<Prefix<'_>> {
    let bytes = line.as_bytes();
    // `\s` of the patterns, for ASCII bytes.
    let space = |b: u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    let digits = |at: usize, n: usize| -> Option<u32> {
        let part = bytes.get(at..at + n)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let month = month_number(line.get(0..3)?)?;
    let mut at = 3;
    let spaces = bytes.get(at..)?.iter().take_while(|&&b| b == b' ').count();
    if spaces == 0 {
        return None;
    }
    at += spaces;
    let day_len = bytes
        .get(at..)?
        .iter()
        .take(3)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if !(1..=2).contains(&day_len) || bytes.get(at + day_len) != Some(&b' ') {
        return None;
    }
    let day = digits(at, day_len)?;
    at += day_len + 1;
    if bytes.get(at + 2) != Some(&b':') || bytes.get(at + 5) != Some(&b':') {
        return None;
    }
    let (hour, minute, second) = (digits(at, 2)?, digits(at + 3, 2)?, digits(at + 6, 2)?);
    at += 8;
    if bytes.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    let host_len = bytes
        .get(at..)?
        .iter()
        .take_while(|&&b| b.is_ascii() && !space(b))
        .count();
    if host_len == 0 || bytes.get(at + host_len) != Some(&b' ') {
        return None;
    }
    let host = line.get(at..at + host_len)?;
    at += host_len + 1;
    let tag_len = bytes
        .get(at..)?
        .iter()
        .take_while(|&&b| b.is_ascii() && !space(b) && b != b'[' && b != b':')
        .count();
    if tag_len == 0 {
        return None;
    }
    let process = line.get(at..at + tag_len)?;
    at += tag_len;
    let mut pid = None;
    if bytes.get(at) == Some(&b'[') {
        let pid_len = bytes
            .get(at + 1..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if pid_len == 0 || bytes.get(at + 1 + pid_len) != Some(&b']') {
            return None;
        }
        pid = line.get(at + 1..at + 1 + pid_len)?.parse().ok();
        at += pid_len + 2;
    }
    if bytes.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    if bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let body = line.get(at..)?;
    if body.contains('\n') {
        return None;
    }
    Some(Prefix {
        time: Some(LineTime::NoYear(month, day, hour, minute, second)),
        host: Some(host),
        process,
        pid,
        body,
    })
}

fn prefix_by_patterns(line: &str) -> Option<Prefix<'_>> {
    if let Some(c) = SYSLOG.captures(line) {
        let month = month_number(c.get(1)?.as_str())?;
        let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<u32>().ok());
        let time = LineTime::NoYear(month, num(2)?, num(3)?, num(4)?, num(5)?);
        return Some(Prefix {
            time: Some(time),
            host: c.get(6).map(|m| m.as_str()),
            process: c.get(7)?.as_str(),
            pid: num(8),
            body: c.get(9).map_or("", |m| m.as_str()),
        });
    }
    if let Some(c) = RFC3339.captures(line) {
        let raw = c.get(1)?.as_str().replacen(' ', "T", 1);
        let time = DateTime::parse_from_rfc3339(&raw)
            .or_else(|_| DateTime::parse_from_str(&raw, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .ok()
            .map(|t| LineTime::Full(t.with_timezone(&Utc)));
        return Some(Prefix {
            time,
            host: c.get(2).map(|m| m.as_str()),
            process: c.get(3)?.as_str(),
            pid: c.get(4).and_then(|m| m.as_str().parse().ok()),
            body: c.get(5).map_or("", |m| m.as_str()),
        });
    }
    None
}

fn month_number(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS
        .iter()
        .position(|m| *m == name)
        .and_then(|i| u32::try_from(i + 1).ok())
}

/// Resolves a year-less syslog time: the year of `reference` (the object's time), or the year
/// before when that
/// would put the line more than a day in the future (a December line read in January).
fn resolve(time: &LineTime, ingested: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match *time {
        LineTime::Full(t) => Some(t),
        LineTime::NoYear(month, day, h, m, s) => {
            let at = |year: i32| {
                NaiveDate::from_ymd_opt(year, month, day)
                    .and_then(|d| d.and_hms_opt(h, m, s))
                    .map(|t| Utc.from_utc_datetime(&t))
            };
            let year = ingested.year();
            match at(year) {
                Some(t) if t <= ingested + Duration::days(1) => Some(t),
                _ => at(year - 1),
            }
        }
    }
}

/// Adds the ECS fields of one secure-log line to `doc`: host and process from the syslog
/// prefix, and for the lines it recognizes `event.action`, `event.outcome`,
/// `event.category`, `event.type`, `user.*`, `source.*` and `related.*`. Returns whether the
/// line was recognized as an authentication, session or sudo event; prefix fields are added
/// either way.
pub fn enrich(message: &str, doc: &mut Doc) -> bool {
    let message = message.trim_end_matches(['\r', '\n']);
    let (process, body) = match prefix(message) {
        Some(p) => {
            if let Some(host) = p.host {
                set(doc, "host.hostname", host);
            }
            set(doc, "process.name", p.process);
            if let Some(pid) = p.pid {
                set(doc, "process.pid", pid);
            }
            (Some(p.process), p.body)
        }
        None => (None, message),
    };
    body_fields(process, body, doc)
}

fn body_fields(process: Option<&str>, body: &str, doc: &mut Doc) -> bool {
    let body = body.trim();
    if let Some(c) = LOGIN.captures(body) {
        let accepted = c.get(1).is_some_and(|m| m.as_str() == "Accepted");
        let user = c.get(4).map_or("", |m| m.as_str());
        // Only an accepted login opens a session.
        let category: &[&str] = if accepted {
            &["authentication", "session"]
        } else {
            &["authentication"]
        };
        event(
            doc,
            "ssh_login",
            category,
            if accepted { "start" } else { "info" },
            Some(accepted),
        );
        user_name(doc, user);
        source(
            doc,
            c.get(5).map(|m| m.as_str()),
            c.get(6).map(|m| m.as_str()),
        );
        if let Some(method) = c.get(2) {
            set(doc, "system.auth.ssh.method", method.as_str());
        }
        if let Some(signature) = c.get(8) {
            set(doc, "system.auth.ssh.signature", signature.as_str());
        }
        if c.get(3).is_some() {
            set(doc, "system.auth.ssh.invalid_user", true);
        }
        return true;
    }
    if let Some(c) = INVALID_USER.captures(body) {
        event(
            doc,
            "invalid_user",
            &["authentication"],
            "info",
            Some(false),
        );
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        source(
            doc,
            c.get(2).map(|m| m.as_str()),
            c.get(3).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = MAX_AUTH.captures(body) {
        event(
            doc,
            "max_auth_attempts_exceeded",
            &["authentication"],
            "info",
            Some(false),
        );
        user_name(doc, c.get(2).map_or("", |m| m.as_str()));
        source(
            doc,
            c.get(3).map(|m| m.as_str()),
            c.get(4).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = CLOSED_AUTH.captures(body) {
        // The client went away before authenticating: a failed (often scanning) attempt.
        event(
            doc,
            "connection_closed",
            &["authentication"],
            "end",
            Some(false),
        );
        user_name(doc, c.get(2).map_or("", |m| m.as_str()));
        source(
            doc,
            c.get(3).map(|m| m.as_str()),
            c.get(4).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = CLOSED.captures(body) {
        event(doc, "connection_closed", &["network"], "end", None);
        source(
            doc,
            c.get(1).map(|m| m.as_str()),
            c.get(2).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = DISCONNECTED.captures(body) {
        let kind = c.get(1).map(|m| m.as_str());
        let category: &[&str] = if kind == Some("user") {
            &["session"]
        } else {
            &["network"]
        };
        event(doc, "disconnect", category, "end", None);
        if let Some(user) = c.get(2) {
            user_name(doc, user.as_str());
        }
        source(
            doc,
            c.get(3).map(|m| m.as_str()),
            c.get(4).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = RECEIVED_DISCONNECT.captures(body) {
        event(doc, "disconnect", &["network"], "end", None);
        source(
            doc,
            c.get(1).map(|m| m.as_str()),
            c.get(2).map(|m| m.as_str()),
        );
        if let Some(code) = c.get(3) {
            set(doc, "system.auth.ssh.disconnect.code", code.as_str());
        }
        if let Some(reason) = c
            .get(4)
            .map(|m| m.as_str().trim())
            .filter(|r| !r.is_empty())
        {
            set(doc, "system.auth.ssh.disconnect.reason", reason);
        }
        return true;
    }
    if let Some(c) = NO_IDENTIFICATION.captures(body) {
        event(
            doc,
            "ssh_no_identification",
            &["network"],
            "info",
            Some(false),
        );
        source(
            doc,
            c.get(1).map(|m| m.as_str()),
            c.get(2).map(|m| m.as_str()),
        );
        return true;
    }
    if let Some(c) = SESSION.captures(body) {
        let opened = c.get(2).is_some_and(|m| m.as_str() == "opened");
        event(
            doc,
            if opened {
                "session_opened"
            } else {
                "session_closed"
            },
            &["session"],
            if opened { "start" } else { "end" },
            Some(true),
        );
        let target = c.get(3).map_or("", |m| m.as_str());
        match c.get(4).map(|m| m.as_str()).filter(|by| !by.is_empty()) {
            // `session opened for user root by alice`: alice acts as root.
            Some(by) if by != target => {
                user_name(doc, by);
                set(doc, "user.effective.name", target);
                add_related(doc, "user", target);
            }
            _ => user_name(doc, target),
        }
        if let Some(service) = c.get(1) {
            set(doc, "system.auth.pam.service", service.as_str());
        }
        return true;
    }
    if let Some(c) = AUTH_FAILURE.captures(body) {
        event(
            doc,
            "authentication_failure",
            &["authentication"],
            "info",
            Some(false),
        );
        let fields = key_values(c.get(2).map_or("", |m| m.as_str()));
        let field = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| *v)
                .filter(|v| !v.is_empty())
        };
        // `user` is the account being authenticated; `ruser` who asked (`su` from alice).
        match (field("user"), field("ruser")) {
            (Some(user), ruser) => {
                user_name(doc, user);
                if let Some(ruser) = ruser {
                    add_related(doc, "user", ruser);
                }
            }
            (None, Some(ruser)) => user_name(doc, ruser),
            (None, None) => {}
        }
        if let Some(rhost) = field("rhost") {
            source(doc, Some(rhost), None);
        }
        if let Some(tty) = field("tty") {
            set(doc, "system.auth.pam.tty", tty);
        }
        if let Some(service) = c.get(1) {
            set(doc, "system.auth.pam.service", service.as_str());
        }
        return true;
    }
    if let Some(c) = NOT_ALLOWED.captures(body) {
        event(doc, "ssh_login", &["authentication"], "info", Some(false));
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        source(doc, c.get(2).map(|m| m.as_str()), None);
        if let Some(reason) = c.get(3) {
            set(doc, "event.reason", reason.as_str());
        }
        return true;
    }
    if let Some(c) = PAM_ERROR.captures(body) {
        event(doc, "ssh_login", &["authentication"], "info", Some(false));
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        source(doc, c.get(2).map(|m| m.as_str()), None);
        return true;
    }
    // Account management (shadow-utils, PAM): who got an account or a new password.
    if let Some(c) = NEW_USER.captures(body) {
        event(doc, "user_created", &["iam"], "user", Some(true));
        set(doc, "event.type", vec!["user", "creation"]);
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        set_number(doc, "user.id", c.get(2).map(|m| m.as_str()));
        set_number(doc, "group.id", c.get(3).map(|m| m.as_str()));
        return true;
    }
    if let Some(c) = NEW_GROUP.captures(body) {
        event(doc, "group_created", &["iam"], "group", Some(true));
        set(doc, "event.type", vec!["group", "creation"]);
        if let Some(name) = c.get(1) {
            set(doc, "group.name", name.as_str());
        }
        set_number(doc, "group.id", c.get(2).map(|m| m.as_str()));
        return true;
    }
    if let Some(c) = DELETE_USER.captures(body) {
        event(doc, "user_deleted", &["iam"], "user", Some(true));
        set(doc, "event.type", vec!["user", "deletion"]);
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        return true;
    }
    if let Some(c) = PASSWORD_CHANGED.captures(body) {
        event(doc, "password_changed", &["iam"], "user", Some(true));
        set(doc, "event.type", vec!["user", "change"]);
        user_name(doc, c.get(1).map_or("", |m| m.as_str()));
        return true;
    }
    if process.is_none_or(|p| p == "sudo")
        && let Some(c) = SUDO.captures(body)
    {
        sudo(
            doc,
            c.get(1).map_or("", |m| m.as_str()),
            c.get(2).map_or("", |m| m.as_str()),
        );
        return true;
    }
    false
}

/// `alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`, possibly with an
/// error first (`3 incorrect password attempts ; TTY=...`, `user NOT in sudoers ; ...`).
fn sudo(doc: &mut Doc, user: &str, rest: &str) {
    let (before, command) = match rest.split_once("COMMAND=") {
        Some((before, command)) => (before, command.trim()),
        None => (rest, ""),
    };
    let mut error = None;
    for item in before.split(" ; ").map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some(("TTY", v)) => set(doc, "system.auth.sudo.tty", v),
            Some(("PWD", v)) => set(doc, "system.auth.sudo.pwd", v),
            Some(("USER", v)) => {
                set(doc, "user.effective.name", v);
                set(doc, "system.auth.sudo.user", v);
                add_related(doc, "user", v);
            }
            Some(_) => {}
            None => error = Some(item.trim_end_matches(" ;")),
        }
    }
    event(doc, "sudo", &["process"], "start", Some(error.is_none()));
    if let Some(error) = error {
        set(doc, "system.auth.sudo.error", error);
    }
    user_name(doc, user);
    if !command.is_empty() {
        set(doc, "process.command_line", command);
        set(doc, "system.auth.sudo.command", command);
    }
}

/// ECS keeps user and group ids as keywords: the text as written, when it is a number.
fn set_number(doc: &mut Doc, field: &str, value: Option<&str>) {
    if let Some(v) = value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) {
        set(doc, field, v);
    }
}

fn key_values(text: &str) -> Vec<(&str, &str)> {
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn event(doc: &mut Doc, action: &str, category: &[&str], kind: &str, success: Option<bool>) {
    set(doc, "event.action", action);
    set(doc, "event.category", category.to_vec());
    set(doc, "event.type", vec![kind]);
    if let Some(success) = success {
        set(
            doc,
            "event.outcome",
            if success { "success" } else { "failure" },
        );
    }
}

fn user_name(doc: &mut Doc, user: &str) {
    if !user.is_empty() {
        set(doc, "user.name", user);
        add_related(doc, "user", user);
    }
}

/// The remote side: an address goes to `source.ip`, a host name to `source.domain`.
fn source(doc: &mut Doc, host: Option<&str>, port: Option<&str>) {
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        if host.parse::<IpAddr>().is_ok() {
            set(doc, "source.ip", host);
            add_related(doc, "ip", host);
        } else {
            set(doc, "source.domain", host);
            add_related(doc, "hosts", host);
        }
        set(doc, "source.address", host);
    }
    if let Some(port) = port.and_then(|p| p.parse::<u16>().ok()) {
        set(doc, "source.port", port);
    }
}

/// Normalizes one line of a secure log delivered as a text object (`{"message": "<line>"}`).
pub fn normalize(
    record: Value,
    ctx: &Context<'_>,
    out: &mut Vec<Normalized>,
) -> Result<(), NormalizeError> {
    let Value::Object(mut doc) = record else {
        return Err(NormalizeError::NotAnObject);
    };
    let message = match doc.get("message") {
        Some(Value::String(m)) => m.clone(),
        _ => return Err(NormalizeError::MissingField("message")),
    };
    set(&mut doc, "event.module", "system");
    set(&mut doc, "event.dataset", "system.auth");
    set(&mut doc, "event.kind", "event");
    if !enrich(&message, &mut doc) {
        set(&mut doc, "event.category", vec!["host"]);
        set(&mut doc, "event.type", vec!["info"]);
    }
    let timestamp = prefix(message.trim_end())
        .and_then(|p| p.time)
        .and_then(|t| resolve(&t, ctx.reference));
    out.push(Normalized::new(doc, timestamp));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::get;
    use serde_json::json;

    /// Lines of every shape, near misses included: where the byte reader reads a prefix, it
    /// reads what the patterns read.
    fn prefix_lines() -> Vec<String> {
        let mut lines: Vec<String> = [
            "Feb  2 16:45:20 host sshd[2738]: Accepted publickey for ec2-user from 10.0.0.5 port 50022 ssh2",
            "Jan 15 10:00:00 ip-10-0-0-1 sudo: alice : TTY=pts/0 ; PWD=/home ; USER=root ; COMMAND=/bin/ls",
            "Dec 31 23:59:59 h sshd[1]:no space",
            "Dec 31 23:59:59 h sshd[99999999999]: pid too large",
            "Dec 31 23:59:59 h sshd[]: empty pid",
            "Dec 31 23:59:59 h sshd[12a]: bad pid",
            "Dec 31 23:59:59 h sshd:",
            "Dec 31 23:59:59 h sshd: ",
            "Dec 31 23:59:59 h sshd:  two spaces",
            "Dec 31 23:59:59 h sshd: line\nbreak",
            "Dec 31 23:59:59 h sshd: carriage\r",
            "Dec 31 23:59:59 h\tsshd: tab",
            "Dec 31 23:59:59 h  sshd: two spaces",
            "Dec 31 23:59:59 höst sshd: unicode host",
            "Dec 31 23:59:59 h sshé[1]: unicode tag",
            "Dec 31 23:59:59 h sshd[\u{0661}]: arabic digit",
            "Dec 3\u{0661} 23:59:59 h sshd: arabic day",
            "Dec 123 23:59:59 h sshd: long day",
            "Dec  1 2:59:59 h sshd: short hour",
            "Dec  1 23:5:59 h sshd: short minute",
            "Foo  1 23:59:59 h sshd: unknown month",
            "DEC  1 23:59:59 h sshd: upper month",
            "Dec1 23:59:59 h sshd: no space",
            "Dec  1 23:59:59 h : empty tag",
            "Dec  1 23:59:59 h [1]: empty tag with pid",
            "Dec  1 23:59:59 h sshd[1]x: junk",
            "Dec  1 23:59:59 h sshd body without colon",
            "Dec  1 23:59:59 h sshd[1]: body: with: colons [and] brackets",
            "Dec  1 23:59:59",
            "Dec  1 23:59:59 ",
            "Dec  1 23:59:59 h",
            "Dec  1 23:59:59 h ",
            "Dec",
            "",
            "2024-05-01T12:00:00.123456+00:00 host sshd[2738]: rfc 3339",
            "2024-05-01 12:00:00Z host sshd: rfc 3339 with a space",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // The first line cut short at each character.
        let whole = lines[0].clone();
        for (i, _) in whole.char_indices() {
            lines.push(whole[..i].to_owned());
        }
        lines
    }

    #[test]
    fn the_byte_reader_reads_a_prefix_as_the_patterns_do() {
        let mut read = 0;
        for line in prefix_lines() {
            if let Some(fast) = plain_syslog_prefix(&line) {
                read += 1;
                assert_eq!(Some(fast), prefix_by_patterns(&line), "{line:?}");
            }
            assert_eq!(prefix(&line), prefix_by_patterns(&line), "{line:?}");
        }
        assert!(read >= 10, "the byte reader read only {read} lines");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        #[test]
        fn the_byte_reader_agrees_with_the_patterns_on_any_line(
            line in "(Dec|Jan|Dec|Foo) {1,2}(1|12|12|123|\u{0661}) (23|23|2\u{0661}):59:59 (h|h|höst|a.b-c)( | |\t)(sshd|sshd|sshé|s:d)(\\[[0-9]{1,3}\\]|\\[[0-9\u{0661}a]{0,2}\\]|)(:|:|)( |  |)[a-z\n\r:\\[ ]{0,6}"
        ) {
            if let Some(fast) = plain_syslog_prefix(&line) {
                proptest::prop_assert_eq!(Some(fast), prefix_by_patterns(&line));
            }
        }
    }

    fn enriched(line: &str) -> (bool, Value) {
        let mut doc = Doc::new();
        let known = enrich(line, &mut doc);
        (known, Value::Object(doc))
    }

    fn ctx(ingested: &str) -> Context<'static> {
        Context {
            s3_key: "AWSLogs/111122223333/linux/secure.log",
            key_account: Some("111122223333"),
            key_region: None,
            ingested: DateTime::parse_from_rfc3339(ingested)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            reference: DateTime::parse_from_rfc3339(ingested)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_default(),
            key_time: None,
        }
    }

    #[test]
    fn patterns_compile() {
        for r in [
            &SYSLOG,
            &RFC3339,
            &LOGIN,
            &INVALID_USER,
            &MAX_AUTH,
            &CLOSED_AUTH,
            &CLOSED,
            &DISCONNECTED,
            &RECEIVED_DISCONNECT,
            &NO_IDENTIFICATION,
            &SESSION,
            &AUTH_FAILURE,
            &SUDO,
        ] {
            assert!(!r.as_str().is_empty());
        }
    }

    #[test]
    fn accepted_publickey() {
        let (known, d) = enriched(
            "Feb 21 21:56:12 web-1 sshd[3402]: Accepted publickey for alice from 198.51.100.4 port 56000 ssh2: RSA SHA256:8zLb0Qn3kfZJ1",
        );
        assert!(known);
        assert_eq!(get(&d, "event.action"), Some(&json!("ssh_login")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("success")));
        assert_eq!(
            get(&d, "event.category"),
            Some(&json!(["authentication", "session"]))
        );
        assert_eq!(get(&d, "event.type"), Some(&json!(["start"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("198.51.100.4")));
        assert_eq!(get(&d, "source.port"), Some(&json!(56000)));
        assert_eq!(get(&d, "system.auth.ssh.method"), Some(&json!("publickey")));
        assert_eq!(
            get(&d, "system.auth.ssh.signature"),
            Some(&json!("RSA SHA256:8zLb0Qn3kfZJ1"))
        );
        assert_eq!(get(&d, "process.name"), Some(&json!("sshd")));
        assert_eq!(get(&d, "process.pid"), Some(&json!(3402)));
        assert_eq!(get(&d, "host.hostname"), Some(&json!("web-1")));
        assert_eq!(get(&d, "related.ip"), Some(&json!(["198.51.100.4"])));
        assert_eq!(get(&d, "related.user"), Some(&json!(["alice"])));
    }

    #[test]
    fn accepted_and_failed_password() {
        let (_, d) = enriched(
            "Feb  2 03:04:05 web-1 sshd[10]: Accepted password for bob from 2001:db8::5 port 2222 ssh2",
        );
        assert_eq!(get(&d, "event.outcome"), Some(&json!("success")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("2001:db8::5")));
        assert_eq!(get(&d, "system.auth.ssh.method"), Some(&json!("password")));

        let (known, d) = enriched(
            "Feb 22 16:45:20 web-1 sshd[2738]: Failed password for root from 203.0.113.106 port 44142 ssh2",
        );
        assert!(known);
        assert_eq!(get(&d, "event.action"), Some(&json!("ssh_login")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "event.type"), Some(&json!(["info"])));
        assert_eq!(get(&d, "event.category"), Some(&json!(["authentication"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("root")));

        let (_, d) = enriched(
            "Feb 22 16:45:20 web-1 sshd[2738]: Failed password for invalid user admin from 203.0.113.7 port 1 ssh2",
        );
        assert_eq!(get(&d, "user.name"), Some(&json!("admin")));
        assert_eq!(get(&d, "system.auth.ssh.invalid_user"), Some(&json!(true)));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
    }

    #[test]
    fn invalid_user_and_closed_connections() {
        let (known, d) = enriched(
            "Mar  1 00:00:01 web-1 sshd[5]: Invalid user oracle from 203.0.113.8 port 40000",
        );
        assert!(known);
        assert_eq!(get(&d, "event.action"), Some(&json!("invalid_user")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("oracle")));
        assert_eq!(get(&d, "source.port"), Some(&json!(40000)));

        let (_, d) =
            enriched("Mar  1 00:00:01 web-1 sshd[5]: Invalid user  from 203.0.113.8 port 40000");
        assert_eq!(get(&d, "user.name"), None);
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.8")));

        let (_, d) = enriched(
            "Mar  1 00:00:02 web-1 sshd[5]: Connection closed by authenticating user root 203.0.113.9 port 41000 [preauth]",
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("connection_closed")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["authentication"])));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("root")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.9")));

        let (_, d) = enriched(
            "Mar  1 00:00:02 web-1 sshd[5]: Connection closed by 203.0.113.10 port 41001 [preauth]",
        );
        assert_eq!(get(&d, "event.category"), Some(&json!(["network"])));
        assert_eq!(get(&d, "source.port"), Some(&json!(41001)));

        let (_, d) = enriched(
            "Mar  1 00:00:03 web-1 sshd[5]: error: maximum authentication attempts exceeded for invalid user test from 203.0.113.11 port 41002 ssh2 [preauth]",
        );
        assert_eq!(
            get(&d, "event.action"),
            Some(&json!("max_auth_attempts_exceeded"))
        );
        assert_eq!(get(&d, "user.name"), Some(&json!("test")));

        let (_, d) = enriched(
            "Mar  1 00:00:03 web-1 sshd[5]: Did not receive identification string from 203.0.113.12 port 41003",
        );
        assert_eq!(
            get(&d, "event.action"),
            Some(&json!("ssh_no_identification"))
        );
    }

    #[test]
    fn disconnects() {
        let (_, d) = enriched(
            "Feb 22 16:45:26 web-1 sshd[2738]: Received disconnect from 203.0.113.106: 11:  [preauth]",
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("disconnect")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.106")));
        assert_eq!(
            get(&d, "system.auth.ssh.disconnect.code"),
            Some(&json!("11"))
        );
        assert_eq!(get(&d, "system.auth.ssh.disconnect.reason"), None);

        let (_, d) = enriched(
            "Feb 22 16:45:26 web-1 sshd[2738]: Received disconnect from 203.0.113.106 port 5000:11: disconnected by user",
        );
        assert_eq!(get(&d, "source.port"), Some(&json!(5000)));
        assert_eq!(
            get(&d, "system.auth.ssh.disconnect.reason"),
            Some(&json!("disconnected by user"))
        );

        let (_, d) = enriched(
            "Feb 22 16:45:27 web-1 sshd[2738]: Disconnected from user alice 198.51.100.4 port 56000",
        );
        assert_eq!(get(&d, "event.category"), Some(&json!(["session"])));
        assert_eq!(get(&d, "event.type"), Some(&json!(["end"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));

        let (_, d) = enriched(
            "Feb 22 16:45:27 web-1 sshd[2738]: Disconnected from invalid user guest 203.0.113.5 port 1 [preauth]",
        );
        assert_eq!(get(&d, "event.category"), Some(&json!(["network"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("guest")));
    }

    #[test]
    fn pam_sessions_and_failures() {
        let (_, d) = enriched(
            "Feb 21 21:56:12 web-1 sshd[3402]: pam_unix(sshd:session): session opened for user alice by (uid=0)",
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("session_opened")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["session"])));
        assert_eq!(get(&d, "event.type"), Some(&json!(["start"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(get(&d, "system.auth.pam.service"), Some(&json!("sshd")));

        let (_, d) = enriched(
            "Feb 21 21:57:00 web-1 sshd[3402]: pam_unix(sshd:session): session closed for user alice",
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("session_closed")));
        assert_eq!(get(&d, "event.type"), Some(&json!(["end"])));

        let (_, d) = enriched(
            "Feb 21 21:58:00 web-1 sudo: pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
        );
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(get(&d, "user.effective.name"), Some(&json!("root")));
        assert_eq!(get(&d, "related.user"), Some(&json!(["alice", "root"])));

        let (known, d) = enriched(
            "Feb 22 16:45:32 web-1 sshd[2742]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.106  user=root",
        );
        assert!(known);
        assert_eq!(
            get(&d, "event.action"),
            Some(&json!("authentication_failure"))
        );
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("root")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.106")));

        let (_, d) = enriched(
            "Feb 22 16:45:44 web-1 sshd[2742]: PAM 4 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=scanner.example.net  user=root",
        );
        assert_eq!(
            get(&d, "source.domain"),
            Some(&json!("scanner.example.net"))
        );
        assert_eq!(get(&d, "source.ip"), None);
    }

    #[test]
    fn refused_logins_and_account_changes() {
        let (known, d) = enriched(
            "May  1 10:00:00 web-1 sshd[9]: User guest from 203.0.113.40 not allowed because not listed in AllowUsers",
        );
        assert!(known);
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("guest")));
        assert_eq!(get(&d, "source.ip"), Some(&json!("203.0.113.40")));
        assert_eq!(
            get(&d, "event.reason"),
            Some(&json!("not listed in AllowUsers"))
        );

        let (_, d) = enriched(
            "May  1 10:00:00 web-1 sshd[9]: error: PAM: Authentication failure for illegal user test from 203.0.113.41",
        );
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(get(&d, "user.name"), Some(&json!("test")));

        let (known, d) = enriched(
            "May  1 10:01:00 web-1 useradd[700]: new user: name=backdoor, UID=1002, GID=1002, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
        );
        assert!(known);
        assert_eq!(get(&d, "event.action"), Some(&json!("user_created")));
        assert_eq!(get(&d, "event.category"), Some(&json!(["iam"])));
        assert_eq!(get(&d, "event.type"), Some(&json!(["user", "creation"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("backdoor")));
        assert_eq!(get(&d, "user.id"), Some(&json!("1002")));
        assert_eq!(get(&d, "group.id"), Some(&json!("1002")));

        let (_, d) = enriched("May  1 10:01:00 web-1 groupadd[701]: new group: name=ops, GID=1003");
        assert_eq!(get(&d, "event.action"), Some(&json!("group_created")));
        assert_eq!(get(&d, "group.name"), Some(&json!("ops")));

        let (_, d) = enriched("May  1 10:02:00 web-1 userdel[702]: delete user 'backdoor'");
        assert_eq!(get(&d, "event.type"), Some(&json!(["user", "deletion"])));
        assert_eq!(get(&d, "user.name"), Some(&json!("backdoor")));

        let (_, d) = enriched(
            "May  1 10:03:00 web-1 passwd[703]: pam_unix(passwd:chauthtok): password changed for alice",
        );
        assert_eq!(get(&d, "event.action"), Some(&json!("password_changed")));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
    }

    #[test]
    fn sudo_commands() {
        let (known, d) = enriched(
            "May  1 10:00:00 web-1 sudo:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx",
        );
        assert!(known);
        assert_eq!(get(&d, "event.action"), Some(&json!("sudo")));
        assert_eq!(get(&d, "event.outcome"), Some(&json!("success")));
        assert_eq!(get(&d, "user.name"), Some(&json!("alice")));
        assert_eq!(get(&d, "user.effective.name"), Some(&json!("root")));
        assert_eq!(
            get(&d, "process.command_line"),
            Some(&json!("/usr/bin/systemctl restart nginx"))
        );
        assert_eq!(get(&d, "system.auth.sudo.tty"), Some(&json!("pts/0")));
        assert_eq!(get(&d, "system.auth.sudo.pwd"), Some(&json!("/home/alice")));
        assert_eq!(get(&d, "process.name"), Some(&json!("sudo")));

        let (_, d) = enriched(
            "May  1 10:00:00 web-1 sudo:    mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/bin/bash",
        );
        assert_eq!(get(&d, "event.outcome"), Some(&json!("failure")));
        assert_eq!(
            get(&d, "system.auth.sudo.error"),
            Some(&json!("user NOT in sudoers"))
        );
        assert_eq!(get(&d, "process.command_line"), Some(&json!("/bin/bash")));

        // Another program writing the same shape is not sudo.
        let (known, _) = enriched("May  1 10:00:00 web-1 myapp[1]: x : COMMAND=ls");
        assert!(!known);
    }

    #[test]
    fn rfc3339_prefix_and_unrecognized_lines() {
        let (known, d) = enriched(
            "2024-05-01T12:00:00.123456+02:00 web-2 sshd[77]: Accepted password for carol from 192.0.2.8 port 5 ssh2",
        );
        assert!(known);
        assert_eq!(get(&d, "host.hostname"), Some(&json!("web-2")));
        assert_eq!(get(&d, "user.name"), Some(&json!("carol")));

        let (known, d) = enriched(
            "Feb 22 16:45:20 web-1 sshd[2738]: pam_succeed_if(sshd:auth): requirement \"uid >= 1000\" not met by user \"root\"",
        );
        assert!(!known);
        assert_eq!(get(&d, "process.name"), Some(&json!("sshd")));
        assert_eq!(get(&d, "event"), None);

        // No prefix at all: the body is still recognized.
        let (known, d) = enriched("Accepted password for dave from 192.0.2.9 port 6 ssh2");
        assert!(known);
        assert_eq!(get(&d, "user.name"), Some(&json!("dave")));
        assert_eq!(get(&d, "process"), None);

        let (known, d) = enriched("");
        assert!(!known);
        assert_eq!(d, json!({}));
    }

    #[test]
    fn normalize_resolves_the_year() {
        let mut out = Vec::new();
        let line = json!({"message": "Dec 31 23:59:58 web-1 sshd[1]: Accepted password for erin from 192.0.2.1 port 22 ssh2"});
        normalize(line, &ctx("2026-01-01T00:00:00Z"), &mut out).expect("line normalizes");
        assert_eq!(
            out[0].timestamp,
            DateTime::parse_from_rfc3339("2025-12-31T23:59:58Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        let d = Value::Object(out[0].doc.clone());
        assert_eq!(get(&d, "event.module"), Some(&json!("system")));
        assert_eq!(get(&d, "event.dataset"), Some(&json!("system.auth")));
        assert_eq!(get(&d, "event.kind"), Some(&json!("event")));
        assert_eq!(
            get(&d, "message"),
            Some(&json!(
                "Dec 31 23:59:58 web-1 sshd[1]: Accepted password for erin from 192.0.2.1 port 22 ssh2"
            ))
        );
        assert_eq!(out[0].id, None);

        // Same year when the line is not in the future.
        let line = json!({"message": "Jun  5 01:02:03 web-1 sshd[1]: Connection closed by 192.0.2.1 port 22"});
        normalize(line, &ctx("2026-07-01T00:00:00Z"), &mut out).expect("line normalizes");
        assert_eq!(
            out[1].timestamp,
            DateTime::parse_from_rfc3339("2026-06-05T01:02:03Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        // Tomorrow's line (clock skew) stays in this year.
        let line = json!({"message": "Jul  2 00:00:00 web-1 sshd[1]: Connection closed by 192.0.2.1 port 22"});
        normalize(line, &ctx("2026-07-01T12:00:00Z"), &mut out).expect("line normalizes");
        assert_eq!(out[2].timestamp.map(|t| t.year()), Some(2026));

        // RFC 3339 lines keep their own zone.
        let line = json!({"message": "2024-05-01T12:00:00+02:00 web-2 sshd[77]: Connection closed by 192.0.2.1 port 22"});
        normalize(line, &ctx("2026-07-01T12:00:00Z"), &mut out).expect("line normalizes");
        assert_eq!(
            out[3].timestamp,
            DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );

        // Unrecognized lines are still documents.
        let line = json!({"message": "random text"});
        normalize(line, &ctx("2026-07-01T12:00:00Z"), &mut out).expect("line normalizes");
        assert_eq!(out[4].timestamp, None);
        let d = Value::Object(out[4].doc.clone());
        assert_eq!(get(&d, "event.category"), Some(&json!(["host"])));
    }

    #[test]
    fn bad_records_are_errors() {
        let mut out = Vec::new();
        let c = ctx("2026-01-01T00:00:00Z");
        assert_eq!(
            normalize(json!("x"), &c, &mut out),
            Err(NormalizeError::NotAnObject)
        );
        assert_eq!(
            normalize(json!({"msg": "x"}), &c, &mut out),
            Err(NormalizeError::MissingField("message"))
        );
        assert_eq!(
            normalize(json!({"message": 5}), &c, &mut out),
            Err(NormalizeError::MissingField("message"))
        );
        // Impossible dates give no time rather than a wrong one.
        let line = json!({"message": "Feb 30 00:00:00 web-1 sshd[1]: Connection closed by 192.0.2.1 port 22"});
        normalize(line, &c, &mut out).expect("line normalizes");
        assert_eq!(out[0].timestamp, None);
    }
}
