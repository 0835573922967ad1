//! TLS for listeners: certificate and key from PEM files, reloadable.
//!
//! Owns building the rustls [`ServerConfig`] (ring provider, TLS 1.2 and 1.3,
//! ALPN `h2` then `http/1.1`), the [`ReloadableTls`] that SIGHUP swaps without
//! touching open connections (each handshake takes the configuration current
//! at that moment), and the self-signed certificate `localserve` generates.
//!
//! Never: logs key material; keeps the old configuration after a reload that
//! succeeded, or replaces it after one that failed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file could not be read or holds no certificate.
    #[error("certificate {path}: {message}")]
    Cert {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key file could not be read or holds no private key.
    #[error("key {path}: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match).
    #[error("certificate and key: {0}")]
    Config(#[from] rustls::Error),
    /// Generating or writing the self-signed certificate failed.
    #[error("self-signed certificate: {0}")]
    Generate(String),
}

/// Reads a certificate chain and key and builds the server configuration.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let cert_err = |message: String| TlsError::Cert {
        path: cert.into(),
        message,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.into(),
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener's TLS configuration, replaced on reload.
#[derive(Debug)]
pub struct ReloadableTls {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    /// Loads the files once; fails if they are not usable.
    pub fn new(cert: PathBuf, key: PathBuf) -> Result<ReloadableTls, TlsError> {
        let config = load(&cert, &key)?;
        Ok(ReloadableTls {
            cert,
            key,
            current: RwLock::new(config),
        })
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the files again; on success new handshakes use them, open
    /// connections keep theirs. On failure nothing changes.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = load(&self.cert, &self.key)?;
        match self.current.write() {
            Ok(mut c) => *c = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

/// Makes a self-signed certificate for `names` (host names or IP addresses)
/// in `dir` as `cert.pem` and `key.pem`, unless both exist. Returns their paths.
pub fn self_signed(dir: &Path, names: &[String]) -> Result<(PathBuf, PathBuf), TlsError> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let g = |e: &dyn std::fmt::Display| TlsError::Generate(e.to_string());
    let made = rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| g(&e))?;
    std::fs::create_dir_all(dir).map_err(|e| g(&e))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes()).map_err(|e| g(&e))?;
    std::fs::write(&cert, made.cert.pem()).map_err(|e| g(&e))?;
    Ok((cert, key))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)?.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_loads_and_reloads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) =
            self_signed(dir.path(), &["localhost".into(), "127.0.0.1".into()]).expect("generate");
        let t = ReloadableTls::new(c.clone(), k.clone()).expect("load");
        let before = t.current();
        assert_eq!(before.alpn_protocols[0], b"h2");
        // a second call keeps the files
        let again = self_signed(dir.path(), &["localhost".into()]).expect("again");
        assert_eq!(again, (c.clone(), k.clone()));
        // a broken file is refused and the old configuration stays
        std::fs::write(&c, "not pem").expect("write");
        let e = t.reload().expect_err("broken");
        assert!(e.to_string().contains("cert.pem"), "{e}");
        assert!(Arc::ptr_eq(&before, &t.current()));
        // new files are picked up
        std::fs::remove_file(&c).expect("rm");
        std::fs::remove_file(&k).expect("rm");
        self_signed(dir.path(), &["localhost".into()]).expect("new");
        t.reload().expect("reload");
        assert!(!Arc::ptr_eq(&before, &t.current()));
    }

    #[test]
    fn missing_files_name_the_file() {
        let e = load(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
    }
}
