//! What of a partner URL may be written down. Partners put tokens in the
//! query string (`?token=…`) and sometimes in userinfo; errors reach the
//! logs, the delivery log and the DLQ's `error` header, so they name the
//! partner by scheme, host, port and path only.

/// `https://user:pw@pb.example:8443/cb?token=s#f` → `https://pb.example:8443/cb`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}{}", u.scheme(), u.host_str().unwrap_or(""), u.path())
        }
        Err(_) => "(unparsable url)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheme_host_port_and_path_remain() {
        assert_eq!(
            redact_url("https://user:pw@pb.example:8443/cb/x?token=SECRET&a=1#frag"),
            "https://pb.example:8443/cb/x"
        );
        assert_eq!(redact_url("http://127.0.0.1/?token=SECRET"), "http://127.0.0.1/");
        assert_eq!(redact_url("http://[::1]:9/p"), "http://[::1]:9/p");
        assert_eq!(redact_url("not a url?token=SECRET"), "(unparsable url)");
    }
}
