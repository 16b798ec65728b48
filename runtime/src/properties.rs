//! Ice configuration properties: property files, `--Ice.Config=`, `ICE_CONFIG` and command-line
//! overrides, with the same syntax and precedence rules as ZeroC Ice 3.7.
//!
//! ```
//! let props = floe::Properties::new();
//! props.parse_line("Hello.Endpoints = tcp -h 127.0.0.1 -p 0   # a comment");
//! assert_eq!(props.get_property("Hello.Endpoints"), "tcp -h 127.0.0.1 -p 0");
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Prefixes whose `--Prefix.Key=value` options Ice itself takes from the command line.
const ICE_COMMAND_LINE_PREFIXES: &[&str] = &[
    "Ice",
    "IceMX",
    "IceDiscovery",
    "IceLocatorDiscovery",
    "IceBox",
    "IceBoxAdmin",
    "IceBridge",
    "IceGridAdmin",
    "IceGrid",
    "IcePatch2",
    "IcePatch2Client",
    "IceSSL",
    "IceStormAdmin",
    "IceBT",
    "Glacier2",
    "Glacier2CryptPermissionsVerifier",
    "Freeze",
];

/// A set of configuration properties (string keys to string values), shared by handle.
///
/// Cloning a `Properties` gives another handle to the same set; use [`Properties::deep_clone`]
/// for an independent copy.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    inner: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Properties {
    /// An empty property set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds properties the way `Ice::createProperties(args)` does: `--Ice.Config=files` (or,
    /// without it, the `ICE_CONFIG` environment variable) names files to load, then every
    /// `--Ice.*` (and other Ice-owned prefixes) option overrides them. Consumed options are removed
    /// from `args`; the first argument is taken as the program name.
    pub fn from_args(args: &mut Vec<String>) -> Result<Self> {
        Self::from_args_and_env(args, |name| std::env::var(name).ok())
    }

    /// [`Properties::from_args`] with the environment given by `env` (for tests and embedding).
    pub fn from_args_and_env(
        args: &mut Vec<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let props = Properties::new();
        if let Some(first) = args.first() {
            props.set_property("Ice.ProgramName", &first.replace('\\', "/"));
        }
        let mut config_given = false;
        let mut rest = Vec::with_capacity(args.len());
        for (i, arg) in args.drain(..).enumerate() {
            if i > 0 && arg.starts_with("--Ice.Config") {
                let line = if arg.contains('=') {
                    arg[2..].to_string()
                } else {
                    format!("{}=1", &arg[2..])
                };
                props.parse_line(&line);
                config_given = true;
            } else {
                rest.push(arg);
            }
        }
        *args = rest;
        if config_given || props.get_property("Ice.Config").is_empty() {
            props.load_config(&env)?;
        }
        for prefix in ICE_COMMAND_LINE_PREFIXES {
            props.parse_command_line_options(prefix, args);
        }
        Ok(props)
    }

    fn load_config(&self, env: &impl Fn(&str) -> Option<String>) -> Result<()> {
        let mut value = self.get_property("Ice.Config");
        if value.is_empty() || value == "1" {
            if let Some(v) = env("ICE_CONFIG").filter(|v| !v.is_empty()) {
                value = v;
            }
        }
        if value.is_empty() || value == "1" {
            if value == "1" {
                self.set_property("Ice.Config", "");
            }
            return Ok(());
        }
        for file in value.split(',') {
            let file = file.trim();
            if !file.is_empty() {
                self.load(file)?;
            }
        }
        self.set_property("Ice.Config", &value);
        Ok(())
    }

    /// An independent copy of these properties.
    pub fn deep_clone(&self) -> Self {
        Properties {
            inner: Arc::new(Mutex::new(self.inner.lock().clone())),
        }
    }

    /// The value of `key`, or `""` when it is not set.
    pub fn get_property(&self, key: &str) -> String {
        self.inner.lock().get(key).cloned().unwrap_or_default()
    }

    /// The value of `key`, or `default` when it is not set.
    pub fn get_property_with_default(&self, key: &str, default: &str) -> String {
        self.inner
            .lock()
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// The value of `key` as an integer; `0` when unset.
    pub fn get_property_as_int(&self, key: &str) -> i32 {
        self.get_property_as_int_with_default(key, 0)
    }

    /// The value of `key` as an integer, or `default` when it is unset or not a number (Ice warns
    /// and falls back to the default in that case; so does Floe).
    pub fn get_property_as_int_with_default(&self, key: &str, default: i32) -> i32 {
        let Some(value) = self.inner.lock().get(key).cloned() else {
            return default;
        };
        match value.trim_start().parse::<i32>() {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(
                    "numeric property {key} set to non-numeric value, defaulting to {default}"
                );
                default
            }
        }
    }

    /// The value of `key` split at whitespace and commas (quotes group words), or `default` when
    /// unset or empty.
    pub fn get_property_as_list_with_default(&self, key: &str, default: &[&str]) -> Vec<String> {
        let value = self.get_property(key);
        let list = split_list(&value);
        if list.is_empty() {
            default.iter().map(|s| s.to_string()).collect()
        } else {
            list
        }
    }

    /// The value of `key` as a list (see [`Properties::get_property_as_list_with_default`]).
    pub fn get_property_as_list(&self, key: &str) -> Vec<String> {
        self.get_property_as_list_with_default(key, &[])
    }

    /// Every property whose key starts with `prefix` (all of them for `""`).
    pub fn get_properties_for_prefix(&self, prefix: &str) -> BTreeMap<String, String> {
        self.inner
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Sets `key` (trimmed) to `value`; an empty value removes the property. An empty key is
    /// ignored.
    pub fn set_property(&self, key: &str, value: &str) {
        let key = key.trim();
        if key.is_empty() {
            return;
        }
        let mut map = self.inner.lock();
        if value.is_empty() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), value.to_string());
        }
    }

    /// Every property as a `--key=value` option.
    pub fn get_command_line_options(&self) -> Vec<String> {
        self.inner
            .lock()
            .iter()
            .map(|(k, v)| format!("--{k}={v}"))
            .collect()
    }

    /// Takes every `--prefix.Key=value` option out of `args` and sets it (`--prefix.Key` alone
    /// means `=1`). Returns nothing; `args` keeps the other options, in order.
    pub fn parse_command_line_options(&self, prefix: &str, args: &mut Vec<String>) {
        let mut pfx = String::from("--");
        pfx.push_str(prefix);
        if !prefix.is_empty() && !prefix.ends_with('.') {
            pfx.push('.');
        }
        args.retain(|arg| {
            if arg.starts_with(&pfx) {
                let line = if arg.contains('=') {
                    arg[2..].to_string()
                } else {
                    format!("{}=1", &arg[2..])
                };
                self.parse_line(&line);
                false
            } else {
                true
            }
        });
    }

    /// Loads a property file, each line parsed by [`Properties::parse_line`]. A UTF-8 byte order
    /// mark at the start is skipped.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Initialization(format!("cannot read config file `{}`: {e}", path.display()))
        })?;
        self.load_str(&text);
        Ok(())
    }

    /// Parses the text of a property file.
    pub fn load_str(&self, text: &str) {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for line in text.split('\n') {
            self.parse_line(line);
        }
    }

    /// Parses one line of a property file, with Ice's rules: `#` starts a comment; the key ends at
    /// the first unescaped `=`; leading and trailing whitespace of key and value is dropped, but
    /// escaped spaces (`\ `) at the start or end of a value are kept; `\\`, `\#` and `\=` stand for
    /// the character; any other backslash is kept as is. There are no continuation lines. A line
    /// without `=` (or with an empty key) is ignored with a warning; an empty value unsets the key.
    pub fn parse_line(&self, line: &str) {
        if let Some((key, value)) = parse_property_line(line) {
            self.set_property(&key, &value);
        }
    }
}

/// Splits a line into its key and value; `None` for blank, comment-only and invalid lines.
fn parse_property_line(line: &str) -> Option<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let mut key = String::new();
    let mut value = String::new();
    let mut in_value = false;
    let mut whitespace = String::new();
    let mut escaped_space = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !in_value {
            match c {
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    let n = chars[i];
                    match n {
                        '\\' | '#' | '=' => {
                            key.push_str(&whitespace);
                            whitespace.clear();
                            key.push(n);
                        }
                        ' ' => {
                            if !key.is_empty() {
                                whitespace.push(' ');
                            }
                        }
                        _ => {
                            key.push_str(&whitespace);
                            whitespace.clear();
                            key.push('\\');
                            key.push(n);
                        }
                    }
                }
                '\\' => {
                    key.push_str(&whitespace);
                    key.push('\\');
                }
                ' ' | '\t' | '\r' | '\n' => {
                    if !key.is_empty() {
                        whitespace.push(c);
                    }
                }
                '=' => {
                    whitespace.clear();
                    in_value = true;
                }
                '#' => break,
                _ => {
                    key.push_str(&whitespace);
                    whitespace.clear();
                    key.push(c);
                }
            }
        } else {
            match c {
                '\\' if i + 1 < chars.len() => {
                    i += 1;
                    let n = chars[i];
                    match n {
                        '\\' | '#' | '=' => {
                            value.push_str(if value.is_empty() {
                                &escaped_space
                            } else {
                                &whitespace
                            });
                            whitespace.clear();
                            escaped_space.clear();
                            value.push(n);
                        }
                        ' ' => {
                            whitespace.push(' ');
                            escaped_space.push(' ');
                        }
                        _ => {
                            value.push_str(if value.is_empty() {
                                &escaped_space
                            } else {
                                &whitespace
                            });
                            whitespace.clear();
                            escaped_space.clear();
                            value.push('\\');
                            value.push(n);
                        }
                    }
                }
                '\\' => {
                    value.push_str(if value.is_empty() {
                        &escaped_space
                    } else {
                        &whitespace
                    });
                    value.push('\\');
                }
                ' ' | '\t' | '\r' | '\n' => {
                    if !value.is_empty() {
                        whitespace.push(c);
                    }
                }
                '#' => break,
                _ => {
                    value.push_str(if value.is_empty() {
                        &escaped_space
                    } else {
                        &whitespace
                    });
                    whitespace.clear();
                    escaped_space.clear();
                    value.push(c);
                }
            }
        }
        i += 1;
    }
    value.push_str(&escaped_space);
    if (!in_value && !key.is_empty()) || (in_value && key.is_empty()) {
        tracing::warn!("invalid config file entry: \"{line}\"");
        return None;
    }
    if key.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Splits at commas and whitespace, honouring single and double quotes.
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ',' || c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(line: &str) -> Option<(String, String)> {
        parse_property_line(line)
    }

    fn kv(k: &str, v: &str) -> Option<(String, String)> {
        Some((k.to_string(), v.to_string()))
    }

    #[test]
    fn plain_lines_trim_key_and_value() {
        assert_eq!(parsed("  A.B  =  some value  "), kv("A.B", "some value"));
        assert_eq!(parsed("A=1"), kv("A", "1"));
        assert_eq!(parsed("A = x y\tz\r"), kv("A", "x y\tz"));
    }

    #[test]
    fn comments_blank_and_invalid_lines() {
        assert_eq!(parsed(""), None);
        assert_eq!(parsed("   # only a comment"), None);
        assert_eq!(parsed("A = b # trailing"), kv("A", "b"));
        assert_eq!(parsed("no equals sign"), None);
        assert_eq!(parsed("= value without key"), None);
    }

    #[test]
    fn escapes_follow_ice() {
        assert_eq!(parsed(r"A = a\#b"), kv("A", "a#b"));
        assert_eq!(parsed(r"A\=B = c"), kv("A=B", "c"));
        assert_eq!(parsed(r"A = c:\\dir"), kv("A", r"c:\dir"));
        assert_eq!(parsed(r"A = \n"), kv("A", r"\n"));
        assert_eq!(parsed(r"A = \ \ lead"), kv("A", "  lead"));
        assert_eq!(parsed(r"A = trail\ \ "), kv("A", "trail  "));
        assert_eq!(parsed(r"A = x=y"), kv("A", "x=y"));
        // A trailing backslash is not a continuation: it stays in the value.
        assert_eq!(parsed("A = one\\"), kv("A", "one\\"));
    }

    #[test]
    fn empty_value_unsets() {
        let p = Properties::new();
        p.parse_line("A=1");
        assert_eq!(p.get_property("A"), "1");
        p.parse_line("A=");
        assert_eq!(p.get_property("A"), "");
        assert!(p.get_properties_for_prefix("A").is_empty());
    }

    #[test]
    fn typed_getters() {
        let p = Properties::new();
        p.set_property("N", "42");
        p.set_property("Bad", "4x");
        p.set_property("L", "a, b  'c d'");
        assert_eq!(p.get_property_as_int("N"), 42);
        assert_eq!(p.get_property_as_int_with_default("Bad", 7), 7);
        assert_eq!(p.get_property_as_int_with_default("Missing", 9), 9);
        assert_eq!(p.get_property_as_list("L"), vec!["a", "b", "c d"]);
        assert_eq!(p.get_property_with_default("Missing", "d"), "d");
    }

    #[test]
    fn command_line_overrides_file() {
        let dir = std::env::temp_dir().join(format!("floe-props-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config");
        std::fs::write(
            &file,
            "\u{feff}Ice.Trace.Network=1\nHello.Endpoints=tcp -p 0\nIce.Default.Host = 127.0.0.1\n",
        )
        .unwrap();
        let mut args = vec![
            "prog".to_string(),
            format!("--Ice.Config={}", file.display()),
            "--Ice.Trace.Network=3".to_string(),
            "--Ice.Warn.Connections".to_string(),
            "--Hello.Endpoints=ignored".to_string(),
            "positional".to_string(),
        ];
        let p = Properties::from_args(&mut args).unwrap();
        assert_eq!(p.get_property("Ice.Trace.Network"), "3");
        assert_eq!(p.get_property("Ice.Warn.Connections"), "1");
        assert_eq!(p.get_property("Hello.Endpoints"), "tcp -p 0");
        assert_eq!(p.get_property("Ice.Default.Host"), "127.0.0.1");
        assert_eq!(p.get_property("Ice.ProgramName"), "prog");
        assert_eq!(
            args,
            vec!["prog", "--Hello.Endpoints=ignored", "positional"]
        );
        p.parse_command_line_options("Hello", &mut args);
        assert_eq!(p.get_property("Hello.Endpoints"), "ignored");
        assert_eq!(args, vec!["prog", "positional"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ice_config_environment_variable() {
        let dir = std::env::temp_dir().join(format!("floe-props-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.cfg"), dir.join("b.cfg"));
        std::fs::write(&a, "X.A=1\nX.Shared=from a\n").unwrap();
        std::fs::write(&b, "X.B=2\nX.Shared=from b\n").unwrap();
        let list = format!("{}, {}", a.display(), b.display());
        let env = |name: &str| (name == "ICE_CONFIG").then(|| list.clone());
        let mut args = vec!["prog".to_string(), "--X.B=cli".to_string()];
        let p = Properties::from_args_and_env(&mut args, env).unwrap();
        assert_eq!(p.get_property("X.A"), "1");
        assert_eq!(
            p.get_property("X.Shared"),
            "from b",
            "later files override earlier ones"
        );
        assert_eq!(p.get_property("Ice.Config"), list);
        // --X.B is not an Ice prefix: it stays in args and the file's value stands.
        assert_eq!(p.get_property("X.B"), "2");
        assert_eq!(args, vec!["prog", "--X.B=cli"]);
        // --Ice.Config on the command line wins over ICE_CONFIG.
        let mut args = vec!["prog".to_string(), format!("--Ice.Config={}", a.display())];
        let p = Properties::from_args_and_env(&mut args, env).unwrap();
        assert_eq!(p.get_property("X.Shared"), "from a");
        assert_eq!(p.get_property("X.B"), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let mut args = vec![
            "prog".to_string(),
            "--Ice.Config=/nonexistent/floe/config".to_string(),
        ];
        let err = Properties::from_args(&mut args).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/floe/config"),
            "{err}"
        );
    }
}
