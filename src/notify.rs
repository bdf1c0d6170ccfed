//! The systemd notify boundary: `READY=1`, `STATUS=`, `STOPPING=1` and `WATCHDOG=1` datagrams
//! to `$NOTIFY_SOCKET` (sd_notify(3)), formatted by the `sd-notify` crate.
//!
//! Owns: reading `NOTIFY_SOCKET` / `WATCHDOG_USEC` / `WATCHDOG_PID` once at start-up, and
//! sending. Must not: decide *when* to notify (the daemon loop does: READY after start-up,
//! WATCHDOG at [`Notifier::watchdog_interval`], STATUS with the last job outcome, STOPPING on
//! shutdown), block, or fail the daemon: outside systemd (no `NOTIFY_SOCKET`) every call is a
//! no-op, and a failed send is logged, never fatal.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use sd_notify::NotifyState;

/// A failed notification. The daemon logs it and carries on: systemd will restart a service
/// whose watchdog pings stop arriving, which is the right outcome if sending keeps failing.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The datagram could not be sent to `$NOTIFY_SOCKET`.
    #[error(
        "cannot notify systemd at NOTIFY_SOCKET={socket:?}: {source}; check that the unit is \
         Type=notify and that the service may write to the socket (RestrictAddressFamilies must \
         allow AF_UNIX)"
    )]
    Send {
        socket: OsString,
        #[source]
        source: io::Error,
    },
}

/// Talks to the service manager; a no-op when not started by one.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// A notifier that never sends (not under systemd; tests).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Built from this process's environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    pub fn from_env() -> Self {
        let vars: HashMap<String, String> = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"]
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Self::from_vars(&vars, std::process::id())
    }

    /// Built from the given variables, as if this were process `pid`. `WATCHDOG_USEC` counts
    /// only when `WATCHDOG_PID` is unset or names `pid` (sd_watchdog_enabled(3)); a zero or
    /// unparsable value means no watchdog.
    pub fn from_vars(vars: &HashMap<String, String>, pid: u32) -> Self {
        let socket = vars
            .get("NOTIFY_SOCKET")
            .filter(|s| !s.is_empty())
            .map(OsString::from);
        let for_us = vars
            .get("WATCHDOG_PID")
            .is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = vars
            .get("WATCHDOG_USEC")
            .filter(|_| for_us)
            .and_then(|u| match u.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(usec) => Some(Duration::from_micros(usec)),
                Err(_) => {
                    tracing::warn!(value = %u, "ignoring WATCHDOG_USEC: not a number of microseconds");
                    None
                }
            });
        Self { socket, watchdog }
    }

    /// Whether a service manager is listening (`NOTIFY_SOCKET` was set).
    pub fn is_enabled(&self) -> bool {
        self.socket.is_some()
    }

    /// How often to send `WATCHDOG=1`: half of systemd's `WatchdogSec=` (as systemd
    /// recommends), or `None` when no watchdog is configured or there is no socket.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.socket.as_ref()?;
        self.watchdog.map(|d| d / 2)
    }

    /// `READY=1`: start-up is complete (config loaded, mirror open, listener bound).
    pub fn ready(&self) {
        self.log_failure(self.send(&[NotifyState::Ready]));
    }

    /// `STATUS=...`: one line shown by `systemctl status` (newlines are replaced by spaces).
    pub fn status(&self, text: &str) {
        let line = text.replace(['\n', '\r'], " ");
        self.log_failure(self.send(&[NotifyState::Status(&line)]));
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.log_failure(self.send(&[NotifyState::Stopping]));
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog(&self) {
        self.log_failure(self.send(&[NotifyState::Watchdog]));
    }

    /// Sends the states as one datagram (one `KEY=VALUE` per line). Ok and nothing sent when
    /// not under systemd.
    pub fn send(&self, states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        let mut msg = String::new();
        for s in states {
            msg.push_str(&s.to_string());
            msg.push('\n');
        }
        send_datagram(socket, msg.as_bytes()).map_err(|source| NotifyError::Send {
            socket: socket.clone(),
            source,
        })
    }

    fn log_failure(&self, result: Result<(), NotifyError>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "systemd notification failed");
        }
    }
}

/// Sends one datagram to a path socket, or to an abstract one when the name starts with `@`.
fn send_datagram(socket: &OsString, msg: &[u8]) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let bytes = socket.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        abstract_send(&sock, name, msg)?
    } else {
        sock.send_to(msg, socket)?
    };
    if sent == msg.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "incomplete notify datagram",
        ))
    }
}

#[cfg(target_os = "linux")]
fn abstract_send(sock: &UnixDatagram, name: &[u8], msg: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sock.send_to_addr(msg, &addr)
}

#[cfg(not(target_os = "linux"))]
fn abstract_send(_sock: &UnixDatagram, _name: &[u8], _msg: &[u8]) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract NOTIFY_SOCKET names exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A socket the test owns, and a notifier aimed at it.
    fn bound(watchdog_usec: Option<&str>) -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut v = vars(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
        if let Some(u) = watchdog_usec {
            v.insert("WATCHDOG_USEC".into(), u.into());
        }
        (dir, rx, Notifier::from_vars(&v, 42))
    }

    fn recv(rx: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = rx.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn each_call_sends_its_datagram() {
        let (_dir, rx, n) = bound(None);
        assert!(n.is_enabled());
        n.ready();
        assert_eq!(recv(&rx), "READY=1\n");
        n.status("subscribers: ok, 120 records\nnext at 10:15");
        assert_eq!(
            recv(&rx),
            "STATUS=subscribers: ok, 120 records next at 10:15\n"
        );
        n.watchdog();
        assert_eq!(recv(&rx), "WATCHDOG=1\n");
        n.stopping();
        assert_eq!(recv(&rx), "STOPPING=1\n");
        n.send(&[NotifyState::Ready, NotifyState::Status("up")])
            .unwrap();
        assert_eq!(recv(&rx), "READY=1\nSTATUS=up\n");
    }

    #[test]
    fn abstract_socket_names_work() {
        let name = format!("tariscope-notify-test-{}", std::process::id());
        let addr = {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap()
        };
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = Notifier::from_vars(&vars(&[("NOTIFY_SOCKET", &format!("@{name}"))]), 1);
        n.ready();
        assert_eq!(recv(&rx), "READY=1\n");
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec() {
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<Duration>);
        let cases: &[Case] = &[
            (&[("NOTIFY_SOCKET", "/run/x")], None),
            (
                &[("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "30000000")],
                Some(Duration::from_secs(15)),
            ),
            (
                &[("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "1000")],
                Some(Duration::from_micros(500)),
            ),
            // WATCHDOG_PID names us / another process.
            (
                &[
                    ("NOTIFY_SOCKET", "/run/x"),
                    ("WATCHDOG_USEC", "2000000"),
                    ("WATCHDOG_PID", "42"),
                ],
                Some(Duration::from_secs(1)),
            ),
            (
                &[
                    ("NOTIFY_SOCKET", "/run/x"),
                    ("WATCHDOG_USEC", "2000000"),
                    ("WATCHDOG_PID", "7"),
                ],
                None,
            ),
            (&[("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "0")], None),
            (
                &[("NOTIFY_SOCKET", "/run/x"), ("WATCHDOG_USEC", "soon")],
                None,
            ),
            // No socket: nobody to ping.
            (&[("WATCHDOG_USEC", "30000000")], None),
            (
                &[("NOTIFY_SOCKET", ""), ("WATCHDOG_USEC", "30000000")],
                None,
            ),
        ];
        for (pairs, want) in cases {
            let n = Notifier::from_vars(&vars(pairs), 42);
            assert_eq!(n.watchdog_interval(), *want, "{pairs:?}");
        }
    }

    #[test]
    fn without_notify_socket_everything_is_a_no_op() {
        let n = Notifier::from_vars(&vars(&[]), 1);
        assert!(!n.is_enabled());
        n.ready();
        n.status("x");
        n.watchdog();
        n.stopping();
        assert!(n.send(&[NotifyState::Ready]).is_ok());
        assert!(!Notifier::disabled().is_enabled());
    }

    #[test]
    fn a_missing_socket_is_a_typed_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.sock");
        let n = Notifier::from_vars(&vars(&[("NOTIFY_SOCKET", path.to_str().unwrap())]), 1);
        let err = n.send(&[NotifyState::Ready]).unwrap_err();
        assert!(matches!(err, NotifyError::Send { .. }));
        assert!(err.to_string().contains("gone.sock"), "{err}");
        n.ready(); // logged, not fatal
    }
}
