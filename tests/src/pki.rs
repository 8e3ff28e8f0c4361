//! Throw-away certificates for TLS tests, made with the `openssl` CLI (package `openssl`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::{require_program, run_command};

/// A test CA, a server certificate for `127.0.0.1` / `localhost` and a client certificate,
/// all PEM files in one folder.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The folder holding the files.
    pub dir: PathBuf,
    /// CA certificate (`ca.crt`).
    pub ca_cert: PathBuf,
    /// Server certificate (`server.crt`), SANs `IP:127.0.0.1` and `DNS:localhost`.
    pub server_cert: PathBuf,
    /// Server key (`server.key`).
    pub server_key: PathBuf,
    /// Client certificate (`client.crt`, CN `hpcmon-test-client`) for mutual TLS.
    pub client_cert: PathBuf,
    /// Client key (`client.key`).
    pub client_key: PathBuf,
    /// A self-signed client certificate (not signed by the CA): `stranger.crt`.
    pub stranger_cert: PathBuf,
    /// Its key: `stranger.key`.
    pub stranger_key: PathBuf,
}

impl Pki {
    /// Creates the CA, the server and client certificates it signs and a self-signed
    /// "stranger" client certificate in `dir` (EC P-256, valid for 2 days).
    pub async fn create(dir: &Path) -> anyhow::Result<Pki> {
        let openssl = require_program("openssl", "infra");
        std::fs::create_dir_all(dir)?;
        let t = Duration::from_secs(30);
        let ossl = |args: &[&str]| {
            let mut c = Command::new(&openssl);
            c.current_dir(dir).args(args);
            c
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=hpcmon test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run_command(ossl(&args), t).await?;
        for (name, cn, ext) in [
            (
                "server",
                "localhost",
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
            ),
            (
                "client",
                "hpcmon-test-client",
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext)?;
            let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
            let subj = format!("/CN={cn}");
            let mut args = vec!["req"];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            run_command(ossl(&args), t).await?;
            let extfile = format!("{name}.ext");
            run_command(
                ossl(&[
                    "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                    "-CAcreateserial", "-out", &crt, "-days", "2", "-extfile", &extfile,
                ]),
                t,
            )
            .await?;
        }
        // A client certificate no CA of ours signed (self-signed), for "unknown client" cases.
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        args.extend([
            "-keyout",
            "stranger.key",
            "-out",
            "stranger.crt",
            "-days",
            "2",
            "-subj",
            "/CN=stranger",
            "-addext",
            "extendedKeyUsage=clientAuth",
        ]);
        run_command(ossl(&args), t).await?;
        Ok(Pki {
            stranger_cert: dir.join("stranger.crt"),
            stranger_key: dir.join("stranger.key"),
            dir: dir.to_path_buf(),
            ca_cert: dir.join("ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
        })
    }

    /// The CA certificate's PEM (for [`crate::ClientOptions::ca`]).
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert).expect("reading ca.crt")
    }

    /// Client certificate followed by its key, PEM (for [`crate::ClientOptions::identity`]).
    pub fn client_identity_pem(&self) -> Vec<u8> {
        let mut v = std::fs::read(&self.client_cert).expect("reading client.crt");
        v.extend(std::fs::read(&self.client_key).expect("reading client.key"));
        v
    }
}
