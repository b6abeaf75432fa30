//! The one certificate both servers serve, and the TLS configurations: the evrs server's
//! (rustls with the `ring` provider evrs-tls uses, its defaults) and the client's (one
//! suite, one group, TLS 1.3 only, the certificate pinned, no resumption).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A self-signed ECDSA P-256 certificate for `localhost` (rcgen's default key type, which
/// both OpenSSL and ring sign with), as PEM files in a temporary directory (what the C
/// server loads) and as DER (what the client pins). The directory goes with the value.
pub(crate) struct Pki {
    dir: PathBuf,
    cert: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl Pki {
    pub(crate) fn generate() -> io::Result<Pki> {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .map_err(io::Error::other)?;
        let dir = std::env::temp_dir().join(format!("evrs-tls-echo-ab-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let pki = Pki {
            dir,
            cert: c.cert.der().clone(),
            key_der: c.key_pair.serialize_der(),
        };
        std::fs::write(pki.cert_pem(), c.cert.pem())?;
        std::fs::write(pki.key_pem(), c.key_pair.serialize_pem())?;
        std::fs::write(pki.cert_der_path(), pki.cert.as_ref())?;
        Ok(pki)
    }

    pub(crate) fn cert_pem(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// The private key, PKCS#8 PEM.
    pub(crate) fn key_pem(&self) -> PathBuf {
        self.dir.join("key.pem")
    }

    /// The certificate as DER: the client's command line names this file.
    pub(crate) fn cert_der_path(&self) -> PathBuf {
        self.dir.join("cert.der")
    }

    /// The evrs server's configuration: rustls's defaults with the ring provider (as
    /// evrs-tls's own tests and example build it).
    pub(crate) fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .map_err(io::Error::other)?;
        Ok(Arc::new(config))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The client's configuration. It offers exactly one suite (TLS13_AES_128_GCM_SHA256) and
/// one key-exchange group (X25519), TLS 1.3 only, so both servers negotiate the same thing
/// without being configured differently from their defaults. Resumption is off: every
/// connection is a full handshake. The certificate is checked by comparing it with the
/// pinned one (no chain building); the handshake signature is still verified.
pub(crate) fn client_config(cert_der: &Path) -> io::Result<Arc<ClientConfig>> {
    let cert = CertificateDer::from(std::fs::read(cert_der)?);
    let mut provider = ring::default_provider();
    provider.cipher_suites = vec![ring::cipher_suite::TLS13_AES_128_GCM_SHA256];
    provider.kx_groups = vec![ring::kx_group::X25519];
    let algs = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, algs }))
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Accepts exactly one certificate (the pinned one, alone).
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
