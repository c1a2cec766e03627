//! The reader loop: probes → sensor → hub.
//!
//! It runs on the thread that loaded the probes (the skeleton is not
//! shareable across threads) until `stop` is set or the reader fails, and
//! keeps a copy of the counters where other threads can read them.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rsysmon_probe::Probes;

use crate::hub::shared_event::SharedEvent;
use crate::hub::Hub;
use crate::pipeline::test_hold::ReaderHold;
use crate::sensor::clock::BootClock;
use crate::sensor::stats::Stats;
use crate::sensor::Sensor;

/// How long the reader sleeps when the probes have not woken it. Bounds how
/// long an event can wait in the ring on a quiet system.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Events handed to the hub at once. Each hand-over wakes every reader, so
/// events go in batches: what one poll of the ring brought, at most this
/// many at a time.
const BATCH: usize = 256;

/// Read the probes into `hub` until `stop`. `stats` gets the sensor's
/// counters after every poll. After every poll (and once more at the end)
/// finished hashes become `image-hash` events, and `between_polls` runs
/// with the sensor, so events from outside the ring (blocked execs) are
/// numbered in the same sequence; an error from it ends the loop.
/// Takeovers the sensor holds back to count their repeats are published
/// once their window closes, and all of them at the end.
pub fn pump(
    probes: &Probes,
    sensor: Sensor,
    hub: &Hub,
    stop: &AtomicBool,
    stats: &Mutex<Stats>,
    between_polls: &mut dyn FnMut(&mut Sensor, &Hub) -> anyhow::Result<()>,
) -> anyhow::Result<Stats> {
    let sensor = RefCell::new(sensor);
    let batch = RefCell::new(Vec::with_capacity(BATCH));
    // Clearing keeps the batch's buffer for the next one.
    let flush = || {
        let mut batch = batch.borrow_mut();
        hub.publish_shared(&batch);
        batch.clear();
    };
    let reader = probes.reader(|bytes| {
        if let Some(event) = sensor.borrow_mut().on_record(bytes) {
            let full = {
                let mut batch = batch.borrow_mut();
                batch.push(SharedEvent::new(event));
                batch.len() >= BATCH
            };
            if full {
                flush();
            }
        }
    })?;
    let mut publish_losses = |last: bool| -> anyhow::Result<()> {
        flush();
        for takeover in sensor.borrow_mut().due_takeovers(BootClock::boot_now_ns(), last) {
            hub.publish(takeover);
        }
        hub.publish_all(sensor.borrow_mut().on_hashes_done());
        between_polls(&mut sensor.borrow_mut(), hub)?;
        if let Some(loss) = sensor.borrow_mut().on_kernel_losses(probes.kernel_losses()?) {
            hub.publish(loss);
        }
        let mut snapshot = sensor.borrow().stats().clone();
        snapshot.set_kernel_refusals(probes.lsm_refusals());
        *stats.lock().unwrap_or_else(|e| e.into_inner()) = snapshot;
        Ok(())
    };
    let hold = ReaderHold::from_env();
    while !stop.load(Ordering::Relaxed) {
        hold.wait(stop);
        reader.poll(POLL_INTERVAL)?;
        publish_losses(false)?;
    }
    // What is already in the ring still counts.
    reader.poll(Duration::ZERO)?;
    publish_losses(true)?;
    drop(reader);
    let final_stats = sensor.borrow().stats().clone();
    Ok(final_stats)
}
