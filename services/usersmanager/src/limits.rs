//! What an instance accepts from a caller before it logs, stores or publishes anything: user
//! names and passwords within bounds, log fields that cannot start a line, and the login
//! throttle.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Longest user name accepted, in bytes of UTF-8.
pub const USER_NAME_MAX_BYTES: usize = 256;
/// Longest password accepted, in bytes of UTF-8.
pub const PASSWORD_MAX_BYTES: usize = 1024;
/// Characters of a caller's text shown in a log line; the rest is counted, not shown.
const LOG_FIELD_MAX_CHARS: usize = 64;
/// Most user names (and, apart, client addresses) whose failed logins are remembered.
const THROTTLE_KEYS_MAX: usize = 65_536;

/// Characters that change how the text around them is displayed without being visible: bidi
/// controls (U+202E turns `gnp.exe` into `exe.png`), zero-width ones, the byte order mark and
/// the line and paragraph separators.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{061c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// Checks a user name: 1 to [`USER_NAME_MAX_BYTES`] bytes, not only blanks, no control
/// character (a newline or an escape sequence forges log lines and terminal output) and no
/// invisible formatting character (two names that look the same must not be two users).
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name.len() > USER_NAME_MAX_BYTES {
        return Err(format!(
            "invalid user name: {} bytes long, the limit is {USER_NAME_MAX_BYTES}",
            name.len()
        ));
    }
    if name.chars().all(char::is_whitespace) {
        return Err("invalid user name: empty or only blanks".into());
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "invalid user name: contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if let Some(c) = name.chars().find(|c| is_invisible_format(*c)) {
        return Err(format!(
            "invalid user name: contains the invisible formatting character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Checks a password: at most [`PASSWORD_MAX_BYTES`] bytes (it is hashed, and carried in
/// queries to every instance).
pub fn check_password(password: &str) -> Result<(), String> {
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(format!(
            "invalid password: {} bytes long, the limit is {PASSWORD_MAX_BYTES}",
            password.len()
        ));
    }
    Ok(())
}

/// A caller's text in a log field: control and invisible characters, quotes and backslashes
/// escaped as Rust does (`\n`, `\u{202e}`), at most 64 characters shown, so no input can start a
/// log line or hide what follows it.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, (i, c)) in self.0.char_indices().enumerate() {
            if shown == LOG_FIELD_MAX_CHARS {
                return write!(f, "...(+{} bytes)", self.0.len() - i);
            }
            if is_invisible_format(c) {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                write!(f, "{}", c.escape_debug())?;
            }
        }
        Ok(())
    }
}

/// Recent failures per key, at most `max` of them within `window`.
#[derive(Debug)]
struct Failures<K> {
    max: usize,
    by_key: HashMap<K, VecDeque<Instant>>,
}

impl<K: Eq + Hash + Clone> Failures<K> {
    fn new(max: usize) -> Self {
        Failures {
            max: max.max(1),
            by_key: HashMap::new(),
        }
    }

    /// How long until `key` may try again; `None` when it may now.
    fn locked_for(&mut self, key: &K, window: Duration, now: Instant) -> Option<Duration> {
        let times = self.by_key.get_mut(key)?;
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.by_key.remove(key);
            return None;
        }
        (times.len() >= self.max).then(|| times[0] + window - now)
    }

    fn record(&mut self, key: &K, window: Duration, now: Instant) {
        if !self.by_key.contains_key(key) && self.by_key.len() >= THROTTLE_KEYS_MAX {
            self.by_key
                .retain(|_, t| t.back().is_some_and(|t| *t + window > now));
            if self.by_key.len() >= THROTTLE_KEYS_MAX {
                // Full of keys failing now: the per-address count still applies.
                return;
            }
        }
        let times = self.by_key.entry(key.clone()).or_default();
        times.push_back(now);
        while times.len() > self.max {
            times.pop_front();
        }
    }
}

/// The login throttle: after `UsersManager.LoginAttempts` failed logins for one user name, or
/// `UsersManager.LoginAttemptsPerAddress` from one client address, within
/// `UsersManager.LoginWindow`, further logins of that name or from that address are refused
/// until the oldest failure leaves the window, whatever the password.
#[derive(Debug)]
pub struct LoginThrottle {
    window: Duration,
    names: Mutex<Failures<String>>,
    addresses: Mutex<Failures<IpAddr>>,
}

impl LoginThrottle {
    /// A throttle allowing `per_name` and `per_address` failures within `window`.
    pub fn new(window: Duration, per_name: usize, per_address: usize) -> LoginThrottle {
        LoginThrottle {
            window,
            names: Mutex::new(Failures::new(per_name)),
            addresses: Mutex::new(Failures::new(per_address)),
        }
    }

    /// `Err` with the reason to give the caller when a login of `name` from `address` must wait.
    pub fn check(&self, name: &str, address: Option<IpAddr>) -> Result<(), String> {
        let now = Instant::now();
        let by_name = self
            .names
            .lock()
            .locked_for(&name.to_string(), self.window, now);
        let by_address =
            address.and_then(|a| self.addresses.lock().locked_for(&a, self.window, now));
        let (what, wait) = match (by_name, by_address) {
            (None, None) => return Ok(()),
            (Some(n), Some(a)) => ("user name and address", n.max(a)),
            (Some(n), None) => ("user name", n),
            (None, Some(a)) => ("client address", a),
        };
        Err(format!(
            "too many failed logins for this {what}: try again in {} s",
            wait.as_secs() + 1
        ))
    }

    /// Counts a failed login of `name` from `address`.
    pub fn failed(&self, name: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        self.names
            .lock()
            .record(&name.to_string(), self.window, now);
        if let Some(a) = address {
            self.addresses.lock().record(&a, self.window, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_refused_with_the_reason() {
        for (name, why) in [
            ("", "only blanks"),
            (" ", "only blanks"),
            ("\t \u{3000}", "only blanks"),
            ("\0", "U+0000"),
            ("bob\nINFO forged", "U+000A"),
            ("\u{1b}[2J", "U+001B"),
            ("gnp\u{202e}.exe", "U+202E"),
            ("a\u{200b}b", "U+200B"),
        ] {
            let e = check_user_name(name).unwrap_err();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        assert!(
            check_user_name(&"x".repeat(257))
                .unwrap_err()
                .contains("257 bytes")
        );
        for ok in ["bob", "José María", "名前", "a b", &"x".repeat(256)] {
            check_user_name(ok).unwrap();
        }
        check_password(&"p".repeat(1024)).unwrap();
        assert!(check_password(&"p".repeat(1025)).is_err());
    }

    #[test]
    fn log_fields_cannot_start_a_line() {
        let shown = Escaped("bob\n2024-01-01 INFO forged\u{202e}\u{1b}[31m\"").to_string();
        assert_eq!(
            shown,
            "bob\\n2024-01-01 INFO forged\\u{202e}\\u{1b}[31m\\\""
        );
        let long = Escaped(&"y".repeat(1 << 20)).to_string();
        assert_eq!(
            long,
            format!("{}...(+{} bytes)", "y".repeat(64), (1 << 20) - 64)
        );
    }

    #[test]
    fn the_throttle_counts_names_and_addresses_apart() {
        let t = LoginThrottle::new(Duration::from_secs(60), 3, 5);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..3 {
            t.check("bob", Some(a)).unwrap();
            t.failed("bob", Some(a));
        }
        assert!(t.check("bob", None).unwrap_err().contains("user name"));
        t.check("carol", Some(a)).unwrap();
        t.failed("carol", Some(a));
        t.failed("dave", Some(a));
        assert!(
            t.check("erin", Some(a))
                .unwrap_err()
                .contains("client address")
        );
        t.check("erin", Some("10.0.0.2".parse().unwrap())).unwrap();
        let t = LoginThrottle::new(Duration::from_millis(1), 1, 1);
        t.failed("bob", None);
        std::thread::sleep(Duration::from_millis(5));
        t.check("bob", None).unwrap();
    }
}
