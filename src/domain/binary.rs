//! Compact, versioned binary encoding of device state, user state and user
//! activity records. These bytes live in RocksDB and in changelog and
//! repartition topics, so they outlive any one release: every value starts
//! with a format version byte, and decoding dispatches on it. A new layout
//! gets a new version and a decoder for the old one stays, which is the
//! migration path (state upgrades lazily, on its next write).

use super::event::{Attribution, Custom, DeviceInfo, Event, Kind, Revenue};
use super::privacy::{AttStatus, Privacy};
use super::state::{
    ATTRIBUTIONS_KEPT, Attributed, COUNTS_KEPT, Count, DeviceState, Earlier, RECENT_EVENTS, TRANSACTIONS_KEPT,
    USER_CA_MARKS, UserState,
};
use super::user::{ActivityRef, UserActivity};
use std::collections::BTreeMap;

/// Current format version of every value written.
pub const VERSION: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinaryError {
    #[error("empty value")]
    Empty,
    #[error("format version {0} is not supported by this release (it reads up to {VERSION}); upgrade postback")]
    UnsupportedVersion(u8),
    #[error("truncated value: needed more bytes at offset {0}")]
    Truncated(usize),
    #[error("invalid value at offset {at}: {what}")]
    Invalid { at: usize, what: &'static str },
    #[error("{0} trailing bytes after the value")]
    Trailing(usize),
}

// ---- device state ----

/// Device state with transaction ids or earlier attributions needs
/// version 2 (two trailing lists); without, it keeps the v1 bytes.
const DEVICE_HISTORY: u8 = 2;
/// Version 3 adds the event counts (postbacks on the nth event).
const DEVICE_COUNTS: u8 = 3;
/// Version 4 adds what the device allows (ad-tracking limits, consent).
const DEVICE_PRIVACY: u8 = 4;

pub fn encode_device(st: &DeviceState, out: &mut Vec<u8>) {
    let v4 = !st.privacy.is_empty();
    let v3 = v4 || !st.counts.is_empty();
    let v2 = v3 || !st.transactions.is_empty() || !st.earlier.is_empty();
    out.push(if v4 {
        DEVICE_PRIVACY
    } else if v3 {
        DEVICE_COUNTS
    } else if v2 {
        DEVICE_HISTORY
    } else {
        VERSION
    });
    put_i64(out, st.first_seen_ms);
    put_i64(out, st.install_ms);
    put_attributed(out, &st.first);
    // most devices are never reattributed: don't store the same source twice
    if st.current_seq == 0 && st.current == st.first {
        out.push(0);
    } else {
        out.push(1);
        put_attributed(out, &st.current);
    }
    put_u64(out, u64::from(st.current_seq));
    put_opt_i64(out, st.last_activity_ms);
    out.push(st.flags);
    for mark in st.ca_marks {
        put_opt_u64(out, mark.map(u64::from));
    }
    out.push(st.recent.len() as u8);
    for id in &st.recent {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out.push(st.recent_next);
    if v2 {
        put_u64(out, st.transactions.len() as u64);
        for id in &st.transactions {
            out.extend_from_slice(&id.to_le_bytes());
        }
        put_u64(out, st.earlier.len() as u64);
        for e in &st.earlier {
            put_attributed(out, &e.attribution);
            put_u64(out, u64::from(e.seq));
            out.push(e.ca_fired);
        }
    }
    if v3 {
        put_u64(out, st.counts.len() as u64);
        for c in &st.counts {
            out.extend_from_slice(&c.key.to_le_bytes());
            for n in [c.lifetime, c.seq, c.in_attribution] {
                put_u64(out, u64::from(n));
            }
        }
    }
    if v4 {
        put_privacy(out, &st.privacy);
    }
}

/// Ad-tracking limit and ATT status in one byte each (0: unknown), then
/// the consent purposes.
fn put_privacy(out: &mut Vec<u8>, p: &Privacy) {
    out.push(match p.limit_ad_tracking {
        None => 0,
        Some(false) => 1,
        Some(true) => 2,
    });
    out.push(p.att_status.map_or(0, AttStatus::code));
    put_u64(out, p.consent.len() as u64);
    for (purpose, granted) in &p.consent {
        put_str(out, purpose);
        out.push(u8::from(*granted));
    }
}

pub fn decode_device(bytes: &[u8]) -> Result<DeviceState, BinaryError> {
    let mut r = Reader::versioned_up_to(bytes, DEVICE_PRIVACY)?;
    let version = bytes[0];
    let first_seen_ms = r.i64()?;
    let install_ms = r.i64()?;
    let first = r.attributed()?;
    let current = match r.u8()? {
        0 => first.clone(),
        1 => r.attributed()?,
        _ => return Err(r.invalid("current attribution tag")),
    };
    let current_seq = r.u32()?;
    let last_activity_ms = r.opt_i64()?;
    let flags = r.u8()?;
    let mut ca_marks = [None; 4];
    for mark in &mut ca_marks {
        *mark = r.opt_u64()?.map(|v| v as u32);
    }
    let n = r.u8()? as usize;
    if n > RECENT_EVENTS {
        return Err(r.invalid("recent event count"));
    }
    let recent = (0..n).map(|_| r.fixed_u64()).collect::<Result<Vec<_>, _>>()?;
    let recent_next = r.u8()?;
    let mut transactions = Vec::new();
    let mut earlier = Vec::new();
    if version >= DEVICE_HISTORY {
        let n = r.u64()?;
        if n > TRANSACTIONS_KEPT as u64 {
            return Err(r.invalid("transaction count"));
        }
        for _ in 0..n {
            transactions.push(r.fixed_u64()?);
        }
        let n = r.u64()?;
        if n > ATTRIBUTIONS_KEPT as u64 {
            return Err(r.invalid("earlier attribution count"));
        }
        for _ in 0..n {
            let attribution = r.attributed()?;
            earlier.push(Earlier { attribution, seq: r.u32()?, ca_fired: r.u8()? });
        }
    }
    let mut counts = Vec::new();
    if version >= DEVICE_COUNTS {
        let n = r.u64()?;
        if n > COUNTS_KEPT as u64 {
            return Err(r.invalid("event count entries"));
        }
        for _ in 0..n {
            counts.push(Count { key: r.fixed_u64()?, lifetime: r.u32()?, seq: r.u32()?, in_attribution: r.u32()? });
        }
    }
    let privacy = if version >= DEVICE_PRIVACY { r.privacy()? } else { Privacy::default() };
    r.finish()?;
    Ok(DeviceState {
        first_seen_ms,
        install_ms,
        first,
        current,
        current_seq,
        last_activity_ms,
        flags,
        ca_marks,
        recent,
        recent_next,
        transactions,
        earlier,
        counts,
        privacy,
    })
}

// ---- user state ----

/// User state with more than one by-user CA mark per stream needs
/// version 2 (a list); everything else keeps the v1 bytes.
const USER_LISTS: u8 = 2;

pub fn encode_user(st: &UserState, out: &mut Vec<u8>) {
    let lists = st.ca_marks.iter().any(|m| m.len() > 1);
    out.push(if lists { USER_LISTS } else { VERSION });
    put_i64(out, st.first_seen_ms);
    put_str(out, &st.first_device_id);
    put_attributed(out, &st.first);
    put_opt_i64(out, st.last_activity_ms);
    out.push(st.flags);
    for marks in &st.ca_marks {
        match marks.as_slice() {
            [] => out.push(0),
            [one] => {
                out.push(1);
                put_ref(out, *one);
            }
            many => {
                out.push(2);
                put_u64(out, many.len() as u64);
                for r in many {
                    put_ref(out, *r);
                }
            }
        }
    }
}

fn put_ref(out: &mut Vec<u8>, (device, seq): (u64, u32)) {
    out.extend_from_slice(&device.to_le_bytes());
    put_u64(out, u64::from(seq));
}

pub fn decode_user(bytes: &[u8]) -> Result<UserState, BinaryError> {
    let mut r = Reader::versioned_up_to(bytes, USER_LISTS)?;
    let first_seen_ms = r.i64()?;
    let first_device_id = r.string()?;
    let first = r.attributed()?;
    let last_activity_ms = r.opt_i64()?;
    let flags = r.u8()?;
    let mut ca_marks: [Vec<(u64, u32)>; 4] = Default::default();
    for marks in &mut ca_marks {
        let n = match r.u8()? {
            0 => 0,
            1 => 1,
            2 => r.u64()?,
            _ => return Err(r.invalid("marker tag")),
        };
        if n > USER_CA_MARKS as u64 {
            return Err(r.invalid("marker count"));
        }
        for _ in 0..n {
            marks.push((r.fixed_u64()?, r.u32()?));
        }
    }
    r.finish()?;
    Ok(UserState { first_seen_ms, first_device_id, first, last_activity_ms, flags, ca_marks })
}

// ---- user activity (repartition topic) ----

/// An activity whose event has a `waid` needs version 2 (it trails).
const ACTIVITY_WAID: u8 = 2;
/// Version 3 adds what the device allows (after the waid).
const ACTIVITY_PRIVACY: u8 = 3;

pub fn encode_activity(act: &UserActivity, out: &mut Vec<u8>) {
    encode_activity_ref(&act.borrowed(), out);
}

pub fn encode_activity_ref(act: &ActivityRef<'_>, out: &mut Vec<u8>) {
    let privacy = !act.privacy.is_empty();
    let waid = privacy || !act.event.device.waid.is_empty();
    out.push(if privacy {
        ACTIVITY_PRIVACY
    } else if waid {
        ACTIVITY_WAID
    } else {
        VERSION
    });
    put_event(out, act.event);
    put_attributed(out, act.device_first);
    put_attributed(out, act.device_current);
    put_u64(out, u64::from(act.device_seq));
    put_i64(out, act.install_ms);
    if waid {
        put_str(out, &act.event.device.waid);
    }
    if privacy {
        put_privacy(out, act.privacy);
    }
}

pub fn decode_activity(bytes: &[u8]) -> Result<UserActivity, BinaryError> {
    let mut r = Reader::versioned_up_to(bytes, ACTIVITY_PRIVACY)?;
    let mut event = r.event()?;
    let device_first = r.attributed()?;
    let device_current = r.attributed()?;
    let device_seq = r.u32()?;
    let install_ms = r.i64()?;
    if bytes[0] >= ACTIVITY_WAID {
        event.device.waid = r.string()?;
    }
    if bytes[0] >= ACTIVITY_PRIVACY {
        event.privacy = r.privacy()?;
    }
    r.finish()?;
    Ok(UserActivity { event, device_first, device_current, device_seq, install_ms })
}

// ---- writers ----

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_opt_i64(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_i64(out, v);
        }
    }
}

fn put_opt_u64(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        None => out.push(0),
        Some(v) => {
            out.push(1);
            put_u64(out, v);
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_u64(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    put_u64(out, map.len() as u64);
    for (k, v) in map {
        put_str(out, k);
        put_str(out, v);
    }
}

fn put_attributed(out: &mut Vec<u8>, a: &Attributed) {
    put_i64(out, a.at_ms);
    put_source(out, a.source.as_ref());
}

/// Tag 0: organic; 1: an attribution; 2: one with a medium, which follows
/// it. Bytes written before mediums existed read unchanged.
fn put_source(out: &mut Vec<u8>, source: Option<&Attribution>) {
    match source {
        None => out.push(0),
        Some(src) if src.medium.is_empty() => {
            out.push(1);
            put_attribution(out, src);
        }
        Some(src) => {
            out.push(2);
            put_attribution(out, src);
            put_str(out, &src.medium);
        }
    }
}

fn put_attribution(out: &mut Vec<u8>, a: &Attribution) {
    for s in [&a.partner_id, &a.campaign_id, &a.click_id, &a.adset, &a.creative] {
        put_str(out, s);
    }
    for s in &a.subs {
        put_str(out, s);
    }
    put_map(out, &a.click_params);
    put_i64(out, a.touch_ms);
}

fn put_event(out: &mut Vec<u8>, e: &Event) {
    for s in [&e.event_id, &e.app_id, &e.device_id, &e.user_id] {
        put_str(out, s);
    }
    out.push(e.kind.code());
    put_i64(out, e.timestamp_ms);
    put_source(out, e.attribution.as_ref());
    for s in e.device.fields() {
        put_str(out, s);
    }
    match &e.revenue {
        None => out.push(0),
        Some(r) => {
            out.push(1);
            for s in [&r.amount, &r.currency, &r.transaction_id] {
                put_str(out, s);
            }
            out.push(u8::from(r.verified));
        }
    }
    match &e.custom {
        None => out.push(0),
        Some(c) => {
            out.push(1);
            put_str(out, &c.name);
            put_map(out, &c.params);
        }
    }
}

// ---- reader ----

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A record of format version 1 to `newest`.
    fn versioned_up_to(bytes: &'a [u8], newest: u8) -> Result<Reader<'a>, BinaryError> {
        match bytes.first() {
            None => Err(BinaryError::Empty),
            Some(&v) if (1..=newest).contains(&v) => Ok(Reader { bytes, at: 1 }),
            Some(&v) => Err(BinaryError::UnsupportedVersion(v)),
        }
    }

    fn invalid(&self, what: &'static str) -> BinaryError {
        BinaryError::Invalid { at: self.at, what }
    }

    fn finish(&self) -> Result<(), BinaryError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            n => Err(BinaryError::Trailing(n)),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BinaryError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len()).ok_or(BinaryError::Truncated(self.at))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, BinaryError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, BinaryError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.invalid("varint longer than 10 bytes"))
    }

    fn u32(&mut self) -> Result<u32, BinaryError> {
        u32::try_from(self.u64()?).map_err(|_| self.invalid("u32 out of range"))
    }

    fn i64(&mut self) -> Result<i64, BinaryError> {
        let v = self.u64()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    fn fixed_u64(&mut self) -> Result<u64, BinaryError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn opt_i64(&mut self) -> Result<Option<i64>, BinaryError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.i64()?)),
            _ => Err(self.invalid("option tag")),
        }
    }

    fn opt_u64(&mut self) -> Result<Option<u64>, BinaryError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            _ => Err(self.invalid("option tag")),
        }
    }

    fn string(&mut self) -> Result<String, BinaryError> {
        let n = usize::try_from(self.u64()?).map_err(|_| self.invalid("string length"))?;
        let at = self.at;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| BinaryError::Invalid { at, what: "utf-8 string" })
    }

    fn map(&mut self) -> Result<BTreeMap<String, String>, BinaryError> {
        let n = self.u64()?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let k = self.string()?;
            map.insert(k, self.string()?);
        }
        Ok(map)
    }

    fn attributed(&mut self) -> Result<Attributed, BinaryError> {
        let at_ms = self.i64()?;
        let source = self.source()?;
        Ok(Attributed { source, at_ms })
    }

    fn source(&mut self) -> Result<Option<Attribution>, BinaryError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.attribution()?)),
            2 => {
                let mut a = self.attribution()?;
                a.medium = self.string()?;
                Ok(Some(a))
            }
            _ => Err(self.invalid("attribution tag")),
        }
    }

    fn attribution(&mut self) -> Result<Attribution, BinaryError> {
        let partner_id = self.string()?;
        let campaign_id = self.string()?;
        let click_id = self.string()?;
        let adset = self.string()?;
        let creative = self.string()?;
        let subs = [self.string()?, self.string()?, self.string()?, self.string()?, self.string()?];
        let click_params = self.map()?;
        let touch_ms = self.i64()?;
        Ok(Attribution {
            partner_id,
            campaign_id,
            click_id,
            adset,
            creative,
            subs,
            click_params,
            touch_ms,
            medium: String::new(),
        })
    }

    fn privacy(&mut self) -> Result<Privacy, BinaryError> {
        let limit_ad_tracking = match self.u8()? {
            0 => None,
            1 => Some(false),
            2 => Some(true),
            _ => return Err(self.invalid("limit_ad_tracking tag")),
        };
        let att_status = match self.u8()? {
            0 => None,
            c => Some(AttStatus::from_code(c).ok_or_else(|| self.invalid("ATT status code"))?),
        };
        let n = self.u64()?;
        if n > crate::domain::privacy::MAX_PURPOSES as u64 {
            return Err(self.invalid("consent purpose count"));
        }
        let mut consent = BTreeMap::new();
        for _ in 0..n {
            let purpose = self.string()?;
            let granted = match self.u8()? {
                0 => false,
                1 => true,
                _ => return Err(self.invalid("consent flag")),
            };
            consent.insert(purpose, granted);
        }
        Ok(Privacy { limit_ad_tracking, att_status, consent })
    }

    fn event(&mut self) -> Result<Event, BinaryError> {
        let event_id = self.string()?;
        let app_id = self.string()?;
        let device_id = self.string()?;
        let user_id = self.string()?;
        let kind = Kind::from_code(self.u8()?).ok_or_else(|| self.invalid("event kind"))?;
        let timestamp_ms = self.i64()?;
        let attribution = self.source()?;
        let mut device = DeviceInfo::default();
        for field in device.fields_mut() {
            *field = self.string()?;
        }
        let revenue = match self.u8()? {
            0 => None,
            1 => Some(Revenue {
                amount: self.string()?,
                currency: self.string()?,
                transaction_id: self.string()?,
                verified: self.u8()? != 0,
            }),
            _ => return Err(self.invalid("revenue tag")),
        };
        let custom = match self.u8()? {
            0 => None,
            1 => Some(Custom { name: self.string()?, params: self.map()? }),
            _ => return Err(self.invalid("custom tag")),
        };
        Ok(Event {
            event_id,
            app_id,
            device_id,
            user_id,
            kind,
            timestamp_ms,
            attribution,
            device,
            revenue,
            custom,
            privacy: Privacy::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Kind;
    use crate::domain::state::flags;

    fn attributed(partner: &str, at: i64) -> Attributed {
        let mut a = Attribution {
            partner_id: partner.into(),
            campaign_id: "c".into(),
            click_id: "k".into(),
            touch_ms: 5,
            ..Default::default()
        };
        a.subs[2] = "s3".into();
        a.click_params.insert("utm".into(), "v".into());
        Attributed::new(Some(a), at)
    }

    fn device() -> DeviceState {
        let mut st = DeviceState {
            first_seen_ms: 1_700_000_000_000,
            install_ms: 1_700_000_000_000,
            first: attributed("acme", 1_700_000_000_000),
            current: attributed("zeta", 1_800_000_000_000),
            current_seq: 2,
            last_activity_ms: Some(1_800_000_000_001),
            flags: flags::INSTALLED | flags::FIRST_PAYMENT,
            ca_marks: [Some(2), None, Some(0), None],
            ..Default::default()
        };
        for i in 0..40 {
            st.remember_event(i * 7919);
        }
        st
    }

    fn roundtrip_device(st: &DeviceState) -> DeviceState {
        let mut buf = Vec::new();
        encode_device(st, &mut buf);
        decode_device(&buf).unwrap()
    }

    #[test]
    fn event_counts_round_trip_in_version_3_and_their_absence_keeps_older_bytes() {
        let mut st = device();
        let mut buf = Vec::new();
        encode_device(&st, &mut buf);
        assert_eq!(buf[0], VERSION);
        for key in 0..(COUNTS_KEPT as u64 + 3) {
            st.count(key, 2);
        }
        st.count(5, 1);
        assert_eq!(st.counts.len(), COUNTS_KEPT);
        buf.clear();
        encode_device(&st, &mut buf);
        assert_eq!(buf[0], DEVICE_COUNTS);
        assert_eq!(decode_device(&buf).unwrap(), st);
        // a count list longer than kept is corrupt, not a huge allocation
        let mut bad = st.clone();
        bad.counts.push(Count::default());
        buf.clear();
        encode_device(&bad, &mut buf);
        assert!(decode_device(&buf).is_err());
    }

    #[test]
    fn transaction_ids_and_earlier_attributions_round_trip_in_version_2() {
        let mut st = device();
        st.transactions = vec![1, u64::MAX, 3];
        st.earlier = vec![Earlier { attribution: attributed("zeta", 5), seq: 2, ca_fired: 0b101 }];
        let mut buf = Vec::new();
        encode_device(&st, &mut buf);
        assert_eq!(buf[0], 2);
        assert_eq!(decode_device(&buf).unwrap(), st);
    }

    #[test]
    fn device_state_round_trips() {
        let st = device();
        assert_eq!(roundtrip_device(&st), st);
        let mut same = st.clone();
        same.current = same.first.clone();
        same.current_seq = 0;
        assert_eq!(roundtrip_device(&same), same);
        let organic =
            DeviceState { first: Attributed::new(None, 3), current: Attributed::new(None, 3), ..Default::default() };
        assert_eq!(roundtrip_device(&organic), organic);
    }

    #[test]
    fn unchanged_attribution_is_stored_once() {
        let mut st = device();
        st.current = st.first.clone();
        st.current_seq = 0;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode_device(&st, &mut a);
        st.current_seq = 1;
        encode_device(&st, &mut b);
        assert!(b.len() > a.len() + 20, "{} vs {}", a.len(), b.len());
    }

    #[test]
    fn the_v1_layout_is_frozen() {
        // a change here breaks every stored state: add a version instead
        let st = DeviceState {
            first_seen_ms: 1,
            install_ms: 0,
            last_activity_ms: Some(2),
            flags: 1,
            recent: vec![9],
            ..Default::default()
        };
        let mut buf = Vec::new();
        encode_device(&st, &mut buf);
        assert_eq!(buf, vec![1, 2, 0, 0, 0, 0, 0, 1, 4, 1, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn user_state_round_trips() {
        let st = UserState {
            first_seen_ms: 10,
            first_device_id: "dev-1".into(),
            first: attributed("acme", 9),
            last_activity_ms: None,
            flags: 3,
            ca_marks: [vec![(u64::MAX, 4)], vec![], vec![], vec![(1, 0)]],
        };
        let mut buf = Vec::new();
        encode_user(&st, &mut buf);
        assert_eq!(buf[0], 1, "one mark per stream keeps the v1 bytes");
        assert_eq!(decode_user(&buf).unwrap(), st);
        let mut many = st.clone();
        many.ca_marks[0] = vec![(7, 1), (8, 0), (7, 2)];
        let mut buf = Vec::new();
        encode_user(&many, &mut buf);
        assert_eq!(buf[0], 2);
        assert_eq!(decode_user(&buf).unwrap(), many);
    }

    #[test]
    fn a_medium_and_a_waid_round_trip_and_older_bytes_read_unchanged() {
        let mut st = device();
        let mut buf = Vec::new();
        encode_device(&st, &mut buf);
        let without = buf.clone();
        st.current.source.as_mut().unwrap().medium = "cpc".into();
        st.current_seq = 3;
        buf.clear();
        encode_device(&st, &mut buf);
        assert_eq!(decode_device(&buf).unwrap(), st);
        assert_ne!(buf, without);
        let mut event = Event::new("e", "m", "d", Kind::Launch, 5);
        event.device.waid = "W-1".into();
        event.attribution = Some(Attribution { partner_id: "p".into(), medium: "cpc".into(), ..Default::default() });
        let act = UserActivity {
            event,
            device_first: attributed("p", 1),
            device_current: attributed("p", 2),
            device_seq: 1,
            install_ms: 1,
        };
        buf.clear();
        encode_activity(&act, &mut buf);
        assert_eq!(buf[0], ACTIVITY_WAID);
        assert_eq!(decode_activity(&buf).unwrap(), act);
    }

    #[test]
    fn activity_round_trips() {
        let mut event = Event::new("e", "a", "d", Kind::CustomPayment, -5);
        event.user_id = "u".into();
        event.attribution = attributed("acme", 0).source;
        event.device.lang = "de".into();
        event.revenue = Some(Revenue {
            amount: "1.5".into(),
            currency: "EUR".into(),
            transaction_id: String::new(),
            verified: true,
        });
        event.custom = Some(Custom { name: "n".into(), params: [("k".to_owned(), "v".to_owned())].into() });
        let act = UserActivity {
            event,
            device_first: attributed("acme", 1),
            device_current: Attributed::new(None, 2),
            device_seq: 7,
            install_ms: 3,
        };
        let mut buf = Vec::new();
        encode_activity(&act, &mut buf);
        assert_eq!(decode_activity(&buf).unwrap(), act);
    }

    #[test]
    fn corrupt_values_are_errors() {
        let mut buf = Vec::new();
        encode_device(&device(), &mut buf);
        assert_eq!(decode_device(&[]), Err(BinaryError::Empty));
        assert_eq!(decode_device(&[9, 0]), Err(BinaryError::UnsupportedVersion(9)));
        assert!(matches!(decode_device(&buf[..buf.len() - 1]), Err(BinaryError::Truncated(_))));
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(decode_device(&long), Err(BinaryError::Trailing(1)));
        assert!(matches!(decode_user(&[1, 0, 0, 0, 7]), Err(BinaryError::Invalid { what: "attribution tag", .. })));
        assert_eq!(
            BinaryError::UnsupportedVersion(9).to_string(),
            "format version 9 is not supported by this release (it reads up to 1); upgrade postback"
        );
    }
}
