//! Whether a broker answers at all, checked before any client library is
//! involved, so a broker that is not running gives one clear line instead
//! of a client's retry loop or a nested protocol error.

use std::time::Duration;

use tokio::net::TcpStream;

/// How long a TCP connect may take before the broker counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the benchmark could not run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Nothing accepted a TCP connection at the broker's address.
    #[error("{broker} is not reachable at {addr}: {why} (is it running?)")]
    Unreachable {
        /// The broker's name.
        broker: &'static str,
        /// `host:port` as tried.
        addr: String,
        /// The connect error or `timed out`.
        why: String,
    },
    /// The broker answered but refused the connection, queue or stream.
    #[error("{broker}: {what}: {why}")]
    Broker {
        /// The broker's name.
        broker: &'static str,
        /// The step that failed.
        what: &'static str,
        /// The client's error.
        why: String,
    },
}

/// The `host:port` of a broker URL (`scheme://user:pass@host:port/path`,
/// `host:port` or `host`), with `default_port` when it names none.
pub fn authority(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let has_port = match host_port.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((_, port)) => !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    }
}

/// Opens and closes one TCP connection to `addr`.
pub async fn check(broker: &'static str, addr: &str) -> Result<(), SetupError> {
    let unreachable = |why: String| SetupError::Unreachable {
        broker,
        addr: addr.to_owned(),
        why,
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("timed out".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_of_the_urls_the_brokers_take() {
        assert_eq!(
            authority("amqp://guest:guest@127.0.0.1:5672/%2f", 5672),
            "127.0.0.1:5672"
        );
        assert_eq!(authority("amqp://localhost", 5672), "localhost:5672");
        assert_eq!(authority("amqp://u:p@h/vhost?x=1", 5672), "h:5672");
        assert_eq!(authority("127.0.0.1:4222", 4222), "127.0.0.1:4222");
        assert_eq!(authority("nats://127.0.0.1:4333", 4222), "127.0.0.1:4333");
        assert_eq!(authority("nats://u:p:w@host", 4222), "host:4222");
        assert_eq!(authority("[::1]:4222", 4222), "[::1]:4222");
        assert_eq!(authority("[::1]", 4222), "[::1]:4222");
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable_with_its_address() {
        // Bind and drop: nothing listens on the port any more.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let err = check("nats", &addr.to_string())
            .await
            .expect_err("nothing listens");
        let text = err.to_string();
        assert!(
            text.starts_with("nats is not reachable at 127.0.0.1:"),
            "{text}"
        );
        assert!(matches!(err, SetupError::Unreachable { .. }));
    }

    #[tokio::test]
    async fn a_listening_port_is_reachable() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        check("rabbitmq", &addr).await.expect("reachable");
    }
}
