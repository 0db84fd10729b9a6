//! Key presses sent as SIP INFO run beside the call, one request after
//! another: each waits for its answer (32 s from a peer that vanished), and
//! a call waiting on one would hold up the browser's `hangup`.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::midcall::record_info;
use super::Inner;

/// One digit and its length in ms.
type Press = (char, u32);

/// The call's INFO sender; its task starts at the first key press (most
/// calls send none) and ends when the call drops this.
#[derive(Default)]
pub(super) struct InfoQueue {
    tx: Option<mpsc::UnboundedSender<Press>>,
}

impl InfoQueue {
    /// Queue `digits`; `info` sends one (a `UacHandle` or `UasHandle` INFO).
    pub(super) fn send<F, Fut>(&mut self, gw: &Arc<Inner>, digits: Vec<Press>, info: F)
    where
        F: Fn(char, u32) -> Fut + Send + 'static,
        Fut: Future<Output = Option<u16>> + Send,
    {
        let tx = self.tx.get_or_insert_with(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Press>();
            let gw = gw.clone();
            tokio::spawn(async move {
                while let Some((digit, ms)) = rx.recv().await {
                    let code = info(digit, ms).await;
                    record_info(&gw, digit, code);
                }
            });
            tx
        });
        for press in digits {
            // The task ends only when this sender is dropped.
            let _ = tx.send(press);
        }
    }
}
