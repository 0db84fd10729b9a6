//! The task that reads SIP over UDP, owned and watched by siphon.
//!
//! rsipstack would read its UDP listener in a task it spawns and forgets: a
//! panic there (issue 15 found one in the guard) would end SIP over UDP for
//! good while everything else looked healthy. So the listener rsipstack
//! knows only sends (see `GuardedUdp`), and this module runs rsipstack's read
//! loop on a second handle of the same socket in a task of its own. If that
//! task stops before shutdown, for a panic or any other reason, the
//! listener's `siphon_sip_listener_up` gauge drops to 0 and `/healthz`
//! answers 503.

use std::future::Future;

use prometheus::IntGauge;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

/// Read `conn` and hand each message to `endpoint` until `shutdown`;
/// `up` is 1 while reading and 0 once reading stopped early.
pub(crate) fn spawn(
    conn: UdpConnection,
    endpoint: EndpointInnerRef,
    up: IntGauge,
    shutdown: CancellationToken,
) {
    let _watcher = watch(read(conn, endpoint), up, shutdown);
}

/// Run `reader` in its own task and report on `up` whether it still runs;
/// the handle is the watcher's, done once the reader is.
pub(crate) fn watch<F>(reader: F, up: IntGauge, shutdown: CancellationToken) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    up.set(1);
    let task = tokio::spawn(reader);
    tokio::spawn(async move {
        let outcome = task.await;
        if shutdown.is_cancelled() {
            return;
        }
        up.set(0);
        match outcome {
            Err(e) if e.is_panic() => error!("SIP UDP reader panicked; SIP over UDP is down"),
            _ => error!("SIP UDP reader stopped; SIP over UDP is down"),
        }
    })
}

/// rsipstack's own read loop, with its events delivered here instead of
/// through the endpoint's transport channel (which is private to it).
async fn read(conn: UdpConnection, endpoint: EndpointInnerRef) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let deliver = async {
        while let Some(event) = rx.recv().await {
            if let TransportEvent::Incoming(msg, sc, from) = event {
                if let Err(e) = endpoint.on_received_message(msg, sc, &from).await {
                    debug!(error = %e, %from, "stack refused datagram");
                }
            }
        }
    };
    tokio::select! {
        r = conn.serve_loop(tx) => {
            if let Err(e) = r {
                debug!(error = %e, "SIP UDP read loop ended");
            }
        }
        () = deliver => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge() -> IntGauge {
        IntGauge::new("up", "test").expect("gauge")
    }

    #[tokio::test]
    async fn a_panicking_reader_marks_the_listener_down() {
        let up = gauge();
        let reader = async { panic!("reader fault") };
        watch(reader, up.clone(), CancellationToken::new())
            .await
            .expect("watcher");
        assert_eq!(up.get(), 0);
    }

    #[tokio::test]
    async fn a_reader_that_returns_early_marks_the_listener_down() {
        let up = gauge();
        watch(async {}, up.clone(), CancellationToken::new())
            .await
            .expect("watcher");
        assert_eq!(up.get(), 0);
    }

    #[tokio::test]
    async fn a_reader_stopped_by_shutdown_stays_up() {
        let up = gauge();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let watcher = watch(
            async move { stop.cancelled().await },
            up.clone(),
            shutdown.clone(),
        );
        assert_eq!(up.get(), 1);
        shutdown.cancel();
        watcher.await.expect("watcher");
        assert_eq!(up.get(), 1);
    }
}
