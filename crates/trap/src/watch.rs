//! Fault reports without floods or silence: a per-vCPU rate limit and a
//! stuck detector.
//!
//! The hypervisor reports every guest access it denies (the exception it
//! injects instead). A [`FaultWatch`] per vCPU decides, for each report,
//! whether its line is printed now, and keeps count of those it holds back:
//!
//! * **Rate limit.** A token bucket ([`TokenBucket`]) of [`BURST`] reports,
//!   refilled at [`PER_SECOND`] per second of the arch counter. A report that
//!   finds no token is *suppressed*: counted, and the count is handed back as
//!   a summary ("N more fault reports suppressed") with the next report that
//!   gets a token, at the vCPU's next exit once a token is back
//!   ([`FaultWatch::poll`]), or when the caller flushes it (guest stopped).
//!   A report whose line would not be printed anyway (below the console's log
//!   level: `visible == false`) takes no token and is not counted.
//! * **Stuck detector.** [`STUCK_AFTER`] identical faults in a row (same PC,
//!   address and kind) with no *progress* in between make the vCPU stuck: the
//!   fault that crosses the threshold is reported once, on its own line that
//!   bypasses the rate limit; the identical faults after it are suppressed
//!   (counted) without waiting for a token, and no summary is handed out while
//!   the vCPU stays stuck. Progress is a counter the caller supplies that grows
//!   with every exit the guest asked for and got served (emulated MMIO,
//!   hypercalls, WFI, system registers); interrupts do not count. A fault
//!   elsewhere, or progress, ends the episode.
//!
//! Every fault is thus either printed (its own line or the stuck line) or
//! counted in a later summary, as long as it is visible.
//!
//! Pure state, no clock of its own: the caller passes the counter value and
//! frequency. One `FaultWatch` belongs to one vCPU and is only touched by the
//! CPU that runs it.

/// Reports a vCPU may print in a burst.
pub const BURST: u32 = 10;

/// Reports per second a vCPU may print once its burst is spent.
pub const PER_SECOND: u64 = 5;

/// Identical faults in a row, with no progress in between, that make a vCPU
/// stuck.
pub const STUCK_AFTER: u64 = 1000;

/// What a denied access did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// A data read (load).
    Read,
    /// A data write (store).
    Write,
    /// An instruction fetch.
    Fetch,
    /// An instruction the hypervisor does not emulate (no address).
    Undefined,
}

impl Access {
    /// The words a report uses: "read from", "write to", ...
    pub fn phrase(self) -> &'static str {
        match self {
            Access::Read => "read from",
            Access::Write => "write to",
            Access::Fetch => "instruction fetch from",
            Access::Undefined => "undefined instruction",
        }
    }
}

/// Where a fault happened: the guest's PC, the address it touched (0 for
/// [`Access::Undefined`]) and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FaultSite {
    /// The faulting instruction's address.
    pub pc: u64,
    /// The guest-physical address accessed.
    pub addr: u64,
    /// The kind of access.
    pub access: Access,
}

/// A token bucket over a free-running counter.
#[derive(Clone, Copy, Debug)]
pub struct TokenBucket {
    tokens: u32,
    /// Counter value up to which refills have been credited.
    credited: u64,
}

impl TokenBucket {
    /// A full bucket.
    pub const fn new() -> Self {
        Self { tokens: BURST, credited: 0 }
    }

    /// Credits the tokens earned since the last refill, at [`PER_SECOND`]
    /// per `freq` ticks, up to [`BURST`].
    fn refill(&mut self, now: u64, freq: u64) {
        let interval = (freq / PER_SECOND).max(1);
        let elapsed = now.saturating_sub(self.credited);
        let earned = elapsed / interval;
        let room = u64::from(BURST - self.tokens.min(BURST));
        if earned >= room {
            self.tokens = BURST;
            self.credited = now;
        } else {
            // `earned < room <= BURST`: fits in u32.
            self.tokens += earned as u32;
            self.credited += earned * interval;
        }
    }

    /// Takes a token if one is there (after refilling); false if the bucket
    /// is empty.
    pub fn take(&mut self, now: u64, freq: u64) -> bool {
        self.refill(now, freq);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

impl Default for TokenBucket {
    fn default() -> Self {
        Self::new()
    }
}

/// What to print for one fault, in this order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Outcome {
    /// First a summary: this many earlier reports were suppressed.
    pub summary: Option<u64>,
    /// Then the fault's own report line.
    pub report: bool,
    /// Or, instead of it, the stuck line: the same fault this many times in
    /// a row.
    pub stuck: Option<u64>,
}

/// One vCPU's fault reporting state.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultWatch {
    bucket: TokenBucket,
    suppressed: u64,
    last: Option<FaultSite>,
    /// Identical faults in a row at `last`.
    run: u64,
    /// The progress counter at the last fault.
    progress: u64,
    stuck: bool,
}

impl FaultWatch {
    /// Nothing seen yet; a full bucket.
    pub const fn new() -> Self {
        Self { bucket: TokenBucket::new(), suppressed: 0, last: None, run: 0, progress: 0, stuck: false }
    }

    /// A denied access at `site`. `progress`: the caller's progress counter
    /// now; `now`/`freq`: the counter and its frequency; `visible`: whether
    /// the report would be printed at the current log level.
    pub fn fault(&mut self, site: FaultSite, progress: u64, now: u64, freq: u64, visible: bool) -> Outcome {
        if self.last == Some(site) && self.progress == progress {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(site);
            self.run = 1;
            self.stuck = false;
        }
        self.progress = progress;
        if self.stuck {
            if visible {
                self.suppressed = self.suppressed.saturating_add(1);
            }
            return Outcome::default();
        }
        if self.run >= STUCK_AFTER {
            self.stuck = true;
            return Outcome { stuck: Some(self.run), ..Outcome::default() };
        }
        self.limit(now, freq, visible)
    }

    /// A rate-limited message that is not a fault (e.g. a register access
    /// emulated as read-as-zero): only the rate limit applies.
    pub fn note(&mut self, now: u64, freq: u64, visible: bool) -> Outcome {
        self.limit(now, freq, visible)
    }

    fn limit(&mut self, now: u64, freq: u64, visible: bool) -> Outcome {
        if !visible {
            return Outcome::default();
        }
        if !self.bucket.take(now, freq) {
            self.suppressed = self.suppressed.saturating_add(1);
            return Outcome::default();
        }
        Outcome { summary: self.take_suppressed(), report: true, stuck: None }
    }

    /// Whether [`FaultWatch::poll`] has nothing to do (no suppressed count,
    /// not stuck): a cheap check before reading the clock.
    pub fn is_quiet(&self) -> bool {
        self.suppressed == 0 && !self.stuck
    }

    /// At an exit that is not a fault: ends a stuck episode if `progress`
    /// moved since the last fault, and hands out the suppressed count once
    /// the vCPU is not stuck and a token is back.
    pub fn poll(&mut self, progress: u64, now: u64, freq: u64) -> Option<u64> {
        if self.stuck && progress != self.progress {
            self.stuck = false;
            self.run = 0;
            self.last = None;
        }
        if self.stuck || self.suppressed == 0 || !self.bucket.take(now, freq) {
            return None;
        }
        self.take_suppressed()
    }

    /// Hands out the suppressed count whatever the rate limit says (the
    /// guest stopped: this is the last chance to say it).
    pub fn flush(&mut self) -> Option<u64> {
        self.take_suppressed()
    }

    fn take_suppressed(&mut self) -> Option<u64> {
        let n = core::mem::take(&mut self.suppressed);
        (n != 0).then_some(n)
    }

    /// The fault site the vCPU is stuck at and how many times in a row it
    /// faulted there, if it is stuck.
    pub fn stuck(&self) -> Option<(FaultSite, u64)> {
        if !self.stuck {
            return None;
        }
        self.last.map(|site| (site, self.run))
    }

    /// Reports suppressed and not yet handed out.
    pub fn suppressed(&self) -> u64 {
        self.suppressed
    }
}
