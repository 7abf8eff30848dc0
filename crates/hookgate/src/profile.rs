//! Where the commands that talk to a server find it and their credentials.
//!
//! Each value comes from the first of: its flag (`--server`, ...), its
//! environment variable (`HOOKGATE_SERVER`, ...), the chosen profile of the
//! profile file. The file is `--profile-file`, else `HOOKGATE_PROFILE_FILE`,
//! else `$XDG_CONFIG_HOME/hookgate/profiles.toml`, else
//! `~/.config/hookgate/profiles.toml`; the profile is `--profile`, else
//! `HOOKGATE_PROFILE`, else the file's `default`, else the one named
//! `default`:
//!
//! ```toml
//! default = "local"
//!
//! [profiles.local]
//! server = "http://127.0.0.1:8080"
//! api_key = "the API key secret"
//! admin_token = "the admin token"
//!
//! [profiles.staging]
//! server = "https://hooks.staging.example.com"
//! api_private_key = "64 hex chars: Ed25519 seed whose public key is registered"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::client::{ApiClient, Credential};
use crate::exit::usage;

/// Connection flags shared by every command that talks to a server.
/// The environment variables the command line reads (beside the server's
/// `HOOKGATE_*` settings), so that one shell can run both.
pub const ENVIRONMENT: &[&str] = &[
    "HOOKGATE_PROFILE_FILE",
    "HOOKGATE_PROFILE",
    "HOOKGATE_SERVER",
    "HOOKGATE_API_KEY",
    "HOOKGATE_API_PRIVATE_KEY",
    "HOOKGATE_OUTPUT",
];

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ConnectionArgs {
    /// Profile file (TOML) [default: ~/.config/hookgate/profiles.toml].
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_PROFILE_FILE",
        value_name = "FILE"
    )]
    pub profile_file: Option<PathBuf>,
    /// Profile to use [default: the file's `default`].
    #[arg(long, global = true, env = "HOOKGATE_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Server URL, such as http://127.0.0.1:8080.
    #[arg(long, global = true, env = "HOOKGATE_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// Organisation API key secret (sent as a bearer token).
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_API_KEY",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Ed25519 seed (64 hex) of a registered API key: signs requests the way
    /// Cobo's SDKs do instead of sending a secret.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_API_PRIVATE_KEY",
        value_name = "HEX",
        hide_env_values = true
    )]
    pub api_private_key: Option<String>,
    /// Admin token, for the producer surface.
    #[arg(
        long,
        global = true,
        env = "HOOKGATE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
}

/// One profile of the file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: Option<String>,
    pub api_key: Option<String>,
    pub api_private_key: Option<String>,
    pub admin_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    default: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The values in force, and where the profile came from (for messages).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    pub values: Profile,
    /// `name (file)` of the profile used, if any.
    pub source: Option<String>,
}

/// The profile file's default place.
pub fn default_file() -> Option<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(config.join("hookgate").join("profiles.toml"))
}

impl ConnectionArgs {
    /// Resolves flags and variables over the profile file.
    pub fn resolve(&self) -> anyhow::Result<Resolved> {
        let (file, explicit_file) = match &self.profile_file {
            Some(path) => (Some(path.clone()), true),
            None => (default_file(), false),
        };
        let text = match &file {
            Some(path) if path.exists() => Some(std::fs::read_to_string(path).map_err(|e| {
                usage(format!(
                    "cannot read the profile file {}: {e}",
                    path.display()
                ))
            })?),
            Some(path) if explicit_file => {
                return Err(usage(format!(
                    "the profile file {} does not exist",
                    path.display()
                )))
            }
            _ => None,
        };
        let label = file.map(|p| p.display().to_string()).unwrap_or_default();
        resolve(self, text.as_deref(), &label)
    }

    /// A client of the organisation surface.
    pub fn org_client(&self) -> anyhow::Result<ApiClient> {
        let resolved = self.resolve()?;
        let server = require_server(&resolved)?;
        let values = resolved.values;
        let credential = match (values.api_private_key, values.api_key) {
            (Some(seed), _) => Credential::signing(&seed)?,
            (None, Some(secret)) => Credential::Bearer(secret),
            (None, None) => {
                return Err(usage(
                    "no API key: pass --api-key (or --api-private-key), set HOOKGATE_API_KEY, \
                     or add api_key to a profile",
                ))
            }
        };
        ApiClient::with_credential(&server, credential)
    }
}

fn require_server(resolved: &Resolved) -> anyhow::Result<String> {
    resolved.values.server.clone().ok_or_else(|| {
        usage("no server: pass --server URL, set HOOKGATE_SERVER, or add server to a profile")
    })
}

/// The pure part of resolution: flags and variables (already merged by the
/// argument parser) over the chosen profile of `file_text`.
pub fn resolve(
    args: &ConnectionArgs,
    file_text: Option<&str>,
    file_label: &str,
) -> anyhow::Result<Resolved> {
    let file: ProfileFile = match file_text {
        Some(text) => toml::from_str(text)
            .map_err(|e| usage(format!("the profile file {file_label} is not valid: {e}")))?,
        None => ProfileFile::default(),
    };

    let wanted = args.profile.clone().or(file.default.clone());
    let (profile, source) = match &wanted {
        Some(name) => match file.profiles.get(name) {
            Some(profile) => (profile.clone(), Some(format!("{name} ({file_label})"))),
            None if args.profile.is_some() || file.default.is_some() => {
                let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
                return Err(usage(format!(
                    "no profile {name:?} in {}; profiles there: {}",
                    if file_label.is_empty() {
                        "the profile file"
                    } else {
                        file_label
                    },
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            None => (Profile::default(), None),
        },
        None => match file.profiles.get("default") {
            Some(profile) => (profile.clone(), Some(format!("default ({file_label})"))),
            None => (Profile::default(), None),
        },
    };

    let pick = |flag: &Option<String>, from_profile: Option<String>| {
        flag.clone().filter(|v| !v.is_empty()).or(from_profile)
    };
    Ok(Resolved {
        values: Profile {
            server: pick(&args.server, profile.server),
            api_key: pick(&args.api_key, profile.api_key),
            api_private_key: pick(&args.api_private_key, profile.api_private_key),
            admin_token: pick(&args.admin_token, profile.admin_token),
        },
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
default = "local"

[profiles.local]
server = "http://127.0.0.1:8080"
api_key = "local-secret"

[profiles.staging]
server = "https://staging.example.com"
admin_token = "staging-admin"
"#;

    fn args() -> ConnectionArgs {
        ConnectionArgs::default()
    }

    #[test]
    fn the_default_profile_applies_without_flags() {
        let resolved = resolve(&args(), Some(FILE), "p.toml").unwrap();
        assert_eq!(
            resolved.values.server.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(resolved.values.api_key.as_deref(), Some("local-secret"));
        assert_eq!(resolved.source.as_deref(), Some("local (p.toml)"));
    }

    #[test]
    fn a_named_profile_replaces_the_default() {
        let chosen = ConnectionArgs {
            profile: Some("staging".into()),
            ..args()
        };
        let resolved = resolve(&chosen, Some(FILE), "p.toml").unwrap();
        assert_eq!(
            resolved.values.server.as_deref(),
            Some("https://staging.example.com")
        );
        assert_eq!(
            resolved.values.api_key, None,
            "values never leak across profiles"
        );
        assert_eq!(
            resolved.values.admin_token.as_deref(),
            Some("staging-admin")
        );
    }

    #[test]
    fn flags_and_variables_beat_the_profile() {
        let flags = ConnectionArgs {
            server: Some("http://127.0.0.1:9999".into()),
            ..args()
        };
        let resolved = resolve(&flags, Some(FILE), "p.toml").unwrap();
        assert_eq!(
            resolved.values.server.as_deref(),
            Some("http://127.0.0.1:9999")
        );
        assert_eq!(resolved.values.api_key.as_deref(), Some("local-secret"));
    }

    #[test]
    fn an_unknown_profile_is_a_usage_error_naming_the_known_ones() {
        let chosen = ConnectionArgs {
            profile: Some("prod".into()),
            ..args()
        };
        let error = resolve(&chosen, Some(FILE), "p.toml").unwrap_err();
        assert_eq!(
            crate::exit::code_of(&error),
            std::process::ExitCode::from(2)
        );
        let text = error.to_string();
        assert!(
            text.contains("\"prod\"") && text.contains("local, staging"),
            "{text}"
        );
    }

    #[test]
    fn no_file_means_flags_only() {
        let resolved = resolve(&args(), None, "").unwrap();
        assert_eq!(resolved, Resolved::default());
    }

    #[test]
    fn a_profile_named_default_is_used_when_the_file_names_none() {
        let file = "[profiles.default]\nserver = \"http://127.0.0.1:1\"\n";
        let resolved = resolve(&args(), Some(file), "p.toml").unwrap();
        assert_eq!(
            resolved.values.server.as_deref(),
            Some("http://127.0.0.1:1")
        );
    }

    #[test]
    fn a_malformed_file_is_a_usage_error() {
        let error = resolve(&args(), Some("server = 1\n[profiles"), "p.toml").unwrap_err();
        assert!(error.to_string().contains("p.toml"), "{error}");
        let error = resolve(&args(), Some("[profiles.a]\nsevrer = \"x\"\n"), "p.toml").unwrap_err();
        assert!(error.to_string().contains("sevrer"), "{error}");
    }
}
