//! Forwarding events to a local handler: the exact body bytes with the
//! server's signature headers, to the URL as given (path and query kept).
//!
//! Events wait in a bounded queue ([`QUEUE`]) and up to `concurrency` are
//! posted at once, each with its own timeout, so a hung handler delays
//! nothing but its own events. When the queue is full the relay stops
//! reading the stream until a slot frees (the server keeps the backlog).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::frames::Event;
use super::print::Printer;

/// Events waiting for a forwarding slot.
const QUEUE: usize = 256;

/// Headers never copied from the stream: the HTTP client sets its own.
const SKIPPED: [&str; 3] = ["content-length", "host", "transfer-encoding"];

/// The outcome of forwarding one event.
#[derive(Debug)]
pub struct Outcome {
    pub status: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
}

/// Posts events to one URL.
pub struct Forwarder {
    queue: mpsc::Sender<Arc<Event>>,
    pump: JoinHandle<()>,
    slots: Arc<Semaphore>,
    concurrency: usize,
}

impl Forwarder {
    /// Starts forwarding to `url`.
    pub fn start(
        url: reqwest::Url,
        timeout: Duration,
        concurrency: usize,
        printer: Printer,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()?;
        let (queue, mut waiting) = mpsc::channel::<Arc<Event>>(QUEUE);
        let slots = Arc::new(Semaphore::new(concurrency));

        let pump_slots = slots.clone();
        let pump = tokio::spawn(async move {
            while let Some(event) = waiting.recv().await {
                let Ok(slot) = pump_slots.clone().acquire_owned().await else {
                    return;
                };
                let (http, url) = (http.clone(), url.clone());
                tokio::spawn(async move {
                    let outcome = post(&http, &url, &event).await;
                    printer.forwarded(&event, url.as_str(), &outcome);
                    drop(slot);
                });
            }
        });
        Ok(Self {
            queue,
            pump,
            slots,
            concurrency,
        })
    }

    /// Queues `event`; waits while the queue is full.
    pub async fn send(&self, event: Arc<Event>) {
        let _ = self.queue.send(event).await;
    }

    /// Waits for every queued and running forward to end (each is bounded
    /// by its timeout).
    pub async fn finish(self) {
        drop(self.queue);
        let _ = self.pump.await;
        let _ = self.slots.acquire_many(self.concurrency as u32).await;
    }
}

/// Posts one event and times the answer.
pub async fn post(http: &reqwest::Client, url: &reqwest::Url, event: &Event) -> Outcome {
    let mut request = http.post(url.clone()).body(event.body.clone().into_bytes());
    for (name, value) in &event.headers {
        if SKIPPED.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        if let Some(value) = value.as_str() {
            request = request.header(name.as_str(), value);
        }
    }
    let started = Instant::now();
    let result = request.send().await;
    let latency = started.elapsed();
    match result {
        Ok(response) => Outcome {
            status: Some(response.status().as_u16()),
            latency,
            error: None,
        },
        Err(e) if e.is_timeout() => Outcome {
            status: None,
            latency,
            error: Some(format!("timed out after {:.1} s", latency.as_secs_f64())),
        },
        Err(e) => Outcome {
            status: None,
            latency,
            error: Some(format!("cannot reach the handler: {e}")),
        },
    }
}
