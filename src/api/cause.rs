//! Why a request failed below HTTP, in the operator's words: connection refused, DNS, a TLS
//! certificate problem, or a connect timeout.
//!
//! Owns: reading reqwest's error chain (hyper, std I/O and rustls errors inside it) into a
//! [`ConnectCause`] and saying what to check for each. Must not: decide retryability (that
//! is `retry.rs`) or build requests.
//!
//! Written by hand because no crate names these causes: reqwest only says "connect error"
//! and keeps the detail in its source chain.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// Why no connection (TCP, then TLS) could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectCause {
    /// Nothing listens at the address (TCP RST).
    Refused,
    /// The host name does not resolve.
    Dns,
    /// The TLS handshake failed; the problem in words, with what to do.
    Tls(String),
    /// No connection within `api.connect_timeout_secs`.
    Timeout(Duration),
    /// Anything else (network unreachable, ...): the innermost error's text.
    Other(String),
}

impl ConnectCause {
    /// The cause of a reqwest connect error (`connect_timeout`: the configured value).
    pub fn of(err: &reqwest::Error, connect_timeout: Duration) -> ConnectCause {
        let mut innermost = err.to_string();
        let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
        while let Some(e) = cur {
            if let Some(tls) = e.downcast_ref::<rustls::Error>() {
                return ConnectCause::Tls(tls_problem(tls));
            }
            let io = e.downcast_ref::<std::io::Error>();
            if io.is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused) {
                return ConnectCause::Refused;
            }
            let text = e.to_string();
            // hyper-util's connector names a resolver failure "dns error".
            if text == "dns error" || text.contains("failed to lookup address") {
                return ConnectCause::Dns;
            }
            innermost = text;
            // std's io::Error::source() skips the error it wraps: step into that one.
            cur = match io.and_then(|io| io.get_ref()) {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => e.source(),
            };
        }
        if err.is_timeout() {
            return ConnectCause::Timeout(connect_timeout);
        }
        ConnectCause::Other(innermost)
    }

    /// The message of a failed connection to `target` (`host:port`).
    pub fn describe(&self, target: &str) -> String {
        match self {
            ConnectCause::Refused => format!(
                "connection refused by {target}: is Tariscope's API running, and is api.base_url right?"
            ),
            ConnectCause::Dns => format!(
                "cannot resolve the host name of {target} (DNS): check the host in api.base_url and this machine's DNS settings"
            ),
            ConnectCause::Tls(problem) => format!("TLS with {target} failed: {problem}"),
            ConnectCause::Timeout(after) => format!(
                "no connection to {target} within {} (api.connect_timeout_secs): check that the host is reachable from here (firewall, routing) and that api.base_url is right",
                seconds(*after)
            ),
            ConnectCause::Other(text) => format!(
                "cannot connect to {target} ({text}): check api.base_url, the network and that the server runs"
            ),
        }
    }
}

impl fmt::Display for ConnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectCause::Refused => f.write_str("connection refused"),
            ConnectCause::Dns => f.write_str("DNS failure"),
            ConnectCause::Tls(_) => f.write_str("TLS failure"),
            ConnectCause::Timeout(_) => f.write_str("connect timeout"),
            ConnectCause::Other(_) => f.write_str("connect failure"),
        }
    }
}

/// A duration as an operator writes it in the config: `10 s`, `1.5 s`, `250 ms`.
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn tls_problem(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    let hint = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "the server's certificate is not signed by a CA this machine trusts (self-signed or a private CA): put that CA's certificate (PEM) in api.ca_file"
            }
            C::Expired | C::ExpiredContext { .. } => {
                "the server's certificate has expired: renew it on the server"
            }
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet: check the clocks of both machines"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not issued for the host in api.base_url: use the name the certificate names"
            }
            C::Revoked => "the server's certificate has been revoked",
            _ => "the server's certificate was refused",
        },
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "the server does not speak TLS at this port (should api.base_url start with http://?)"
        }
        _ => "the TLS handshake failed",
    };
    format!("{hint} ({e})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config_values() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(2100)), "2.1 s");
        assert_eq!(seconds(Duration::from_millis(300)), "300 ms");
    }

    #[test]
    fn certificate_problems_say_what_to_do() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(
            tls_problem(&e).contains("api.ca_file"),
            "{}",
            tls_problem(&e)
        );
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert!(tls_problem(&e).contains("expired"));
    }
}
