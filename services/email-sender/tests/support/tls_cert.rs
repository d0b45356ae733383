//! Throwaway self-signed certificates, made with the openssl CLI.

use std::path::PathBuf;
use tokio::process::Command;

/// A certificate and its key in a private temporary directory, removed on drop.
pub struct TlsCert {
    dir: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsCert {
    /// For `localhost` and 127.0.0.1.
    pub async fn self_signed() -> TlsCert {
        Self::self_signed_for("DNS:localhost,IP:127.0.0.1").await
    }

    /// For the given subjectAltName entries, e.g. `DNS:relay.example`.
    pub async fn self_signed_for(alt_names: &str) -> TlsCert {
        let dir = std::env::temp_dir().join(format!("pf-email-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir).expect("create a temporary directory");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        // An end-entity certificate (CA:FALSE) that is its own trust anchor: what a private
        // relay with a self-signed certificate looks like.
        let output = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
            .arg("-addext")
            .arg(format!("subjectAltName={alt_names}"))
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .await
            .unwrap_or_else(|e| {
                panic!("cannot run the openssl CLI ({e}); install Debian's openssl package")
            });
        assert!(
            output.status.success(),
            "openssl failed to make a certificate: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        TlsCert { dir, cert, key }
    }
}

impl Drop for TlsCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
