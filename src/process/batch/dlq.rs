//! How the DLQ records of a batch stay inside Kafka's record size limit: an
//! input record the stage cannot process goes to the input DLQ as it came
//! (cut to fit that topic, with its original size in a header), and a job
//! too large to produce goes to the job DLQ as a truncated copy, so one
//! oversized record can never fail the transaction of every batch that
//! retries it. ([`super::output`] builds the records with these bounds.)

/// Reasons are ours, but may quote input (a key, a field name): bounded.
pub const MAX_REASON: usize = 1024;
/// What a truncated job keeps of each of its large fields.
pub const KEEP: usize = 2048;

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
