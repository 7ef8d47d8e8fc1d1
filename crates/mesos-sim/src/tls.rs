//! https for the master and the agents, as with libprocess SSL: a test CA
//! and a certificate for `127.0.0.1` and `localhost` made at start, and the
//! HTTP server behind a rustls acceptor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::sim::SimError;

/// The files written into the TLS directory.
pub(crate) const CA_FILE: &str = "ca.pem";

/// Makes a CA and a server certificate it signed, writes the CA (and, for
/// other clients, the certificate and key) as PEM into `dir`, and returns
/// the server configuration.
pub(crate) fn generate(dir: &Path) -> Result<Arc<rustls::ServerConfig>, SimError> {
    let tls = |reason: String| SimError::Tls { reason };
    let ca_key = rcgen::KeyPair::generate().map_err(|e| tls(e.to_string()))?;
    let mut ca_params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| tls(e.to_string()))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mesos-sim test CA");
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca = ca_params
        .self_signed(&ca_key)
        .map_err(|e| tls(e.to_string()))?;
    let key = rcgen::KeyPair::generate().map_err(|e| tls(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .map_err(|e| tls(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mesos-sim");
    let cert = params
        .signed_by(&key, &ca, &ca_key)
        .map_err(|e| tls(e.to_string()))?;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| tls(format!("cannot write {}: {e}", path.display())))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| tls(format!("cannot create {}: {e}", dir.display())))?;
    write(CA_FILE, ca.pem())?;
    write("cert.pem", cert.pem())?;
    write("key.pem", key.serialize_pem())?;
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls(e.to_string()))?;
    Ok(Arc::new(config))
}

/// The CA file in a TLS directory.
pub(crate) fn ca_file(dir: &Path) -> PathBuf {
    dir.join(CA_FILE)
}

/// Serves `router` on `listener`, over TLS when `tls` is given.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    what: &'static str,
) {
    let Some(config) = tls else {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "{what} server stopped");
        }
        return;
    };
    let acceptor = TlsAcceptor::from(config);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::info!(error = %e, "{what}: TLS handshake failed");
                    return;
                }
            };
            let service = TowerToHyperService::new(router);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "{what}: connection ended");
            }
        });
    }
}
