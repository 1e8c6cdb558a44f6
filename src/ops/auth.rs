//! Bearer-token check on every Ops call (`authorization: Bearer TOKEN`).

use crate::auth::{bearer, Tokens};
use tonic::{Request, Status};

/// The tokens the Ops service accepts. With none, every call is refused: an operations port
/// that can hang up calls must never be open by accident.
#[derive(Clone)]
pub struct BearerAuth {
    tokens: Tokens,
}

impl BearerAuth {
    /// Tokens from the config plus the one from the environment (FRONTLINE_OPS_TOKEN), if set.
    pub fn new(config_tokens: &[String], env_token: Option<String>) -> BearerAuth {
        BearerAuth { tokens: Tokens::new(config_tokens, env_token) }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(value) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated("missing `authorization: Bearer <token>` metadata"));
        };
        let presented = value.to_str().ok().and_then(bearer).ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
        if self.tokens.is_empty() {
            return Err(Status::unauthenticated("no Ops token is configured on the gateway (set [ops] tokens or FRONTLINE_OPS_TOKEN)"));
        }
        if !self.tokens.accepts(presented) {
            return Err(Status::unauthenticated("invalid token"));
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::service::Interceptor;

    fn with_auth(value: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(v) = value {
            r.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        r
    }

    #[test]
    fn only_a_configured_token_passes() {
        let mut auth = BearerAuth::new(&["s3cret".into()], Some("from-env".into()));
        assert!(auth.call(with_auth(Some("Bearer s3cret"))).is_ok());
        assert!(auth.call(with_auth(Some("Bearer from-env"))).is_ok());
        for bad in [None, Some("Bearer wrong"), Some("s3cret"), Some("Bearer s3cre"), Some("Basic s3cret")] {
            let err = auth.call(with_auth(bad)).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn without_tokens_everything_is_refused() {
        let mut auth = BearerAuth::new(&[], Some("  ".into()));
        assert!(auth.is_empty());
        assert_eq!(auth.call(with_auth(Some("Bearer "))).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
