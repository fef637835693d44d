//! `skua info` (Dovecot's `doveconf -n`, Cyrus's cyr_info): the configuration `skua serve`
//! would run with, given the same flags and config file, showing only what differs from what
//! it runs with given neither (`--all`: every setting).
//!
//! The settings are the runtime's own `ServerConfig` as `serve` builds it (`server_config` in
//! `main.rs`, one function for both), compared field by field with the same function's result
//! for no file and no flags, through their `Debug` form, so a setting added to the runtime shows up here without a line
//! of this file changing. TLS is shown as the `[tls]` section names it: loading it could make a
//! certificate.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Args;

use crate::ServeArgs;
use crate::config::FileConfig;

/// `skua info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    serve: ServeArgs,
    /// Every setting, not only those that differ from the defaults.
    #[arg(long)]
    all: bool,
    /// Print as a JSON object on stdout (setting name to its value as text).
    #[arg(long)]
    json: bool,
}

/// The top-level fields of a `{:#?}` struct rendering: `name` to its value's text.
fn fields(pretty: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in pretty.lines().skip(1) {
        let top = line.strip_prefix("    ").filter(|rest| !rest.starts_with(' '));
        match top.and_then(|rest| rest.split_once(": ")) {
            Some((name, value)) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                if let Some((name, value)) = current.take() {
                    out.insert(name, value.trim_end_matches(',').to_owned());
                }
                let value = value.strip_suffix(',').unwrap_or(value);
                current = Some((name.to_owned(), value.to_owned()));
            }
            _ => {
                if let Some((_, value)) = current.as_mut()
                    && line != "}"
                {
                    value.push('\n');
                    value.push_str(line.strip_prefix("    ").unwrap_or(line));
                }
            }
        }
    }
    if let Some((name, value)) = current {
        out.insert(name, value.trim_end_matches(',').to_owned());
    }
    out
}

/// Runs `skua info`.
///
/// # Errors
/// The config file cannot be read or holds an invalid setting.
pub fn run(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let file = FileConfig::load(args.serve.common.config.as_deref())?;
    let data_dir = file.data_dir(args.serve.common.data_dir.as_deref());
    let effective = crate::server_config(&file, &args.serve, data_dir)?;
    // The defaults: what `skua serve` runs with given no config file and no flags.
    let bare = {
        use clap::{Args as _, FromArgMatches as _};
        let command = ServeArgs::augment_args(clap::Command::new("serve"));
        ServeArgs::from_arg_matches(&command.get_matches_from(["serve"]))?
    };
    let empty = FileConfig::default();
    let default_config = crate::server_config(&empty, &bare, empty.data_dir(None))?;
    let defaults = fields(&format!("{default_config:#?}"));
    let mut shown: BTreeMap<String, String> = fields(&format!("{effective:#?}"))
        .into_iter()
        .filter(|(name, value)| args.all || defaults.get(name) != Some(value))
        .collect();
    shown.remove("tls");
    let tls = match file.tls_settings(|| anyhow::bail!("self-signed")) {
        Ok((settings, _)) => format!("{settings:?}"),
        Err(_) if file.tls.cert.is_none() && file.tls.key.is_none() => {
            "self-signed certificate in DATA_DIR/tls (made on first start)".to_owned()
        }
        Err(error) => return Err(error),
    };
    shown.insert("tls".to_owned(), tls);
    // `[auth]` as the file says: loading it makes DATA_DIR/sasl-secret on first use.
    let auth = format!("{:#?}", file.auth);
    if args.all || auth != format!("{:#?}", empty.auth) {
        shown.insert("auth".to_owned(), auth);
    }
    if args.json {
        println!("{}", serde_json::to_string(&shown)?);
    } else {
        for (name, value) in &shown {
            println!("{name} = {value}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(dead_code)] // read through `Debug` only
    #[derive(Debug, Default)]
    struct Inner {
        a: u32,
        b: Vec<u32>,
    }

    #[allow(dead_code)] // read through `Debug` only
    #[derive(Debug, Default)]
    struct Outer {
        name: String,
        inner: Inner,
        count: usize,
    }

    #[test]
    fn fields_split_a_pretty_struct_at_its_top_level() {
        let value = Outer { name: "x".to_owned(), inner: Inner { a: 1, b: vec![2, 3] }, count: 4 };
        let got = fields(&format!("{value:#?}"));
        assert_eq!(got.keys().collect::<Vec<_>>(), ["count", "inner", "name"]);
        assert_eq!(got["name"], "\"x\"");
        assert_eq!(got["count"], "4");
        assert!(got["inner"].starts_with("Inner {\n    a: 1,"), "{:?}", got["inner"]);
        assert!(got["inner"].ends_with("\n}"), "no trailing comma: {:?}", got["inner"]);
        let same = fields(&format!("{:#?}", Outer::default()));
        assert_ne!(got["inner"], same["inner"]);
        assert_eq!(same["count"], "0");
    }
}
