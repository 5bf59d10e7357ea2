//! When each request of a run goes: as soon as its connection is free (closed loop), or
//! at a fixed intended time (open loop), latency then counted from that time.
//!
//! In a closed loop a slow answer delays the next request, so the requests that would
//! have waited behind it are never sent and the slow spell hides in the quantiles
//! ("coordinated omission"). In the open loop the schedule does not wait: request `i`
//! is due at `t0 + i / rate`, the next free connection of the pool takes the next due
//! request, and its latency runs from its due time, waiting for a connection included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::process::Cpu;

/// How a run offers its load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Each connection sends its next request as soon as the last one was answered.
    Closed,
    /// `rate` requests per second at fixed intended times, whatever the answers.
    Open { rate: f64 },
}

impl Load {
    /// `--rate`, if given.
    pub fn of(rate: Option<f64>) -> Self {
        rate.map_or(Self::Closed, |rate| Self::Open { rate })
    }
}

/// A request sent later than its intended time by more than this is behind schedule.
/// The pacer thread and the runtime wake up within tens of µs, so what passes this
/// waited for a free connection (or for a core).
pub const BEHIND: Duration = Duration::from_millis(1);

/// The first intended time comes this long after the run starts, so that the open
/// loop's connections are open by then.
const LEAD: Duration = Duration::from_millis(50);

/// Requests due within the run but not yet sent when it ends still go for this long,
/// so that the last ones, the likeliest to be late, count with their latency.
const GRACE: Duration = Duration::from_secs(1);

/// What an open-loop run offered and how well it kept to its schedule.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// Requests per second offered.
    pub offered_per_s: f64,
    /// Requests due within the run.
    pub scheduled: u64,
    /// Requests sent more than [`BEHIND`] after their intended time.
    pub behind: u64,
    /// Requests due within the run but not sent by [`GRACE`] after its end: every
    /// connection was busy all along, the relay (or broker) slower than the rate.
    pub unsent: u64,
}

impl std::ops::Add for Schedule {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self {
            offered_per_s: self.offered_per_s.max(other.offered_per_s),
            scheduled: self.scheduled + other.scheduled,
            behind: self.behind + other.behind,
            unsent: self.unsent + other.unsent,
        }
    }
}

/// One request's turn: its intended send time in the open loop.
#[derive(Clone, Copy, Debug)]
pub struct Turn(Option<Instant>);

impl Turn {
    /// Where its latency starts: the intended time, or (closed loop) when it was sent.
    pub fn start(self, sent: Instant) -> Instant {
        self.0.unwrap_or(sent)
    }

    /// How late a request sent at `sent` went, in the open loop.
    pub fn lag(self, sent: Instant) -> Option<Duration> {
        self.0
            .map(|intended| sent.saturating_duration_since(intended))
    }
}

/// Gives a run's connections their turns until the run's time is up.
pub struct Pace {
    started: Instant,
    end: Instant,
    open: Option<Open>,
}

/// The open loop: a pacer thread adds one permit per request as it falls due; a
/// connection takes a permit, then the next request number. The semaphore is closed
/// once the last number is taken, which ends the connections' waits.
struct Open {
    rate: f64,
    scheduled: u64,
    due: Arc<Semaphore>,
    next: AtomicU64,
    /// The pacer thread; it ends with its own CPU time.
    pacer: Mutex<Option<JoinHandle<Cpu>>>,
}

impl Pace {
    /// Starts a run of `duration` (in the open loop, after a short lead).
    pub fn start(load: Load, duration: Duration) -> Arc<Self> {
        let now = Instant::now();
        let Load::Open { rate } = load else {
            return Arc::new(Self {
                started: now,
                end: now + duration,
                open: None,
            });
        };
        let started = now + LEAD;
        let scheduled = ((duration.as_secs_f64() * rate) as u64).max(1);
        let due = Arc::new(Semaphore::new(0));
        let releases = due.clone();
        // A thread of its own: `std::thread::sleep` wakes within tens of µs where
        // Tokio's timer rounds up to the next millisecond, which would skew latencies
        // counted from the intended time.
        let pacer = std::thread::spawn(move || {
            let mut released = 0u64;
            while released < scheduled && !releases.is_closed() {
                // Request `i` is due at `started + i / rate`.
                let now_due = Instant::now()
                    .checked_duration_since(started)
                    .map_or(0, |elapsed| {
                        ((elapsed.as_secs_f64() * rate) as u64 + 1).min(scheduled)
                    });
                if now_due > released {
                    releases.add_permits(usize::try_from(now_due - released).unwrap_or(1));
                    released = now_due;
                }
                if released < scheduled {
                    let next = started + Duration::from_secs_f64(released as f64 / rate);
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            }
            Cpu::of("thread-self")
        });
        Arc::new(Self {
            started,
            end: started + duration,
            open: Some(Open {
                rate,
                scheduled,
                due,
                next: AtomicU64::new(0),
                pacer: Mutex::new(Some(pacer)),
            }),
        })
    }

    /// When the run starts: its first intended time in the open loop.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The next request's turn, or `None` once the run is over: its time is up
    /// (closed loop), or every request due was taken or [`GRACE`] has passed since
    /// (open loop).
    pub async fn next(&self) -> Option<Turn> {
        let Some(open) = &self.open else {
            return (Instant::now() < self.end).then_some(Turn(None));
        };
        let over = self.end + GRACE;
        if Instant::now() >= over {
            return None;
        }
        let over = tokio::time::Instant::from_std(over);
        let permit = tokio::time::timeout_at(over, open.due.acquire())
            .await
            .ok()?
            .ok()?;
        permit.forget();
        let number = open.next.fetch_add(1, Ordering::Relaxed);
        if number + 1 >= open.scheduled {
            // The last one: every permit is taken, nobody else has a turn.
            open.due.close();
        }
        let intended = self.started + Duration::from_secs_f64(number as f64 / open.rate);
        // Two connections may take permits and numbers in opposite orders: the later
        // number then waits for its time, so that no request goes early.
        if intended > Instant::now() {
            tokio::time::sleep_until(tokio::time::Instant::from_std(intended)).await;
        }
        Some(Turn(Some(intended)))
    }

    /// The open loop's figures, given how many requests were `behind`.
    pub fn schedule(&self, behind: u64) -> Option<Schedule> {
        self.open.as_ref().map(|open| {
            let taken = open.next.load(Ordering::Relaxed).min(open.scheduled);
            Schedule {
                offered_per_s: open.rate,
                scheduled: open.scheduled,
                behind,
                unsent: open.scheduled - taken,
            }
        })
    }
}

impl Pace {
    /// Once the run is over: the pacer thread stopped, and the CPU time it took, which
    /// is the load generator's, not the publisher's (about 30 µs per request here).
    pub fn finish(&self) -> Option<Cpu> {
        let open = self.open.as_ref()?;
        open.due.close();
        let pacer = open.pacer.lock().ok()?.take()?;
        pacer.join().ok()
    }
}

impl Drop for Pace {
    fn drop(&mut self) {
        // Stops the pacer thread if the run ended early (every connection failed).
        if let Some(open) = &self.open {
            open.due.close();
        }
    }
}
