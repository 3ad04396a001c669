//! Per-device and per-user attribution state.
//!
//! These structs are what RocksDB and the changelog topics hold (through
//! `domain::binary`), so every field is there because a rule reads it.

use super::event::Attribution;

/// An attribution together with the time it was decided. `source: None` is
/// organic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributed {
    pub source: Option<Attribution>,
    pub at_ms: i64,
}

impl Attributed {
    pub fn new(source: Option<Attribution>, at_ms: i64) -> Attributed {
        Attributed { source, at_ms }
    }

    pub fn partner(&self) -> &str {
        self.source.as_ref().map_or("", |a| a.partner_id.as_str())
    }

    /// The same attribution with only its partner and times: what a
    /// send-all postback of another partner may see.
    pub fn without_details(&self) -> Attributed {
        let source = self.source.as_ref().map(|a| super::event::Attribution {
            partner_id: a.partner_id.clone(),
            touch_ms: a.touch_ms,
            ..Default::default()
        });
        Attributed { source, at_ms: self.at_ms }
    }

    pub fn campaign(&self) -> &str {
        self.source.as_ref().map_or("", |a| a.campaign_id.as_str())
    }

    pub fn is_organic(&self) -> bool {
        self.source.is_none()
    }
}

/// Lifetime "first" flags (bits of `DeviceState::flags` / `UserState::flags`).
pub mod flags {
    pub const INSTALLED: u8 = 1 << 0;
    pub const FIRST_REGISTRATION: u8 = 1 << 1;
    pub const FIRST_LOGIN: u8 = 1 << 2;
    pub const FIRST_PAYMENT: u8 = 1 << 3;
    pub const FIRST_VERIFIED_PAYMENT: u8 = 1 << 4;
    pub const FIRST_CUSTOM_PAYMENT: u8 = 1 << 5;
    pub const FIRST_VERIFIED_CUSTOM_PAYMENT: u8 = 1 << 6;
}

/// Which revenue stream a "first" marker is about, and whether only
/// store-verified purchases count. Indexes `ca_marks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Money {
    Payment,
    VerifiedPayment,
    CustomPayment,
    VerifiedCustomPayment,
}

impl Money {
    pub const ALL: [Money; 4] =
        [Money::Payment, Money::VerifiedPayment, Money::CustomPayment, Money::VerifiedCustomPayment];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The lifetime flag that says "the first one already happened".
    pub fn lifetime_flag(self) -> u8 {
        match self {
            Money::Payment => flags::FIRST_PAYMENT,
            Money::VerifiedPayment => flags::FIRST_VERIFIED_PAYMENT,
            Money::CustomPayment => flags::FIRST_CUSTOM_PAYMENT,
            Money::VerifiedCustomPayment => flags::FIRST_VERIFIED_CUSTOM_PAYMENT,
        }
    }

    pub fn verified(self) -> bool {
        matches!(self, Money::VerifiedPayment | Money::VerifiedCustomPayment)
    }

    pub fn custom(self) -> bool {
        matches!(self, Money::CustomPayment | Money::VerifiedCustomPayment)
    }
}

/// How many recent event ids a device remembers for de-duplication. Upstream
/// duplicates arrive close together (SDK resends, at-least-once collectors);
/// 32 covers them at 8 bytes each.
pub const RECENT_EVENTS: usize = 32;

/// State of one (app, device).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    pub first_seen_ms: i64,
    /// Time of the first install, 0 when none was seen.
    pub install_ms: i64,
    /// The source of the device's first appearance; never changes.
    pub first: Attributed,
    /// The latest attribution or reattribution.
    pub current: Attributed,
    /// Bumped by every reattribution; "once per attribution" markers compare
    /// against it.
    pub current_seq: u32,
    /// Last activity time; `None` until the first activity event.
    pub last_activity_ms: Option<i64>,
    /// Bits of [`flags`].
    pub flags: u8,
    /// Per [`Money`]: the `current_seq` in which the first CA one fired.
    pub ca_marks: [Option<u32>; 4],
    /// Ring of hashed recent event ids, oldest overwritten first.
    pub recent: Vec<u64>,
    /// Next slot of `recent` to overwrite once it is full.
    pub recent_next: u8,
    /// Hashed transaction ids of the device's payments and custom
    /// payments, oldest first; at most [`TRANSACTIONS_KEPT`].
    pub transactions: Vec<u64>,
    /// The attributions before the current one, oldest first; at most
    /// [`ATTRIBUTIONS_KEPT`]. A late event is routed to the one that was
    /// current at its timestamp.
    pub earlier: Vec<Earlier>,
    /// Events counted per kind (custom events: per name), for postbacks
    /// that fire on the nth one; at most [`COUNTS_KEPT`], least recently
    /// counted dropped first.
    pub counts: Vec<Count>,
    /// What the device last reported of ad-tracking limits and consent
    /// (events that say nothing of it, like server-side payments, leave it).
    pub privacy: super::privacy::Privacy,
}

/// How many events of one kind (or custom event name) a device had.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Hash of the kind and custom event name.
    pub key: u64,
    pub lifetime: u32,
    /// The attribution (`current_seq`) `in_attribution` counts in.
    pub seq: u32,
    pub in_attribution: u32,
}

/// Kinds (and custom event names) counted per device for `occurrence`;
/// past this many, the least recently counted is forgotten and starts over.
pub const COUNTS_KEPT: usize = 16;

/// Which one of its kind an event is: over the device's lifetime, and in
/// the attribution it belongs to (0: a late event of an earlier one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occurrence {
    pub lifetime: u32,
    pub attribution: u32,
}

/// An attribution the device had before its current one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Earlier {
    pub attribution: Attributed,
    /// Its `current_seq`.
    pub seq: u32,
    /// Bits (by [`Money::index`]) of the first CA postbacks it has fired.
    pub ca_fired: u8,
}

/// Earlier attributions a device remembers for its late events; one older
/// than all of them goes to the oldest kept (and is counted:
/// `postback_late_events_beyond_history_total`).
pub const ATTRIBUTIONS_KEPT: usize = 4;

/// Transaction ids remembered per device: a payment repeating one of them
/// is a duplicate however many events came between. Past this many, the
/// oldest is forgotten (and counted: `postback_transaction_ids_forgotten_total`).
pub const TRANSACTIONS_KEPT: usize = 256;

impl DeviceState {
    /// The attribution current at `t`, its sequence number, and whether `t`
    /// lies before everything the device still remembers.
    pub fn attribution_at(&self, t: i64) -> (&Attributed, u32, bool) {
        if t >= self.current.at_ms || self.earlier.is_empty() {
            return (&self.current, self.current_seq, false);
        }
        match self.earlier.iter().rev().find(|e| e.attribution.at_ms <= t) {
            Some(e) => (&e.attribution, e.seq, false),
            None => {
                let oldest = &self.earlier[0];
                // the first attribution covers everything before it
                (&oldest.attribution, oldest.seq, oldest.seq > 0)
            }
        }
    }

    /// Keeps the current attribution as an earlier one before it moves.
    pub fn push_earlier(&mut self) {
        let ca_fired =
            (0..4).filter(|i| self.ca_marks[*i] == Some(self.current_seq)).fold(0u8, |bits, i| bits | (1 << i));
        if self.earlier.len() >= ATTRIBUTIONS_KEPT {
            self.earlier.remove(0);
        }
        self.earlier.push(Earlier { attribution: self.current.clone(), seq: self.current_seq, ca_fired });
    }

    /// Marks the first CA of `money` in attribution `seq`; false when it
    /// already fired there (or `seq` is no longer remembered).
    pub fn mark_ca(&mut self, money: Money, seq: u32) -> bool {
        if seq == self.current_seq {
            let mark = &mut self.ca_marks[money.index()];
            let first = *mark != Some(seq);
            *mark = Some(seq);
            return first;
        }
        let bit = 1 << money.index();
        match self.earlier.iter_mut().find(|e| e.seq == seq) {
            Some(e) if e.ca_fired & bit == 0 => {
                e.ca_fired |= bit;
                true
            }
            _ => false,
        }
    }

    /// Counts an event of `key` belonging to attribution `seq`.
    pub fn count(&mut self, key: u64, seq: u32) -> Occurrence {
        let mut c = match self.counts.iter().position(|c| c.key == key) {
            Some(i) => self.counts.remove(i),
            None => Count { key, seq: self.current_seq, ..Count::default() },
        };
        if self.counts.len() >= COUNTS_KEPT {
            self.counts.remove(0);
        }
        c.lifetime = c.lifetime.saturating_add(1);
        let mut attribution = 0;
        if seq == self.current_seq {
            if c.seq != seq {
                (c.seq, c.in_attribution) = (seq, 0);
            }
            c.in_attribution = c.in_attribution.saturating_add(1);
            attribution = c.in_attribution;
        }
        self.counts.push(c);
        Occurrence { lifetime: c.lifetime, attribution }
    }

    pub fn seen_transaction(&self, id_hash: u64) -> bool {
        self.transactions.contains(&id_hash)
    }

    /// Remembers a transaction id; true when the oldest had to be forgotten.
    pub fn remember_transaction(&mut self, id_hash: u64) -> bool {
        let forget = self.transactions.len() >= TRANSACTIONS_KEPT;
        if forget {
            self.transactions.remove(0);
        }
        self.transactions.push(id_hash);
        forget
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub fn seen_event(&self, id_hash: u64) -> bool {
        self.recent.contains(&id_hash)
    }

    pub fn remember_event(&mut self, id_hash: u64) {
        if self.recent.len() < RECENT_EVENTS {
            self.recent.push(id_hash);
        } else {
            let slot = self.recent_next as usize % RECENT_EVENTS;
            self.recent[slot] = id_hash;
            self.recent_next = ((slot + 1) % RECENT_EVENTS) as u8;
        }
    }
}

/// Identity of one attribution of one device, for the by-user "first CA"
/// markers: (hash of the device id, attribution sequence).
pub type AttributionRef = (u64, u32);

/// State of one (project, user), fed by the user-activity repartition topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserState {
    pub first_seen_ms: i64,
    /// The device on which the user first appeared.
    pub first_device_id: String,
    /// That device's first attribution: where by-user lifetime triggers go.
    pub first: Attributed,
    /// Last activity over all of the user's devices.
    pub last_activity_ms: Option<i64>,
    pub flags: u8,
    /// Per money stream: the attributions whose by-user "first CA" postback
    /// has fired (at most [`USER_CA_MARKS`], oldest dropped first).
    pub ca_marks: [Vec<AttributionRef>; 4],
}

/// Attributions remembered per money stream for the by-user "first CA"
/// postbacks: a user paying in more attributions than this may see the
/// oldest one's fire again.
pub const USER_CA_MARKS: usize = 16;

impl UserState {
    /// Marks `attribution` for `stream`; false when it was marked already.
    pub fn mark_ca(&mut self, stream: usize, attribution: AttributionRef) -> bool {
        let marks = &mut self.ca_marks[stream];
        if marks.contains(&attribution) {
            return false;
        }
        if marks.len() >= USER_CA_MARKS {
            marks.remove(0);
        }
        marks.push(attribution);
        true
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}
