//! TLS for the loader's connections, with libpq's `sslmode` meanings.
//!
//! `prefer` and `require` encrypt without checking the certificate (what libpq does, and what
//! sqlx did here before); `verify-full` checks the chain against `DB_CA_BUNDLE` (for RDS: the
//! RDS CA bundle) or, without one, the Mozilla roots (enough for RDS Proxy, whose certificates
//! come from ACM), and the host name. The crypto provider is aws-lc-rs, the AWS SDK's.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::SslMode;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("DB_CA_BUNDLE: cannot read `{path}` as PEM certificates")]
    CaBundle { path: String },
    #[error("DB_CA_BUNDLE: `{path}` holds no certificate")]
    EmptyCaBundle { path: String },
    #[error("setting up TLS failed")]
    Rustls(#[from] rustls::Error),
}

/// The rustls configuration for `mode`; `ca_bundle` is a PEM file path.
pub fn client_config(mode: SslMode, ca_bundle: Option<&str>) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match mode {
        SslMode::VerifyFull => builder.with_root_certificates(roots(ca_bundle)?).with_no_client_auth(),
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider.signature_verification_algorithms)))
            .with_no_client_auth(),
    };
    Ok(config)
}

fn roots(ca_bundle: Option<&str>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_bundle {
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|_| TlsError::CaBundle { path: path.to_owned() })?;
            let (added, _ignored) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TlsError::EmptyCaBundle { path: path.to_owned() });
            }
        }
    }
    Ok(roots)
}

/// Accepts any certificate (libpq's `require`: encryption against passive listeners only) but
/// still checks that the handshake is signed by the key in it.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
