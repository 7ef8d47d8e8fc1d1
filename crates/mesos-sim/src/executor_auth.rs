//! Executor authentication, as an agent started with
//! `--authenticate_http_executors` does it: each executor gets an HS256 JWT
//! with the claims `fid`, `eid` and `cid` in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`,
//! and every executor API call must carry it as `Authorization: Bearer`.
//!
//! The agent's default authenticators are `basic,jwt` combined, so a refused
//! call gets both challenges and both bodies, as libprocess's
//! `CombinedAuthenticator` joins them.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;

/// Mesos's `EXECUTOR_HTTP_AUTHENTICATION_REALM`.
pub(crate) const REALM: &str = "mesos-agent-executor";

/// The claims of an authenticated executor.
pub(crate) type Claims = BTreeMap<String, String>;

/// The agent's JWT secret.
pub(crate) struct TokenIssuer {
    key: hmac::Key,
}

/// A 401: the `WWW-Authenticate` value and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unauthorized {
    pub challenge: String,
    pub body: String,
}

impl TokenIssuer {
    /// An issuer with a fresh random secret.
    pub fn new() -> Self {
        let secret = uuid::Uuid::new_v4();
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// The token of one executor container.
    pub fn issue(&self, framework_id: &str, executor_id: &str, container_id: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "fid": framework_id,
            "eid": executor_id,
            "cid": container_id,
        });
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{payload}");
        let signature = hmac::sign(&self.key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// Checks the `Authorization` header; returns the token's claims.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Claims, Unauthorized> {
        let Some(header) = header else {
            return Err(unauthorized(None));
        };
        let parts: Vec<&str> = header.split(' ').collect();
        if parts.len() != 2 {
            return Err(unauthorized(Some("Malformed 'Authorization' header")));
        }
        if parts[0] != "Bearer" {
            return Err(unauthorized(Some(&format!(
                "Scheme '{}' unsupported",
                parts[0]
            ))));
        }
        self.verify(parts[1])
            .map_err(|e| unauthorized(Some(&format!("Invalid JWT: {e}"))))
    }

    fn verify(&self, token: &str) -> Result<Claims, String> {
        let components: Vec<&str> = token.split('.').collect();
        if components.len() != 3 {
            return Err(format!(
                "Expected 3 components in token, got {}",
                components.len()
            ));
        }
        let header: serde_json::Value = URL_SAFE_NO_PAD
            .decode(components[0])
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("Failed to parse token header")?;
        if header["alg"] != "HS256" {
            return Err(format!(
                "Token 'alg' value {} does not match, expected \"HS256\"",
                header["alg"]
            ));
        }
        let payload: serde_json::Map<String, serde_json::Value> = URL_SAFE_NO_PAD
            .decode(components[1])
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or("Failed to parse token payload")?;
        let signature = URL_SAFE_NO_PAD
            .decode(components[2])
            .map_err(|e| format!("Failed to base64url-decode token signature: {e}"))?;
        let signed = format!("{}.{}", components[0], components[1]);
        hmac::verify(&self.key, signed.as_bytes(), &signature)
            .map_err(|_| "Token signature does not match".to_owned())?;
        if payload.is_empty() {
            return Err("JWT claims missing".into());
        }
        Ok(payload
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect())
    }
}

/// The combined `basic,jwt` refusal; `error` is the JWT authenticator's
/// `error_description`, absent when no credentials were sent.
fn unauthorized(error: Option<&str>) -> Unauthorized {
    let bearer = match error {
        None => format!("Bearer realm=\"{REALM}\""),
        Some(e) => {
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{e}\"")
        }
    };
    Unauthorized {
        challenge: format!("Basic realm=\"{REALM}\",{bearer}"),
        body: "\"Basic\" authenticator returned:\n401 Unauthorized.\n\n\
               \"Bearer\" authenticator returned:\n401 Unauthorized."
            .into(),
    }
}

/// The agent's `verifyExecutorClaims`: the token must be the one issued to
/// this executor's current container. The error is the 403 body.
pub(crate) fn verify_claims(
    claims: &Claims,
    framework_id: &str,
    executor_id: &str,
    container_id: &str,
) -> Result<(), String> {
    let principal = serde_json::json!({ "claims": claims }).to_string();
    if claims.get("fid").map(String::as_str) != Some(framework_id) {
        return Err(format!(
            "Authenticated principal '{principal}' does not contain an 'fid' claim with the framework ID {framework_id}, which is set in the call"
        ));
    }
    if claims.get("eid").map(String::as_str) != Some(executor_id) {
        return Err(format!(
            "Authenticated principal '{principal}' does not contain an 'eid' claim with the executor ID {executor_id}, which is set in the call"
        ));
    }
    if claims.get("cid").map(String::as_str) != Some(container_id) {
        return Err(format!(
            "Authenticated principal '{principal}' does not contain a 'cid' claim with the correct active ContainerID"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_authenticate_with_their_claims() {
        let issuer = TokenIssuer::new();
        let token = issuer.issue("fw", "ex", "c1");
        let claims = issuer
            .authenticate(Some(&format!("Bearer {token}")))
            .expect("valid");
        assert_eq!(claims["fid"], "fw");
        assert_eq!(claims["eid"], "ex");
        assert_eq!(claims["cid"], "c1");
        assert!(verify_claims(&claims, "fw", "ex", "c1").is_ok());
        let err = verify_claims(&claims, "fw", "other", "c1").expect_err("eid");
        assert!(
            err.contains("'eid' claim with the executor ID other"),
            "{err}"
        );
        let err = verify_claims(&claims, "fw", "ex", "c2").expect_err("cid");
        assert!(err.contains("correct active ContainerID"), "{err}");
    }

    #[test]
    fn refusals_say_why_as_mesos_does() {
        let issuer = TokenIssuer::new();
        let missing = issuer.authenticate(None).expect_err("missing");
        assert_eq!(
            missing.challenge,
            "Basic realm=\"mesos-agent-executor\",Bearer realm=\"mesos-agent-executor\""
        );
        let other = TokenIssuer::new().issue("fw", "ex", "c1");
        let forged = issuer
            .authenticate(Some(&format!("Bearer {other}")))
            .expect_err("another agent's token");
        assert!(
            forged
                .challenge
                .contains("Invalid JWT: Token signature does not match"),
            "{forged:?}"
        );
        for (header, says) in [
            ("Bearer", "Malformed 'Authorization' header"),
            ("Basic abc", "Scheme 'Basic' unsupported"),
            ("Bearer a.b", "Expected 3 components in token, got 2"),
        ] {
            let e = issuer.authenticate(Some(header)).expect_err(header);
            assert!(e.challenge.contains(says), "{header}: {e:?}");
        }
    }
}
