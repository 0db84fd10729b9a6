use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hook::{bind, Hook};
use super::*;
use crate::records::post::{tls_connector, HttpPost, Target};
use crate::records::webhook::Post;

fn hooks(urls: &[&str]) -> RecordsConfig {
    RecordsConfig {
        webhooks: urls.iter().map(|u| u.to_string()).collect(),
        secret: SECRET.into(),
        ..config()
    }
}

/// Checks `header` the way a receiver would, with nothing of siphon's.
fn verify(header: &str, body: &str) -> u64 {
    let (t, v1) = header.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "signature of {body}");
    t.parse().unwrap()
}

fn now() -> u64 {
    let since = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
    since.unwrap().as_secs()
}

#[tokio::test]
async fn a_record_is_posted_as_signed_json() {
    let hook = Hook::start(&[]).await;
    let metrics = Metrics::new();
    let records = Records::start(&hooks(&[&hook.url]), "siphon-a", &metrics).unwrap();
    let record = answered(&records, "c1");
    records.ended(&record);
    assert!(eventually(|| count(&metrics, "webhook") == 1).await);
    let received = hook.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].content_type, "application/json");
    let signed_at = verify(&received[0].signature, &received[0].body);
    assert!(now().abs_diff(signed_at) < 60, "{signed_at}");
    let mut body = hook.bodies().remove(0);
    let event = body.as_object_mut().unwrap().remove("event").unwrap();
    assert_eq!(event, "call.ended");
    assert_eq!(body, serde_json::to_value(&record).unwrap());
}

#[tokio::test]
async fn a_server_error_is_retried_and_the_record_delivered_once() {
    let hook = Hook::start(&[500]).await;
    let metrics = Metrics::new();
    let records = Records::start(&hooks(&[&hook.url]), "a", &metrics).unwrap();
    records.ended(&answered(&records, "c1"));
    assert!(eventually(|| count(&metrics, "webhook") == 1).await);
    let received = hook.received();
    assert_eq!(received.len(), 2, "the 500, then the 200");
    assert_eq!(received[0].body, received[1].body);
    for attempt in &received {
        verify(&attempt.signature, &attempt.body);
    }
    let outcome = |o| {
        metrics
            .webhook_deliveries_total
            .with_label_values(&[o])
            .get()
    };
    assert_eq!(
        (outcome("retry"), outcome("ok"), outcome("failed")),
        (1, 1, 0)
    );
    records.close(Duration::from_secs(2)).await;
    assert_eq!(hook.received().len(), 2, "delivered once");
}

#[tokio::test]
async fn a_silent_endpoint_holds_up_neither_calls_nor_the_other_url() {
    // Connections complete in its backlog; nothing ever answers.
    let silent = bind().await;
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let live = Hook::start(&[]).await;
    let metrics = Metrics::new();
    let config = RecordsConfig {
        queue: 1,
        webhook_timeout_ms: 60_000,
        ..hooks(&[&silent_url, &live.url])
    };
    let records = Records::start(&config, "a", &metrics).unwrap();
    // No worker has run yet (one thread): each queue takes one record.
    for id in ["c1", "c2", "c3"] {
        records.ended(&answered(&records, id));
    }
    assert_eq!(dropped(&metrics, "webhook", "queue_full"), 4);
    assert!(eventually(|| live.received().len() == 1).await);
    // The silent URL's worker waits on c1; the live one goes on.
    records.ended(&answered(&records, "c4"));
    assert!(eventually(|| live.received().len() == 2).await);
    let ids: Vec<_> = live.bodies().iter().map(|b| b["id"].clone()).collect();
    assert_eq!(ids, ["c1", "c4"]);
    assert_eq!(dropped(&metrics, "webhook", "queue_full"), 4);
    records.close(Duration::from_millis(300)).await;
    assert_eq!(
        dropped(&metrics, "webhook", "shutdown"),
        2,
        "c1 under way and c4 queued for the silent URL"
    );
}

#[tokio::test]
async fn events_go_out_in_order_when_asked_for() {
    let hook = Hook::start(&[]).await;
    let config = RecordsConfig {
        events: true,
        ..hooks(&[&hook.url])
    };
    let metrics = Metrics::new();
    let records = Records::start(&config, "siphon-a", &metrics).unwrap();
    let record = answered(&records, "c1");
    records.event(CallEvent::Started, &record, at(0));
    records.event(CallEvent::Answered, &record, at(2));
    records.ended(&record);
    assert!(eventually(|| hook.received().len() == 3).await);
    let bodies = hook.bodies();
    let events: Vec<_> = bodies.iter().map(|b| b["event"].clone()).collect();
    assert_eq!(events, ["call.started", "call.answered", "call.ended"]);
    assert_eq!(bodies[0]["at"], "2026-12-05T12:05:42.000Z");
    assert_eq!(bodies[1]["at"], "2026-12-05T12:05:44.000Z");
    assert_eq!(
        (bodies[1]["id"].clone(), bodies[1]["to"].clone()),
        ("c1".into(), "1001".into())
    );
    for r in hook.received() {
        verify(&r.signature, &r.body);
    }
    assert_eq!(count(&metrics, "webhook"), 1, "one record among the three");
}

#[tokio::test]
async fn without_events_only_the_record_goes() {
    let hook = Hook::start(&[]).await;
    let records = Records::start(&hooks(&[&hook.url]), "a", &Metrics::new()).unwrap();
    let record = answered(&records, "c1");
    records.event(CallEvent::Started, &record, at(0));
    records.ended(&record);
    records.close(Duration::from_secs(2)).await;
    let events: Vec<_> = hook.bodies().iter().map(|b| b["event"].clone()).collect();
    assert_eq!(events, ["call.ended"]);
}

#[tokio::test]
async fn https_endpoints_are_checked_against_the_trusted_roots() {
    let (hook, roots) = Hook::start_tls().await;
    let target = Target::parse(&hook.url).unwrap();
    let trusting = HttpPost::new(target.clone(), Some(tls_connector(Some(roots)).unwrap()));
    let body = bytes::Bytes::from_static(br#"{"event":"call.ended"}"#);
    let answer = trusting.post(body.clone(), "t=1,v1=00".into()).await;
    assert_eq!(answer.unwrap(), 200);
    assert_eq!(hook.received().len(), 1);

    let strangers = rustls::RootCertStore::empty();
    let wary = HttpPost::new(target, Some(tls_connector(Some(strangers)).unwrap()));
    let answer = wary.post(body, "t=1,v1=00".into()).await;
    assert!(matches!(answer, Err(RecordsError::Tls(_))), "{answer:?}");
    assert_eq!(hook.received().len(), 1);
}
