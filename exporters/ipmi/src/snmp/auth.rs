//! SNMP credentials (`snmp.auths` of `--config.file`): communities and SNMPv3 USM users,
//! read from files or environment variables, never from the YAML itself, argv or logs.
//!
//! ```yaml
//! snmp:
//!   auths:
//!     public_v2:                  # built in (community "public", v2c) unless redefined
//!       version: 2
//!     ups_ro:
//!       version: 2                # 1 | 2 (v2c)
//!       community_file: /etc/hpcmon/snmp-community     # or community_env: UPS_COMMUNITY
//!       targets: [ups-a.example.org]                   # allow-list (others: 403)
//!     ups_v3:
//!       version: 3
//!       username: monitor
//!       security_level: authPriv  # noAuthNoPriv | authNoPriv | authPriv
//!       auth_protocol: SHA        # MD5 | SHA | SHA224 | SHA256 | SHA384 | SHA512
//!       password_file: /etc/hpcmon/ups-auth           # or password_env
//!       priv_protocol: AES        # DES | AES | AES192 | AES256 (and the -C/Cisco variants)
//!       priv_password_file: /etc/hpcmon/ups-priv      # or priv_password_env
//!       context_name: ""
//!       targets: [10.3.0.0/24]
//! ```
//!
//! The v3 passphrases are turned into master keys once, when the configuration is loaded
//! (the RFC 3414 password-to-key step hashes a megabyte), and only the keys are kept.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use async_snmp::{Auth, AuthProtocol, MasterKeys, PrivProtocol, UsmConfig};
use serde::Deserialize;

use crate::config::{read_secret, AllowedTarget, Secret};

/// The YAML of one auth.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    #[serde(default)]
    version: Option<u8>,
    #[serde(default)]
    community_file: Option<PathBuf>,
    #[serde(default)]
    community_env: Option<String>,
    /// Refused with a clear message: secrets are never inline.
    #[serde(default)]
    community: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    security_level: Option<String>,
    #[serde(default)]
    auth_protocol: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
    #[serde(default)]
    password_env: Option<String>,
    #[serde(default)]
    password: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    priv_protocol: Option<String>,
    #[serde(default)]
    priv_password_file: Option<PathBuf>,
    #[serde(default)]
    priv_password_env: Option<String>,
    #[serde(default)]
    priv_password: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    context_name: Option<String>,
    #[serde(default)]
    targets: Option<Vec<String>>,
}

/// A resolved auth: the client credentials, ready to use.
#[derive(Clone)]
pub struct SnmpAuth {
    /// Auth name (`auth=` parameter).
    pub name: String,
    /// 1, 2 (v2c) or 3.
    pub version: u8,
    /// What is said about it in logs: version, user, level, protocols (no secrets).
    pub describe: String,
    /// Whether it carries anything secret (a community other than `public`, a v3 user).
    pub secret: bool,
    /// Allow-list for `/snmp?target=`; `None`: any target.
    pub targets: Option<Vec<AllowedTarget>>,
    /// The client's credentials (community, or USM user with precomputed master keys).
    pub client: Auth,
    /// Compared by `PartialEq` (reload tests): a digest-free fingerprint of the settings.
    fingerprint: (String, Secret, Secret, Secret),
}

impl std::fmt::Debug for SnmpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnmpAuth")
            .field("name", &self.name)
            .field("describe", &self.describe)
            .field("targets", &self.targets)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SnmpAuth {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.targets == o.targets && self.fingerprint == o.fingerprint
    }
}

impl SnmpAuth {
    /// The built-in `public_v2`: community `public`, SNMPv2c, any target.
    pub fn public_v2() -> SnmpAuth {
        SnmpAuth {
            name: "public_v2".into(),
            version: 2,
            describe: "SNMPv2c, community public".into(),
            secret: false,
            targets: None,
            client: Auth::v2c("public"),
            fingerprint: (
                "2".into(),
                Secret::new("public".into()),
                Secret::default(),
                Secret::default(),
            ),
        }
    }
}

fn auth_protocol(s: &str) -> anyhow::Result<AuthProtocol> {
    Ok(match s.to_ascii_uppercase().replace('-', "").as_str() {
        "MD5" => AuthProtocol::Md5,
        "SHA" | "SHA1" => AuthProtocol::Sha1,
        "SHA224" => AuthProtocol::Sha224,
        "SHA256" => AuthProtocol::Sha256,
        "SHA384" => AuthProtocol::Sha384,
        "SHA512" => AuthProtocol::Sha512,
        _ => bail!("auth_protocol {s:?} is not MD5, SHA, SHA224, SHA256, SHA384 or SHA512"),
    })
}

fn priv_protocol(s: &str) -> anyhow::Result<PrivProtocol> {
    // net-snmp / snmp_exporter spelling: AES192 and AES256 are the Blumenthal variants,
    // AES192C and AES256C the Reeder ("Cisco") ones.
    Ok(match s.to_ascii_uppercase().replace('-', "").as_str() {
        "DES" => PrivProtocol::Des,
        "AES" | "AES128" => PrivProtocol::Aes128,
        "AES192" => PrivProtocol::Aes192Blumenthal,
        "AES256" => PrivProtocol::Aes256Blumenthal,
        "AES192C" => PrivProtocol::Aes192Reeder,
        "AES256C" => PrivProtocol::Aes256Reeder,
        _ => bail!("priv_protocol {s:?} is not DES, AES, AES192, AES256, AES192C or AES256C"),
    })
}

/// Resolves one auth: reads its secrets, checks the combination, derives v3 master keys.
pub fn resolve(name: &str, a: RawAuth) -> anyhow::Result<SnmpAuth> {
    if a.community.is_some() || a.password.is_some() || a.priv_password.is_some() {
        bail!("secrets are not read from the config file itself: use community_file/community_env, password_file/password_env, priv_password_file/priv_password_env");
    }
    let version = a.version.unwrap_or(2);
    let targets = crate::config::parse_targets(a.targets.as_deref())?;
    match version {
        1 | 2 => {
            if a.username.is_some()
                || a.security_level.is_some()
                || a.auth_protocol.is_some()
                || a.password_file.is_some()
                || a.password_env.is_some()
                || a.priv_protocol.is_some()
                || a.priv_password_file.is_some()
                || a.priv_password_env.is_some()
                || a.context_name.is_some()
            {
                bail!("username, security_level, protocols, passwords and context_name are SNMPv3 settings (this auth is version {version})");
            }
            let community = read_secret(
                "community",
                a.community_file.as_deref(),
                a.community_env.as_deref(),
            )?
            .unwrap_or_else(|| Secret::new("public".into()));
            if community.expose().is_empty() {
                bail!("the community is empty");
            }
            let bytes = community.expose().as_bytes().to_vec();
            let client = if version == 1 {
                Auth::v1(bytes)
            } else {
                Auth::v2c(bytes)
            };
            let public = community.expose() == "public";
            Ok(SnmpAuth {
                name: name.to_string(),
                version,
                describe: format!(
                    "SNMPv{}, community {}",
                    if version == 1 { "1" } else { "2c" },
                    if public { "public" } else { "from file/env" }
                ),
                secret: !public,
                targets,
                client,
                fingerprint: (
                    version.to_string(),
                    community,
                    Secret::default(),
                    Secret::default(),
                ),
            })
        }
        3 => {
            if a.community_file.is_some() || a.community_env.is_some() {
                bail!("communities are SNMPv1/v2c settings (this auth is version 3)");
            }
            let user = a
                .username
                .filter(|u| !u.is_empty())
                .context("version 3 needs a username")?;
            let level = a
                .security_level
                .unwrap_or_else(|| "noAuthNoPriv".into())
                .to_ascii_lowercase();
            let auth_pw = read_secret(
                "password",
                a.password_file.as_deref(),
                a.password_env.as_deref(),
            )?;
            let priv_pw = read_secret(
                "priv_password",
                a.priv_password_file.as_deref(),
                a.priv_password_env.as_deref(),
            )?;
            let mut usm = UsmConfig::new(user.clone().into_bytes());
            let describe;
            match level.as_str() {
                "noauthnopriv" => {
                    if auth_pw.is_some() || priv_pw.is_some() {
                        bail!("security_level noAuthNoPriv takes no passwords");
                    }
                    describe = format!("SNMPv3 user {user} noAuthNoPriv");
                }
                "authnopriv" | "authpriv" => {
                    let proto = auth_protocol(a.auth_protocol.as_deref().unwrap_or("SHA"))?;
                    let pw = auth_pw
                        .as_ref()
                        .context("an authenticated level needs password_file or password_env")?;
                    if pw.expose().len() < 8 {
                        bail!("the authentication passphrase must have at least 8 characters (RFC 3414)");
                    }
                    let mut keys = MasterKeys::new(proto, pw.expose().as_bytes())
                        .map_err(|e| anyhow::anyhow!("authentication key: {e}"))?;
                    let mut d = format!(
                        "SNMPv3 user {user} {}",
                        if level == "authpriv" {
                            "authPriv"
                        } else {
                            "authNoPriv"
                        }
                    );
                    d.push_str(&format!(" {proto}"));
                    if level == "authpriv" {
                        let pp = priv_protocol(a.priv_protocol.as_deref().unwrap_or("AES"))?;
                        let ppw = priv_pw
                            .as_ref()
                            .context("authPriv needs priv_password_file or priv_password_env")?;
                        if ppw.expose().len() < 8 {
                            bail!(
                                "the privacy passphrase must have at least 8 characters (RFC 3414)"
                            );
                        }
                        keys = keys
                            .with_privacy(pp, ppw.expose().as_bytes())
                            .map_err(|e| anyhow::anyhow!("privacy key: {e}"))?;
                        d.push_str(&format!("/{pp}"));
                    } else if priv_pw.is_some() || a.priv_protocol.is_some() {
                        bail!("security_level authNoPriv takes no privacy settings (use authPriv)");
                    }
                    usm = usm
                        .with_master_keys(keys)
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    describe = d;
                }
                other => {
                    bail!("security_level {other:?} is not noAuthNoPriv, authNoPriv or authPriv")
                }
            }
            if let Some(c) = &a.context_name {
                usm = usm.context_name(c.clone().into_bytes());
            }
            Ok(SnmpAuth {
                name: name.to_string(),
                version: 3,
                describe,
                secret: true,
                targets,
                client: Auth::Usm(usm),
                fingerprint: (
                    format!(
                        "3 {user} {level} {:?} {:?} {:?}",
                        a.auth_protocol, a.priv_protocol, a.context_name
                    ),
                    Secret::default(),
                    auth_pw.unwrap_or_default(),
                    priv_pw.unwrap_or_default(),
                ),
            })
        }
        v => bail!("version {v} is not 1, 2 or 3"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> anyhow::Result<SnmpAuth> {
        resolve("a", serde_yaml_ng::from_str(y)?)
    }

    #[test]
    fn v2c_and_v3_from_files_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c");
        std::fs::write(&c, "s3cret-community\n").unwrap();
        let a = parse(&format!("version: 2\ncommunity_file: {}\n", c.display())).unwrap();
        assert!(a.secret);
        assert!(!format!("{a:?}").contains("s3cret"), "{a:?}");
        assert!(!a.describe.contains("s3cret"));
        std::env::set_var("HPCMON_SNMP_TEST_AUTH", "authsecret1");
        std::env::set_var("HPCMON_SNMP_TEST_PRIV", "privsecret1");
        let v3 = parse("version: 3\nusername: ups\nsecurity_level: authPriv\nauth_protocol: SHA\npassword_env: HPCMON_SNMP_TEST_AUTH\npriv_protocol: AES\npriv_password_env: HPCMON_SNMP_TEST_PRIV\n").unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(v3.describe, "SNMPv3 user ups authPriv SHA/AES");
        let dbg = format!("{v3:?}");
        assert!(
            !dbg.contains("authsecret1") && !dbg.contains("privsecret1"),
            "{dbg}"
        );
        assert_eq!(SnmpAuth::public_v2().describe, "SNMPv2c, community public");
    }

    #[test]
    fn bad_auths_are_refused_with_the_reason() {
        std::env::set_var("HPCMON_SNMP_TEST_SHORT", "short");
        for (y, want) in [
            ("community: hunter2\n", "not read from the config file"),
            ("version: 3\npassword: x\n", "not read from the config file"),
            ("version: 4\n", "not 1, 2 or 3"),
            ("version: 2\nusername: u\n", "SNMPv3 settings"),
            ("version: 3\n", "username"),
            ("version: 3\nusername: u\nsecurity_level: authPriv\n", "password"),
            ("version: 3\nusername: u\nsecurity_level: authNoPriv\npassword_env: HPCMON_SNMP_TEST_SHORT\n", "8 characters"),
            ("version: 3\nusername: u\nsecurity_level: bogus\n", "security_level"),
            ("version: 3\nusername: u\nsecurity_level: authNoPriv\nauth_protocol: SHA3\npassword_env: HPCMON_SNMP_TEST_SHORT\n", "auth_protocol"),
            ("version: 2\ncommunity_env: HPCMON_SNMP_UNSET_VAR\n", "HPCMON_SNMP_UNSET_VAR"),
            ("version: 2\ntargets: ['-x']\n", "target"),
            ("bogus: 1\n", "bogus"),
        ] {
            let e = format!("{:#}", parse(y).unwrap_err());
            assert!(e.contains(want), "{y}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }
}
